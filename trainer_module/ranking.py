"""The ranking stage: a Deep & Cross Network that predicts a user's rating of a movie.

Retrieval (model.py) picks a few hundred movies out of the whole catalog; this model then
scores each retrieved (user, movie) pair, as in TFRS's DCN tutorial: the features'
embeddings are concatenated, crossed explicitly (`tfrs.layers.dcn.Cross`) and passed
through a deep ReLU stack, and `tfrs.tasks.Ranking` fits the rating with squared error.
It reads transformed features (names from `contracts.features`): those of one request
and one movie (`features.RANKING_FEATURES`) and, when the training examples carry it, the
user's context (their recent movies, as the history query tower reads it), embedded by a
table of its own and mean-pooled. A user unknown to training is then rated from the
history the request gives, through the OOV user embedding for the rest; without a context
the ranker reads only the request and the movie, and such a user is rated by each movie's
general appeal.
"""
import json
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tensorflow_transform as tft

from contracts import artifacts
from contracts import configs
from contracts import features
from trainer_module import data
from trainer_module import inputs
from trainer_module import layers
from trainer_module import model as model_lib
from trainer_module import validation_slice

# The TFRS DCN tutorial's shape: one full-rank cross layer, then two deep layers.
DEFAULT_DEEP_LAYERS = (192, 192)
RMSE = "root_mean_squared_error"
# Of the training examples whose user id becomes an OOV bucket, the share that also loses
# its context: unknown users at serving come both with and without a history.
UNKNOWN_WITHOUT_HISTORY_SHARE = 0.5


class DcnRankingModel(tfrs.models.Model):
  """User, time, context and movie features -> embeddings -> cross layers -> deep layers
  -> rating."""

  def __init__(self, sizes: model_lib.VocabularySizes, embedding_dim: int,
               mean_rating: float, num_cross_layers: int = 1,
               deep_layers: Sequence[int] = DEFAULT_DEEP_LAYERS, oov_user_rate: float = 0.0,
               uses_context: bool = False, name: str = "dcn_ranking"):
    """Args:
      sizes: Vocabulary sizes (with OOV buckets) from the Transform output.
      embedding_dim: Size of each feature's embedding.
      mean_rating: The mean training rating: the output's starting bias, so training
        starts from the baseline it has to beat.
      num_cross_layers: Stacked `tfrs.layers.dcn.Cross` layers (full rank).
      deep_layers: ReLU layer sizes after the cross layers.
      oov_user_rate: Share of training examples whose user id is replaced by an OOV
        bucket, so unknown users at serving get a trained embedding.
      uses_context: Whether the model reads `features.CONTEXT_MOVIE_INDICES` (movie
        indices [batch, n] padded with PADDING; padding never changes a prediction).
      name: Keras name.
    """
    super().__init__(name=name)
    if embedding_dim < 1 or num_cross_layers < 0 or any(size < 1 for size in deep_layers):
      raise ValueError(f"embedding_dim must be >= 1, num_cross_layers >= 0 and deep_layers "
                       f"positive; got {embedding_dim}, {num_cross_layers}, "
                       f"{list(deep_layers)}.")
    self._sizes = sizes
    self._oov_user_rate = oov_user_rate
    self.user = layers.embedding_table(sizes.users, embedding_dim, 0.0, "user_id")
    self.time = layers.embedding_table(sizes.timestamp_buckets, embedding_dim, 0.0,
                                       "timestamp_bucket")
    self.movie = layers.embedding_table(sizes.movies, embedding_dim, 0.0, "movie_id")
    self.title = layers.MaskedMeanEmbedding(sizes.title_tokens, embedding_dim, name="title")
    self.genres = layers.MaskedMeanEmbedding(sizes.genres, embedding_dim, name="genres")
    self.uses_context = uses_context
    if uses_context:
      self.context = layers.MaskedMeanEmbedding(sizes.movies, embedding_dim, name="context")
    self.cross = [tfrs.layers.dcn.Cross(kernel_initializer="glorot_uniform",
                                        name=f"cross_{i}") for i in range(num_cross_layers)]
    self.deep = [tf.keras.layers.Dense(size, activation="relu") for size in deep_layers]
    self.rating = tf.keras.layers.Dense(
        1, bias_initializer=tf.keras.initializers.Constant(mean_rating), name="rating")
    self.task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.MeanSquaredError(),
        metrics=[tf.keras.metrics.RootMeanSquaredError(name=RMSE)])

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """Predicted ratings, float32 [batch]."""
    embedded = [
        self.user(features.to_vector(inputs[features.USER_ID_INDEX])),
        self.time(features.to_vector(inputs[features.TIMESTAMP_BUCKET])),
        self.movie(features.to_vector(inputs[features.MOVIE_ID_INDEX])),
        self.title(inputs[features.TITLE_TOKENS]),
        self.genres(inputs[features.GENRE_INDICES]),
    ]
    if self.uses_context:
      embedded.append(self.context(inputs[features.CONTEXT_MOVIE_INDICES]))
    x = tf.concat(embedded, axis=1)
    crossed = x
    for cross in self.cross:
      crossed = cross(x, crossed)
    for dense in self.deep:
      crossed = dense(crossed)
    return features.to_vector(self.rating(crossed))

  # Traced as written, as model_lib.RetrievalModel's steps (which say why).
  @tf.autograph.experimental.do_not_convert
  def train_step(self, inputs):
    return super().train_step(inputs)

  @tf.autograph.experimental.do_not_convert
  def test_step(self, inputs):
    return super().test_step(inputs)

  def compute_loss(self, inputs: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    if training and self._oov_user_rate > 0:
      inputs = model_lib.drop_user_ids(inputs, self._oov_user_rate, self._sizes)
      if self.uses_context:
        inputs = blank_some_unknown_contexts(inputs, self._sizes)
    labels = features.to_vector(inputs[features.RATING_LABEL])
    return self.task(labels=labels, predictions=self(inputs, training=training))


def blank_some_unknown_contexts(inputs: Mapping[str, tf.Tensor], sizes: model_lib.VocabularySizes,
                                share: float = UNKNOWN_WITHOUT_HISTORY_SHARE
                                ) -> Dict[str, tf.Tensor]:
  """Blanks the context of a random `share` of the examples whose user id is an OOV bucket.

  At serving an unknown user comes with a history or without one (then the context is
  the OOV user's stored history: all padding). Training examples whose user id was
  replaced by an OOV bucket (`model_lib.drop_user_ids`) still carry their user's
  context; without blanking some, the ranker never sees an unknown user without a
  history, and rated such users worse than each movie's mean rating does (measured on
  the synthetic data, `benchmarks/ranking_cold_start.py`).
  """
  users = features.to_vector(inputs[features.USER_ID_INDEX])
  unknown = users >= sizes.users - sizes.num_oov_buckets
  blank = unknown & (tf.random.uniform(tf.shape(users)) < share)
  context = inputs[features.CONTEXT_MOVIE_INDICES]
  return {**inputs, features.CONTEXT_MOVIE_INDICES: tf.where(
      blank[:, tf.newaxis], tf.constant(layers.PADDING, context.dtype), context)}


def build(sizes: model_lib.VocabularySizes, config: configs.TrainerConfig,
          mean_rating: float, uses_context: bool = False) -> DcnRankingModel:
  """A compiled, untrained ranking model of `config.ranking.model`, reading the context
  when `uses_context`."""
  if config.ranking.model != configs.DCN_RANKING:
    models = [name for name in configs.RANKING_MODELS if name != configs.NO_RANKING]
    raise ValueError(f"No ranking model {config.ranking.model!r} to build; the ranking "
                     f"models are {models}.")
  ranker = DcnRankingModel(sizes, config.towers.embedding_dim, mean_rating,
                           oov_user_rate=config.optimization.oov_user_rate,
                           uses_context=uses_context)
  ranker.compile(optimizer=tf.keras.optimizers.Adam(config.ranking.learning_rate))
  return ranker


def check_has_ratings(tft_output: tft.TFTransformOutput) -> None:
  """Raises ValueError when the transformed examples carry no rating label."""
  if features.RATING_LABEL not in tft_output.transformed_feature_spec():
    raise ValueError(f"--ranking_model needs the rating in the Transform output "
                     f"({features.RATING_LABEL!r}), which this Transform graph does not "
                     "write: it predates the ranking stage; run Transform again.")


def train(ranker: DcnRankingModel, training_input: inputs.TrainingInput,
          validation: Optional[validation_slice.ValidationSlice],
          config: configs.TrainerConfig) -> Dict[str, List[float]]:
  """Fits `ranker` on the streamed train split; keeps the epoch of the best validation
  RMSE.

  Args:
    ranker: A compiled ranking model.
    training_input: The train split to stream.
    validation: The validation slice (its split is the validation data), or None to train
      `config.ranking.epochs` epochs without early stopping.
    config: The trainer config (ranking_epochs, batch_size, early_stopping_patience).

  Returns:
    The Keras history, each key prefixed with "ranking_" ("ranking_root_mean_squared_error",
    "ranking_val_root_mean_squared_error", ...), plus "ranking_epoch_kept".
  """
  callbacks, validation_data = [], None
  optimization = config.optimization
  if validation is not None:
    validation_data = training_input.batches(optimization.batch_size, keep_rating=True,
                                             files=validation.files)
    callbacks.append(tf.keras.callbacks.EarlyStopping(
        monitor=f"val_{RMSE}", patience=optimization.early_stopping_patience,
        restore_best_weights=True))
  fitted = training_input.batches(optimization.batch_size, optimization.shuffle_buffer,
                                  optimization.seed, keep_rating=True)
  history = ranker.fit(fitted, validation_data=validation_data,
                       epochs=config.ranking.epochs, verbose=2, callbacks=callbacks)
  result = {f"ranking_{name}": values for name, values in history.history.items()}
  epochs_run = len(history.epoch)
  result["ranking_epoch_kept"] = [callbacks[0].best_epoch + 1 if callbacks else epochs_run]
  return result


def train_stage(training_input: inputs.TrainingInput, fitted: data.Interactions,
                validation: Optional[validation_slice.ValidationSlice],
                config: configs.TrainerConfig, sizes: model_lib.VocabularySizes
                ) -> Tuple[DcnRankingModel, Dict[str, List[float]]]:
  """Builds and trains the ranking stage on the ratings retrieval was fitted on.

  With a validation slice, the ranking stage keeps the epoch of the best validation
  RMSE; without one it fits every epoch.

  Args:
    training_input: The train split to stream (the context read when it has histories).
    fitted: Its ratings (`data.read_interactions(..., with_ratings=True)`): the mean.
    validation: The validation slice, or None.
    config: The trainer config.
    sizes: Vocabulary sizes.

  Returns:
    The trained ranking model and its per-epoch history ("ranking_..." keys).
  """
  check_has_ratings(training_input.tft_output)
  mean_rating = float(np.mean(fitted.ratings))
  ranker = build(sizes, config, mean_rating,
                 uses_context=training_input.histories is not None)
  logging.info("Training the %s ranking stage on %d examples (mean rating %.3f).",
               config.ranking.model, len(fitted), mean_rating)
  history = train(ranker, training_input, validation, config)
  return ranker, history


def write_serving_config(model_uri: str, config: configs.TrainerConfig) -> None:
  """The ranking stage's family and depth, where `artifacts.ranking_config_path` says: the
  Evaluator re-orders as many retrieved movies as serving_ranked does."""
  with tf.io.gfile.GFile(artifacts.ranking_config_path(model_uri), "w") as f:
    json.dump({artifacts.RANKING_MODEL_FIELD: config.ranking.model,
               artifacts.RANKING_CANDIDATES_FIELD: config.ranking.candidates,
               artifacts.RANKING_WEIGHT_FIELD: config.ranking.weight}, f, indent=1)
