"""The Trainer's run_fn: train the two-tower model, then export it for serving.

The Trainer's `custom_config` carries {"trainer": TrainerConfig fields, "transform":
TransformConfig fields, "context": ContextConfig fields, "data": DataConfig fields} from
contracts/configs.py (`pipeline.trainer_custom_config`), and
`catalog_files` (the movie catalog examples), which components.retrieval_trainer adds at
run time.
"""
import dataclasses
import json
import os
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from closed_form import ease
from contracts import artifacts
from contracts import configs
from contracts import features
from contracts import progress
from trainer_module import data
from trainer_module import ease_factor
from trainer_module import export
from trainer_module import model as model_lib
from trainer_module import ranking
from trainer_module import towers

def vocabulary_sizes(tft_output: tft.TFTransformOutput,
                     transform_config: configs.TransformConfig) -> model_lib.VocabularySizes:
  """Embedding table sizes from the Transform output, OOV buckets included."""
  def size(name: str) -> int:
    return tft_output.vocabulary_size_by_name(name) + transform_config.num_oov_buckets
  return model_lib.VocabularySizes(
      users=size(features.USER_ID_VOCAB), movies=size(features.MOVIE_ID_VOCAB),
      title_tokens=size(features.TITLE_TOKEN_VOCAB), genres=size(features.GENRE_VOCAB),
      timestamp_buckets=transform_config.timestamp_buckets,
      num_oov_buckets=transform_config.num_oov_buckets)


def make_optimizer(config: configs.TrainerConfig) -> tf.keras.optimizers.Optimizer:
  return model_lib.make_optimizer(config.optimizer, config.learning_rate)


def build_model(tft_output: tft.TFTransformOutput, trainer_config: configs.TrainerConfig,
                transform_config: configs.TransformConfig,
                max_context: int = configs.ContextConfig().max_context,
                ) -> model_lib.RetrievalModel:
  """A compiled, untrained RetrievalModel sized from the Transform output.

  learning_rate, temperature and epochs left at 0 take the query tower's defaults.
  """
  trainer_config = towers.resolve_config(trainer_config)
  model = model_lib.RetrievalModel(
      vocabulary_sizes(tft_output, transform_config), trainer_config,
      data.movie_sampling_probability(tft_output, transform_config.num_oov_buckets),
      max_context=max_context)
  model.compile(optimizer=make_optimizer(trainer_config))
  return model


class _Throughput(tf.keras.callbacks.Callback):
  """Logs training examples per second of each epoch (the first includes tracing).

  The clock stops when validation starts, so the rate counts training steps only.
  """

  def __init__(self, examples_per_epoch: int):
    super().__init__()
    self._examples = examples_per_epoch
    self.per_epoch = []
    self._start = 0.0
    self._train_seconds = 0.0

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.perf_counter()
    self._train_seconds = 0.0

  def on_test_begin(self, logs=None):
    self._train_seconds = time.perf_counter() - self._start

  def on_epoch_end(self, epoch, logs=None):
    seconds = self._train_seconds or (time.perf_counter() - self._start)
    rate = self._examples / seconds
    self.per_epoch.append(rate)
    logs = logs or {}
    val_hit_rate = logs.get("val_hit_rate")
    progress.LOGGER.info(
        "Epoch %d: %.0f training examples/s, mean loss %.4f, validation mean loss %.4f%s",
        epoch + 1, rate, logs.get("mean_loss", float("nan")),
        logs.get("val_mean_loss", float("nan")),
        "" if val_hit_rate is None else f", validation hit rate {val_hit_rate:.4f}")


# Validation ranks at most this many users' queries per epoch (a seeded sample above it).
_MAX_VALIDATION_USERS = 5000
_VALIDATION_BATCH = 512


def validation_k(num_candidates: int, targets_ratio: float = 1.0) -> int:
  """Cutoff of the validation hit rate: the Evaluator's gate cutoff (100, or a tenth of a
  catalog under 1,000 movies) times `targets_ratio` (at most 1).

  A user's hits in a top-k list are at most k, so hit_rate@k weighs a list's precision
  against its recall by how many held-out movies each user has per list slot. The slice
  holds fewer per user than the eval split (`validation_targets_ratio`); cutting its lists
  in the same ratio keeps the trade-off the Evaluator's hit_rate@100 makes. At @100 the
  slice of ml-latest-small preferred a smaller EASE factor weight than the eval split.
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

  The hit rate is the Evaluator's hit_rate@k on the validation slice: each validation
  user's query (their remaining train movies as context) ranks every movie of the train
  vocabulary, the user's training movies excluded, and a held-out pair is a hit when its
  movie is in the top k. The weights of the best epoch are restored when training ends;
  training stops after `patience` epochs without a better hit rate.
  """

  def __init__(self, validation: data.ValidationSlice, patience: int, seed: int,
               targets_ratio: float = 1.0):
    """Args:
      validation: The slice.
      patience: Epochs without a better hit rate before training stops.
      seed: Seed of the sample of validation users (above `_MAX_VALIDATION_USERS`).
      targets_ratio: `validation_targets_ratio`, which scales the cutoff (`validation_k`).
    """
    super().__init__()
    self._patience = patience
    self._queries = data.select_rows(validation.validation, validation.query_rows)
    users = np.arange(len(validation.query_rows))
    if len(users) > _MAX_VALIDATION_USERS:
      users = np.sort(np.random.default_rng(seed).choice(len(users), _MAX_VALIDATION_USERS,
                                                         replace=False))
      self._queries = data.select_rows(self._queries, users)
    position = np.full(len(validation.query_rows), -1)
    position[users] = np.arange(len(users))
    keep = position[validation.users] >= 0
    self._users, self._movies = position[validation.users[keep]], validation.movies[keep]
    keep_train = position[validation.train_users] >= 0
    self._train_users = position[validation.train_users[keep_train]]
    self._train_movies = validation.train_movies[keep_train]
    self._query_users = validation.query_users[users]  # User index of each position.
    # Candidates: every movie of the train split (fitted and held-out rows), with its
    # features.
    examples = validation.train.examples
    self._candidate_movies, first = np.unique(
        examples[features.MOVIE_ID_INDEX].numpy().reshape(-1), return_index=True)
    self._candidates = data.select_rows(
        {name: examples[name] for name in (features.MOVIE_ID_INDEX, features.TITLE_TOKENS,
                                           features.GENRE_INDICES) if name in examples},
        first)
    self.k = validation_k(len(self._candidate_movies), targets_ratio)
    self._factor_cache = (None, None)
    self.hit_rates = []
    self.best_epoch = 0
    self._best_weights = None

  def embeddings(self) -> Tuple[np.ndarray, np.ndarray]:
    """(queries, candidates): the current model's embeddings of the validation queries and
    candidates, for several `hit_rate` calls on one model."""
    return (self.model.query_embedding(self._queries).numpy(),
            self.model.candidate_embedding(self._candidates).numpy())

  def _factor_vectors(self, factor: ease_factor.EaseFactor) -> np.ndarray:
    """The factor's unweighted user vector of each position, kept for the factor's other
    weights (a weight grid scores one fit several times)."""
    fit, vectors = self._factor_cache
    if fit is not factor.ease_model:
      # The factor indexes users by their user index (its fit's rows), not by position.
      vectors = factor.user_vectors(self._query_users[self._train_users], self._train_movies,
                                    int(self._query_users.max()) + 1)[self._query_users]
      self._factor_cache = (factor.ease_model, vectors)
    return vectors

  def hits(self, factor: Optional[ease_factor.EaseFactor] = None,
           embeddings: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> np.ndarray:
    """bool [held-out pairs]: whether the current model ranks each held-out pair's movie
    in its user's top self.k, with `factor`'s term added to each score when one is given
    (its user vectors from the fitted rows).

    `embeddings` (from `embeddings()`) spares embedding again when the model has not
    changed since."""
    queries, candidates = embeddings if embeddings is not None else self.embeddings()
    if factor is not None:
      user_vectors = factor.weight * self._factor_vectors(factor)
      movie_vectors = factor.candidate_rows[self._candidate_movies]
    column = np.full(int(self._candidate_movies.max()) + 1, -1)
    column[self._candidate_movies] = np.arange(len(self._candidate_movies))
    hits = np.zeros(len(self._users), bool)
    for start in range(0, len(queries), _VALIDATION_BATCH):
      stop = start + _VALIDATION_BATCH
      scores = artifacts.query_scores(queries[start:stop], candidates.T)
      if factor is not None:
        scores += user_vectors[start:stop] @ movie_vectors.T
      seen = (self._train_users >= start) & (self._train_users < stop)
      scores[self._train_users[seen] - start, column[self._train_movies[seen]]] = -np.inf
      kth = -np.partition(-scores, self.k - 1, axis=1)[:, self.k - 1]
      pairs = np.flatnonzero((self._users >= start) & (self._users < stop))
      rows, columns = self._users[pairs] - start, column[self._movies[pairs]]
      hits[pairs] = scores[rows, columns] >= kth[rows]
    return hits

  def hit_rate(self, factor: Optional[ease_factor.EaseFactor] = None,
               embeddings: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> float:
    """The share of `hits(factor, embeddings)`: the validation hit rate @ self.k."""
    hits = self.hits(factor, embeddings)
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


def train(model: model_lib.RetrievalModel, train_data: Mapping[str, tf.Tensor],
          validation: Optional[data.ValidationSlice], config: configs.TrainerConfig,
          log_dir: str, targets_ratio: float = 1.0) -> Dict[str, Any]:
  """Fits `model`; returns the Keras history plus throughput per epoch.

  Args:
    model: A compiled model.
    train_data: Every training example; used when `validation` is None.
    validation: The validation slice (its `train` part is then what is fitted), or None
      to train every epoch without validation.
    config: Hyperparameters, family defaults resolved or not.
    log_dir: TensorBoard logs.
    targets_ratio: Scales the validation cutoff (`validation_targets_ratio`).

  Returns:
    Per-epoch lists: "mean_loss", "examples_per_second", and with validation
    "val_mean_loss", "val_hit_rate"; "epoch_kept": [the epoch whose weights were kept].
  """
  config = towers.resolve_config(config)
  fitted = validation.train if validation else data.Rows(train_data)
  throughput = _Throughput(len(fitted))
  callbacks = []
  validation_data = None
  if validation:
    validation_data = data.training_dataset(validation.validation, config.batch_size,
                                            config.seed, shuffle=False)
    # Before the throughput callback, whose one line per epoch then shows the hit rate.
    callbacks.append(ValidationHitRate(validation, config.early_stopping_patience,
                                       config.seed, targets_ratio))
  callbacks += [throughput, tf.keras.callbacks.TensorBoard(log_dir=log_dir)]
  history = model.fit(data.training_dataset(fitted, config.batch_size, config.seed),
                      validation_data=validation_data, epochs=config.epochs, verbose=2,
                      callbacks=callbacks)
  result = {**history.history, "examples_per_second": throughput.per_epoch}
  result["epoch_kept"] = [callbacks[0].best_epoch if validation
                          else len(throughput.per_epoch)]
  return result


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains on the transformed train split and exports the serving model.

  The eval split (`fn_args.eval_files`) is the Evaluator's and is never read: the epoch is
  chosen on a validation slice of the train split (`validation_fraction`).

  Args:
    fn_args: From the TFX Trainer; see the module docstring for `custom_config`.
  """
  custom_config = fn_args.custom_config or {}
  trainer_config = towers.resolve_config(
      configs.TrainerConfig.from_dict(custom_config.get(configs.TRAINER_KEY)))
  transform_config = configs.TransformConfig.from_dict(custom_config.get(configs.TRANSFORM_KEY))
  context_config = configs.ContextConfig.from_dict(custom_config.get(configs.CONTEXT_KEY))
  data_config = configs.DataConfig.from_dict(custom_config.get(configs.DATA_KEY))
  targets_ratio = validation_targets_ratio(trainer_config.validation_fraction, data_config)
  if configs.CATALOG_FILES_KEY not in custom_config:
    raise ValueError(f"custom_config has no {configs.CATALOG_FILES_KEY!r}: use "
                     "components.retrieval_trainer.RetrievalTrainer, which adds the catalog.")
  tf.keras.utils.set_random_seed(trainer_config.seed)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  max_context = context_config.max_context

  train_data = data.load_transformed(fn_args.train_files, tft_output,
                                     trainer_config.max_title_tokens, max_context)
  if trainer_config.ranking_model == configs.NO_RANKING:
    # Only the ranking stage reads the rating; retrieval's batches stay as they were.
    train_data.pop(features.RATING_LABEL, None)
  model = build_model(tft_output, trainer_config, transform_config, max_context)
  if model.uses_context and features.CONTEXT_MOVIE_INDICES not in train_data:
    raise ValueError(f"The {trainer_config.query_tower!r} query tower reads "
                     f"{features.CONTEXT_MOVIE_IDS!r}, which the transformed examples lack: "
                     "run the UserContext component before Transform.")
  sizes = vocabulary_sizes(tft_output, transform_config)
  validation = None
  if trainer_config.validation_fraction > 0:
    validation = data.split_validation(train_data, trainer_config.validation_fraction,
                                       trainer_config.seed, sizes.movies)
    # The slice has its own cleaned contexts and shares the other features; of the whole
    # split, the export reads only users, movies and times, so the uncleaned contexts are
    # freed before training.
    train_data = data.without_lists(train_data)
  logging.info("Training %s/%s on %d examples, validating on %s (the eval split is left "
               "to the Evaluator).", trainer_config.query_tower, trainer_config.candidate_tower,
               len(validation.train) if validation else data.num_examples(train_data),
               data.num_examples(validation.validation) if validation else "none")
  history = train(model, train_data, validation, trainer_config, fn_args.model_run_dir,
                  targets_ratio)
  factor = fit_ease_factor(model, train_data, validation, trainer_config, sizes,
                           targets_ratio)
  history.update(ease_factor.history_entries(factor))
  ranker = None
  if trainer_config.ranking_model != configs.NO_RANKING:
    ranker, ranking_history = train_ranking_stage(train_data, validation, trainer_config, sizes)
    history.update(ranking_history)
  # TFX puts the serving model in <model uri>/Format-Serving (path_utils).
  model_uri = os.path.dirname(fn_args.serving_model_dir.rstrip("/"))
  write_history(model_uri, history)
  if ranker is not None:
    write_ranking_config(model_uri, trainer_config)

  export.export_all(
      model_uri=model_uri,
      serving_model_dir=fn_args.serving_model_dir, tft_output=tft_output,
      retrieval_model=model, ranker=ranker,
      ranking_candidates=trainer_config.ranking_candidates,
      ranking_weight=trainer_config.ranking_weight,
      raw_catalog=data.read_raw_catalog(custom_config[configs.CATALOG_FILES_KEY]),
      max_title_tokens=trainer_config.max_title_tokens, top_k=trainer_config.serving_top_k,
      reference_timestamp=int(tf.reduce_max(train_data[features.TIMESTAMP_SECONDS])),
      seen_movies=seen_movies(train_data, tft_output),
      user_histories=data.user_histories(
          train_data, tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB), sizes.users,
          max_context),
      ease_factor=factor.for_serving(train_data[features.USER_ID_INDEX].numpy(),
                                     train_data[features.MOVIE_ID_INDEX].numpy(), sizes.users)
      if factor and factor.weight else None)


def fit_ease_factor(model: model_lib.RetrievalModel, train_data: Mapping[str, tf.Tensor],
                    validation: Optional[data.ValidationSlice], config: configs.TrainerConfig,
                    sizes: model_lib.VocabularySizes, targets_ratio: float = 1.0
                    ) -> Optional[ease_factor.EaseFactor]:
  """The EASE factor (trainer_module/ease_factor.py), None with --ease_factor_rank 0. Its
  weight is 0 (nothing to serve) when the validation slice scores the towers alone best.

  Without a validation slice, the factor is fitted with the largest session weight and
  served at the one weight given, or at `ease_factor.WEIGHT_WITHOUT_VALIDATION` when
  --ease_factor_weights lists several. With a validation slice, EASE is first fitted on
  the rows the towers were fitted on, once per session weight, so the slice judges the
  sum fairly; the session weight whose best hit rate is highest is kept (ties to the
  earlier), with the w `ease_factor.choose_weight` keeps for it: the middle one of the
  weights level with its best. A closed form costs seconds to fit again, so the factor that
  is served is then refitted on the whole train split, the slice included, as the towers
  cannot be.
  """
  if not config.ease_factor_rank:
    return None
  def fit(users: tf.Tensor, movies: tf.Tensor, times: tf.Tensor,
          session_weight: float) -> ease_factor.EaseFactor:
    sessions = ease.Sessions(times.numpy(), config.ease_factor_session_window,
                             session_weight) if session_weight else None
    return ease_factor.fit(users.numpy(), movies.numpy(), sizes.users, sizes.movies,
                           config.ease_factor_rank, config.ease_factor_l2,
                           config.ease_factor_max_items, config.seed, sessions)

  columns = (features.USER_ID_INDEX, features.MOVIE_ID_INDEX, features.TIMESTAMP_SECONDS)
  every_rating = [train_data[name] for name in columns]
  weights = config.ease_factor_weight_grid
  session_weights = config.ease_factor_session_weight_grid
  if not validation:
    return fit(*every_rating, max(session_weights)).with_weight(
        weights[0] if len(weights) == 1 else ease_factor.WEIGHT_WITHOUT_VALIDATION)
  fitted_rows = [tf.gather(validation.train.examples[name], validation.train.rows)
                 for name in columns]
  checker = ValidationHitRate(validation, config.early_stopping_patience, config.seed,
                              targets_ratio)
  checker.set_model(model)
  embedded = checker.embeddings()  # The towers stay as they are for every weight.
  # One fit per session weight; only the best so far is kept (each holds dense [n, n]).
  best, best_rates = None, []
  for session_weight in session_weights:
    candidate = ease_factor.choose_weight(fit(*fitted_rows, session_weight), weights,
                                          lambda f: checker.hits(f, embedded))
    best_rates.append(max(candidate.info["validation_hit_rates"]))
    if best is None or best_rates[-1] > max(best_rates[:-1]):
      best = candidate
    del candidate
  del checker  # It caches the last fit's user vectors and weights.
  session_weight = session_weights[int(np.argmax(best_rates))]
  logging.info("EASE factor: best validation hit rates %s at session weights %s; keeping "
               "%g.", [round(rate, 4) for rate in best_rates], session_weights, session_weight)
  chosen = dataclasses.replace(best, info={
      **best.info, "session_weight": float(session_weight),
      "session_validation_weights": [float(w) for w in session_weights],
      "session_validation_hit_rates": [float(rate) for rate in best_rates]})
  del best
  if not chosen.weight:
    return chosen
  weight, info = chosen.weight, chosen.info
  del chosen  # Its fit on the fitted rows is not served: free it before the refit.
  refitted = fit(*every_rating, session_weight)
  return dataclasses.replace(refitted, weight=weight,
                             info={**info, **refitted.info, "weight": weight,
                                   "refitted_on_every_train_rating": True})


def train_ranking_stage(train_data: Mapping[str, tf.Tensor],
                        validation: Optional[data.ValidationSlice],
                        config: configs.TrainerConfig, sizes: model_lib.VocabularySizes,
                        ) -> Tuple[ranking.DcnRankingModel, Dict[str, List[float]]]:
  """Trains the ranking model on the examples retrieval was fitted on.

  With a validation slice, the ranking stage fits the same rows and keeps the epoch of
  the best validation RMSE; without one it fits every train example.

  Returns:
    The trained ranking model and its per-epoch history ("ranking_..." keys).
  """
  ranking.check_has_ratings(train_data)
  mean_rating = float(tf.reduce_mean(train_data[features.RATING_LABEL]))
  fitted = validation.train if validation else data.Rows(train_data)
  ranker = ranking.build(sizes, config, mean_rating,
                         uses_context=features.CONTEXT_MOVIE_INDICES in fitted.examples)
  logging.info("Training the %s ranking stage on %d examples (mean rating %.3f).",
               config.ranking_model, len(fitted), mean_rating)
  history = ranking.train(ranker, fitted, validation.validation if validation else None,
                          config)
  return ranker, history


def write_history(model_uri: str, history: Mapping[str, List[float]]) -> None:
  """Per-epoch training history as JSON, where `artifacts.training_history_path` says."""
  path = artifacts.training_history_path(model_uri)
  tf.io.gfile.makedirs(model_uri)
  with tf.io.gfile.GFile(path, "w") as f:
    json.dump({name: [float(value) for value in values] for name, values in history.items()},
              f, indent=1)


def write_ranking_config(model_uri: str, config: configs.TrainerConfig) -> None:
  """The ranking stage's family and depth, where `artifacts.ranking_config_path` says: the
  Evaluator re-orders as many retrieved movies as serving_ranked does."""
  with tf.io.gfile.GFile(artifacts.ranking_config_path(model_uri), "w") as f:
    json.dump({artifacts.RANKING_MODEL_FIELD: config.ranking_model,
               artifacts.RANKING_CANDIDATES_FIELD: config.ranking_candidates,
               artifacts.RANKING_WEIGHT_FIELD: config.ranking_weight}, f, indent=1)


def seen_movies(train_data: Mapping[str, tf.Tensor],
                tft_output: tft.TFTransformOutput) -> Dict[str, List[str]]:
  """User id -> ids of the movies they rated in training, from the vocabulary indices.

  Vectorized: ml-25m has 20M training pairs, too many for Python tuples.
  """
  users = tft_output.vocabulary_by_name(features.USER_ID_VOCAB)
  movies = tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB)
  user_index = train_data[features.USER_ID_INDEX].numpy().astype(np.int64)
  movie_index = train_data[features.MOVIE_ID_INDEX].numpy().astype(np.int64)
  # Indices past a vocabulary are OOV buckets: no id to report.
  known = (user_index < len(users)) & (movie_index < len(movies))
  pairs = np.unique(user_index[known] * len(movies) + movie_index[known])
  pair_users, pair_movies = np.divmod(pairs, len(movies))
  starts = np.flatnonzero(np.diff(pair_users, prepend=-1))
  ends = np.append(starts[1:], len(pairs))
  # One str per movie, shared by every list that holds it: a new str per pair would cost
  # about 100 MiB per million pairs.
  movie_ids = [movie.decode() for movie in movies]
  return {users[pair_users[start]].decode(): [movie_ids[m] for m in pair_movies[start:end]]
          for start, end in zip(starts, ends)}
