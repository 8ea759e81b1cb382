"""Choosing the EASE factor's weights on the validation slice, and what the choice records.

Two weights are chosen together: w, the factor's share of the score, and the session
weight of its fit (`ease.Sessions`, 0 for plain EASE). EASE is fitted once per session
weight on the rows the towers were fitted on, so the slice judges the sum fairly; each fit
is scored at every w, and the fit whose best hit rate is highest is kept with its w
(`choose_weight`). A closed form costs seconds to fit again, so the factor that is served
is then refitted on the whole train split, the slice included, as the towers cannot be.
"""
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from closed_form import ease
from contracts import artifacts
from contracts import configs
from trainer_module import data
from trainer_module import ease_factor as ease_factor_lib
from trainer_module import model as model_lib
from trainer_module import validation as validation_lib
from trainer_module import validation_slice

# The weight served without a validation slice to choose one from a list: the factor's
# score counts as much as the towers' cosine.
WEIGHT_WITHOUT_VALIDATION = 1.0

# Per held-out pair of the validation slice, whether the towers plus a factor (None: the
# towers alone) rank its movie in the top k.
ValidationHits = Callable[[Optional[ease_factor_lib.EaseFactor]], np.ndarray]


@dataclasses.dataclass(frozen=True)
class WeightChoice:
  """The validation slice's verdict on the weights w of one fit.

  Attributes:
    weights: The candidate weights, ascending (0: the towers alone).
    hit_rates: The validation hit rate at each weight.
    level_weights: The weights level with the best (`level_with_best`).
    kept: The middle one of `level_weights` (of an even count, the larger middle one).
  """
  weights: List[float]
  hit_rates: List[float]
  level_weights: List[float]
  kept: float


@dataclasses.dataclass(frozen=True)
class Selection:
  """How the factor that is served was chosen; the Trainer's history records it.

  Attributes:
    rank: The factor's rank.
    weight: w (0: no factor served).
    session_weight: The session rows' weight of the fit (0: plain EASE).
    weight_choice: The choice of w for the kept session weight; None without validation.
    session_weights: The candidate session weights (empty without validation).
    session_hit_rates: Each session weight's best validation hit rate over the weights.
  """
  rank: int
  weight: float
  session_weight: float
  weight_choice: Optional[WeightChoice] = None
  session_weights: List[float] = dataclasses.field(default_factory=list)
  session_hit_rates: List[float] = dataclasses.field(default_factory=list)

  def history_entries(self) -> Dict[str, List[float]]:
    """This selection in training_history.json's form (contracts/artifacts.py's keys)."""
    entries = {artifacts.HISTORY_EASE_FACTOR_WEIGHT: [float(self.weight)],
               artifacts.HISTORY_EASE_FACTOR_RANK: [float(self.rank)],
               artifacts.HISTORY_EASE_FACTOR_SESSION_WEIGHT: [float(self.session_weight)]}
    if self.weight_choice is not None:
      entries[artifacts.HISTORY_EASE_FACTOR_WEIGHTS] = list(self.weight_choice.weights)
      entries[artifacts.HISTORY_EASE_FACTOR_VALIDATION_HIT_RATES] = list(
          self.weight_choice.hit_rates)
      entries[artifacts.HISTORY_EASE_FACTOR_LEVEL_WEIGHTS] = list(
          self.weight_choice.level_weights)
    if self.session_hit_rates:
      entries[artifacts.HISTORY_EASE_FACTOR_SESSION_WEIGHTS] = list(self.session_weights)
      entries[artifacts.HISTORY_EASE_FACTOR_SESSION_VALIDATION_HIT_RATES] = list(
          self.session_hit_rates)
    return entries


def history_entries(selection: Optional[Selection]) -> Dict[str, List[float]]:
  """What training_history.json records of the factor: its weight (0: none served), and
  with a factor fitted its rank and how it was chosen."""
  if selection is None:
    return {artifacts.HISTORY_EASE_FACTOR_WEIGHT: [0.0]}
  return selection.history_entries()


def _rates(hits: Sequence[np.ndarray]) -> List[float]:
  """The hit rate of each candidate's per-pair hits (0 without pairs)."""
  return [float(np.mean(h)) if len(h) else 0.0 for h in hits]


def level_with_best(hits: Sequence[np.ndarray]) -> List[int]:
  """Indices of the candidates whose validation hits are level with the best's.

  A candidate is level when its hit rate is below the best's (the first of the highest)
  by at most one standard error of the paired per-pair difference: the candidates rank
  the same held-out pairs, so the difference is measured without the pairs' own spread.

  Args:
    hits: Per candidate, a float or bool array [pairs] with 1 where a held-out pair was
      a hit; every array has the same pairs in the same order.

  Returns:
    Ascending indices into `hits`, the best's included.
  """
  hits = [np.asarray(h, np.float64) for h in hits]
  rates = _rates(hits)
  best = int(np.argmax(rates))
  level = []
  for i, h in enumerate(hits):
    difference = hits[best] - h
    error = float(np.std(difference, ddof=1) / np.sqrt(len(h))) if len(h) > 1 else 0.0
    if rates[best] - rates[i] <= error:
      level.append(i)
  return level


def choose_weight(factor: ease_factor_lib.EaseFactor, weights: Sequence[float],
                  validation_hits: ValidationHits) -> WeightChoice:
  """The middle one of the weights level with the best on validation.

  Why not the best: where the hit rate is flat across weights, the slice's differences are
  smaller than its noise, and its best alone is a coin toss between the ends of the flat
  part. Any weight level with the best (`level_with_best`) may be the eval split's best,
  and the middle one of them is the nearest to all of them. A clear curve leaves the best
  alone level.

  Args:
    factor: The fitted factor.
    weights: Candidate weights, in any order (they are judged in ascending order).
    validation_hits: Scores the towers with a factor, or alone for None.
  """
  weights = sorted(float(w) for w in weights)
  hits = [validation_hits(factor.with_weight(w) if w else None) for w in weights]
  rates = _rates(hits)
  level = level_with_best(hits)
  kept = weights[level[len(level) // 2]]
  logging.info("EASE factor (rank %d): validation hit rates %s at weights %s; level with "
               "the best: %s; keeping %g.", factor.rank, [round(rate, 4) for rate in rates],
               weights, [weights[i] for i in level], kept)
  return WeightChoice(weights=weights, hit_rates=rates,
                      level_weights=[weights[i] for i in level], kept=kept)


def _validation_hits(checker: validation_lib.ValidationHitRate,
                     embedded: Tuple[np.ndarray, np.ndarray],
                     towers_alone: np.ndarray,
                     factor: ease_factor_lib.EaseFactor) -> ValidationHits:
  """`checker`'s hits with `factor`'s term at a candidate's weight: each validation user's
  factor vector (from the fitted rows) times each candidate movie's factor row.
  `towers_alone` (the hits without a factor, the same for every fit) answers None."""
  user_vectors = factor.user_vectors(checker.train_user_indices, checker.train_movies,
                                     int(checker.query_users.max()) + 1)[checker.query_users]
  movie_rows_t = factor.candidate_rows[checker.candidate_movies].T

  def hits(candidate: Optional[ease_factor_lib.EaseFactor]) -> np.ndarray:
    if candidate is None:
      return towers_alone
    weighted = candidate.weight * user_vectors
    return checker.hits(lambda positions: weighted[positions] @ movie_rows_t, embedded)

  return hits


def _fit(ratings: data.Interactions, session_weight: float, config: configs.TrainerConfig,
         sizes: model_lib.VocabularySizes) -> ease_factor_lib.EaseFactor:
  """The factor fitted on the (user index, movie index, timestamp) of `ratings`."""
  users, movies, times = ratings.users, ratings.movies, ratings.times
  sessions = ease.Sessions(times, config.ease_factor.session_window,
                           session_weight) if session_weight else None
  return ease_factor_lib.fit(users, movies, sizes.users, sizes.movies,
                             config.ease_factor.rank, config.ease_factor.l2,
                             config.ease_factor.max_items, config.optimization.seed, sessions)


def select(model: model_lib.RetrievalModel, whole: data.Interactions,
           fitted: data.Interactions,
           validation: Optional[validation_slice.ValidationSlice],
           config: configs.TrainerConfig,
           sizes: model_lib.VocabularySizes, targets_ratio: float = 1.0
           ) -> Tuple[Optional[ease_factor_lib.EaseFactor], Optional[Selection]]:
  """(the factor to serve, how it was chosen): (None, None) with --ease_factor_rank 0,
  and no factor to serve when the validation slice scores the towers alone best.

  Without a validation slice, the factor is fitted on every train rating with the largest
  session weight and served at the one weight given, or at `WEIGHT_WITHOUT_VALIDATION`
  when --ease_factor_weights lists several. With one, see the module docstring; ties
  between session weights go to the earlier.

  Args:
    model: The trained retrieval model (its towers stay as they are).
    whole: Every rating of the train split, validation ratings included.
    fitted: The ratings the towers were fitted on (the train split without validation).
    validation: The validation slice the towers were trained beside, or None.
    config: The factor's knobs (ease_factor_*), the seed and the early-stopping patience.
    sizes: The vocabularies' sizes (the factor's rows are vocabulary indices).
    targets_ratio: Scales the validation cutoff (`validation.validation_targets_ratio`).
  """
  if not config.ease_factor.rank:
    return None, None
  weights = config.ease_factor.weights
  session_weights = config.ease_factor.session_weights
  if not validation:
    weight = weights[0] if len(weights) == 1 else WEIGHT_WITHOUT_VALIDATION
    factor = _fit(whole, max(session_weights), config, sizes).with_weight(weight)
    return factor if weight else None, Selection(
        rank=factor.rank, weight=weight, session_weight=float(max(session_weights)))
  optimization = config.optimization
  checker = validation_lib.ValidationHitRate(
      validation, optimization.early_stopping_patience, optimization.seed, targets_ratio)
  checker.set_model(model)
  embedded = checker.embeddings()  # The towers stay as they are for every weight.
  towers_alone = checker.hits(None, embedded)

  def weight_choice(session_weight: float) -> Tuple[WeightChoice, int]:
    # One fit alive at a time: each holds dense [items, items] matrices.
    factor = _fit(fitted, session_weight, config, sizes)
    hits = _validation_hits(checker, embedded, towers_alone, factor)
    return choose_weight(factor, weights, hits), factor.rank

  choices = [weight_choice(session_weight) for session_weight in session_weights]
  best_rates = [max(choice.hit_rates) for choice, _ in choices]
  best = int(np.argmax(best_rates))
  choice, rank = choices[best]
  session_weight = float(session_weights[best])
  logging.info("EASE factor: best validation hit rates %s at session weights %s; keeping "
               "%g.", [round(rate, 4) for rate in best_rates], session_weights, session_weight)
  selection = Selection(rank=rank, weight=choice.kept, session_weight=session_weight,
                        weight_choice=choice,
                        session_weights=[float(w) for w in session_weights],
                        session_hit_rates=best_rates)
  if not choice.kept:
    return None, selection
  return _fit(whole, session_weight, config, sizes).with_weight(choice.kept), selection
