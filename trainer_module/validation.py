"""The validation hit rate: how the Trainer chooses the epoch and the EASE factor's weight.

Each validation user's query (their remaining train movies as context, at the time the
Evaluator would query them) ranks every movie of the train split, the user's training
movies excluded, with `ranking_core.rankings.rank`, the Evaluator's own ranking; a
held-out pair is a hit when its movie ranks in the user's top k. The eval split is never
read: the slice is the validation split UserContext carved from train
(`validation_slice.build`).
"""
from typing import Callable, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from contracts import configs
from ranking_core import rankings
from ranking_core import scores
from trainer_module import validation_slice

# Validation ranks at most this many users' queries per epoch (a seeded sample above it).
_MAX_VALIDATION_USERS = 5000
_VALIDATION_BATCH = 512

# Query positions [B] -> float32 [B, candidates]: a term added to the towers' scores (the
# EASE factor's), columns in `ValidationHitRate.candidate_movies` order.
ExtraScores = Callable[[np.ndarray], np.ndarray]


def validation_k(num_candidates: int, targets_ratio: float = 1.0) -> int:
  """Cutoff of the validation hit rate: the Evaluator's gate cutoff (100, or a tenth of a
  catalog under 1,000 movies) times `targets_ratio` (at most 1).

  A user's hits in a top-k list are at most k, so hit_rate@k weighs a list's precision
  against its recall by how many held-out movies each user has per list slot. The slice
  holds fewer per user than the eval split (`validation_targets_ratio`); cutting its lists
  in the same ratio keeps the trade-off the Evaluator's hit_rate@100 makes.
  """
  return max(1, round(min(100, num_candidates // 10) * min(1.0, targets_ratio)))


def validation_targets_ratio(validation_fraction: float,
                             data_config: configs.DataConfig) -> float:
  """Held-out pairs per user in the validation slice over those in the eval split.

  Under the random split, the slice holds `validation_fraction` of the train split, which
  is (1 - eval_fraction) of each user's ratings, where the eval split holds eval_fraction
  of them: 0.05 x 0.8 / 0.2 = 0.2 with the defaults. Under the temporal split the eval
  split holds no share of a user's ratings (most of its users have no train rating at
  all), so there is no density to match: 1, the Evaluator's own cutoff.
  """
  if data_config.split_method != configs.RANDOM_SPLIT:
    return 1.0
  eval_fraction = data_config.eval_fraction
  return validation_fraction * (1.0 - eval_fraction) / eval_fraction


class ValidationHitRate(tf.keras.callbacks.Callback):
  """After each epoch: hit rate of the validation slice, best-epoch weights, early stop.

  The weights of the best epoch are restored when training ends; training stops after
  `patience` epochs without a better hit rate. Outside `fit`, `hits` scores any model set
  with `set_model`, with an optional extra score term.
  """

  def __init__(self, validation: validation_slice.ValidationSlice, patience: int, seed: int,
               targets_ratio: float = 1.0):
    """Args:
      validation: The slice.
      patience: Epochs without a better hit rate before training stops.
      seed: Seed of the sample of validation users (above `_MAX_VALIDATION_USERS`).
      targets_ratio: `validation_targets_ratio`, which scales the cutoff (`validation_k`).
    """
    super().__init__()
    self._patience = patience
    users = np.arange(len(validation.query_users))
    if len(users) > _MAX_VALIDATION_USERS:
      users = np.sort(np.random.default_rng(seed).choice(len(users), _MAX_VALIDATION_USERS,
                                                         replace=False))
    self._queries = {name: tf.gather(value, users)
                     for name, value in validation.queries.items()}
    position = np.full(len(validation.query_users), -1)
    position[users] = np.arange(len(users))
    keep = position[validation.users] >= 0
    self._users, movies = position[validation.users[keep]], validation.movies[keep]
    keep_train = position[validation.train_users] >= 0
    self._train_users = position[validation.train_users[keep_train]]
    self.train_movies = validation.train_movies[keep_train]
    self.query_users = validation.query_users[users]  # User index of each position.
    # Candidates: every movie of the train split (fitted and held out), with its features.
    self.candidate_movies = validation.candidate_movies
    self._candidates = validation.candidates
    column = np.full(int(self.candidate_movies.max()) + 1, -1)
    column[self.candidate_movies] = np.arange(len(self.candidate_movies))
    self._columns, self._train_columns = column[movies], column[self.train_movies]
    self.k = validation_k(len(self.candidate_movies), targets_ratio)
    self.hit_rates = []
    self.best_epoch = 0
    self._best_weights = None

  @property
  def train_user_indices(self) -> np.ndarray:
    """The user index of each (user, movie) train pair of the validation users (the
    pairs excluded from their rankings), aligned with `train_movies`."""
    return self.query_users[self._train_users]

  def embeddings(self) -> Tuple[np.ndarray, np.ndarray]:
    """(queries, candidates): the current model's embeddings of the validation queries and
    candidates, for several `hits` calls on one model."""
    return (self.model.query_embedding(self._queries).numpy(),
            self.model.candidate_embedding(self._candidates).numpy())

  def hits(self, extra: Optional[ExtraScores] = None,
           embeddings: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> np.ndarray:
    """bool [held-out pairs]: whether the current model ranks each held-out pair's movie
    in its user's top self.k (`ranking_core.rankings.rank`, train movies excluded), with
    `extra`'s term added to the towers' scores when given.

    `embeddings` (from `embeddings()`) spares embedding again when the model has not
    changed since. The pairs are in one fixed order, the same on every call.
    """
    queries, candidates = embeddings if embeddings is not None else self.embeddings()
    candidates_t = candidates.T

    def score_fn(positions: np.ndarray) -> np.ndarray:
      towers = scores.query_scores(queries[positions], candidates_t)
      return towers if extra is None else towers + extra(positions)

    ranked = rankings.rank(score_fn, len(self.candidate_movies), self._users,
                           self._columns, self._train_users, self._train_columns,
                           depth=self.k, batch_size=_VALIDATION_BATCH, unexcluded=False)
    return ranked.hits(self.k)

  def hit_rate(self, extra: Optional[ExtraScores] = None,
               embeddings: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> float:
    """The share of `hits(extra, embeddings)`: the validation hit rate @ self.k."""
    hits = self.hits(extra, embeddings)
    return float(np.mean(hits)) if len(hits) else 0.0

  def on_epoch_end(self, epoch, logs=None):
    rate = self.hit_rate()
    self.hit_rates.append(rate)
    if logs is not None:
      logs["val_hit_rate"] = rate
    if rate > max(self.hit_rates[:-1], default=-1.0):
      self.best_epoch = epoch + 1
      self._best_weights = self.model.get_weights()
    logging.info("Epoch %d: validation hit_rate@%d %.4f (best %.4f at epoch %d)", epoch + 1,
                 self.k, rate, max(self.hit_rates), self.best_epoch)
    if epoch + 1 - self.best_epoch >= self._patience:
      self.model.stop_training = True

  def on_train_end(self, logs=None):
    if self._best_weights is not None:
      self.model.set_weights(self._best_weights)
      logging.info("Kept the weights of epoch %d (validation hit_rate@%d %.4f).",
                   self.best_epoch, self.k, self.hit_rates[self.best_epoch - 1])
