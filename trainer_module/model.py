"""The two-tower retrieval model: query tower, candidate tower, TFRS Retrieval task.

Both towers read transformed features (names from `trainer_module.features`). Variable-
length features (title tokens, genres) arrive as dense int tensors padded with -1.
"""
import dataclasses
from typing import Dict, Mapping, Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs

from contracts import configs
from contracts import features

PADDING = -1


@dataclasses.dataclass(frozen=True)
class VocabularySizes:
  """Embedding table sizes, each including the OOV buckets."""
  users: int
  movies: int
  title_tokens: int
  genres: int
  timestamp_buckets: int
  # OOV buckets per vocabulary: indices [size - num_oov_buckets, size) of each table.
  num_oov_buckets: int = 1


def _embedding(size: int, dim: int, l2: float, name: str) -> tf.keras.layers.Embedding:
  regularizer = tf.keras.regularizers.l2(l2) if l2 else None
  return tf.keras.layers.Embedding(size, dim, embeddings_regularizer=regularizer, name=name)


def _projection(hidden_layers: Sequence[int], output_dim: int, name: str) -> tf.keras.Sequential:
  """Optional ReLU layers, then a linear projection to the shared embedding space."""
  layers = [tf.keras.layers.Dense(size, activation="relu") for size in hidden_layers]
  layers.append(tf.keras.layers.Dense(output_dim))
  return tf.keras.Sequential(layers, name=name)


class MaskedMeanEmbedding(tf.keras.layers.Layer):
  """Mean of the embeddings of a padded id list; an all-padding row gives zeros."""

  def __init__(self, vocabulary_size: int, dim: int, l2: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    # Row 0 is the padding slot, so ids are shifted by one.
    self._embedding = _embedding(vocabulary_size + 1, dim, l2, f"{self.name}_table")

  def call(self, ids: tf.Tensor) -> tf.Tensor:
    mask = tf.cast(ids != PADDING, tf.float32)[..., tf.newaxis]
    summed = tf.reduce_sum(self._embedding(ids + 1) * mask, axis=-2)
    return summed / tf.maximum(tf.reduce_sum(mask, axis=-2), 1.0)


class QueryTower(tf.keras.Model):
  """User id embedding + timestamp bucket embedding + normalized timestamp -> embedding."""

  def __init__(self, sizes: VocabularySizes, config: configs.TrainerConfig):
    super().__init__(name="query_tower")
    dim = config.embedding_dim
    self.user_embedding = _embedding(sizes.users, dim, config.l2_regularization, "user_id")
    self.time_embedding = _embedding(sizes.timestamp_buckets, max(dim // 4, 4),
                                     config.l2_regularization, "timestamp_bucket")
    self.projection = _projection(config.hidden_layer_sizes, dim, "query_proj")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    time_value = tf.cast(features.to_vector(inputs[features.TIMESTAMP_NORMALIZED]), tf.float32)
    return self.projection(tf.concat([
        self.user_embedding(features.to_vector(inputs[features.USER_ID_INDEX])),
        self.time_embedding(features.to_vector(inputs[features.TIMESTAMP_BUCKET])),
        time_value[:, tf.newaxis],
    ], axis=1))


class CandidateTower(tf.keras.Model):
  """Movie id embedding + mean title-token embedding + mean genre embedding -> embedding."""

  def __init__(self, sizes: VocabularySizes, config: configs.TrainerConfig):
    super().__init__(name="candidate_tower")
    dim = config.embedding_dim
    l2 = config.l2_regularization
    self.movie_embedding = _embedding(sizes.movies, dim, l2, "movie_id")
    self.title_embedding = MaskedMeanEmbedding(sizes.title_tokens, dim, l2, name="title")
    self.genre_embedding = MaskedMeanEmbedding(sizes.genres, dim, l2, name="genres")
    self.projection = _projection(config.hidden_layer_sizes, dim,
                                  "candidate_proj")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    return self.projection(tf.concat([
        self.movie_embedding(features.to_vector(inputs[features.MOVIE_ID_INDEX])),
        self.title_embedding(inputs[features.TITLE_TOKENS]),
        self.genre_embedding(inputs[features.GENRE_INDICES]),
    ], axis=1))


class RetrievalModel(tfrs.models.Model):
  """Two towers trained with in-batch softmax, corrected for candidate sampling bias.

  In-batch negatives are drawn in proportion to popularity, so an uncorrected softmax
  pushes popular movies down; the logQ correction subtracts log(sampling probability)
  from each candidate's logit. Accidental hits (the positive movie appearing again as
  another row's candidate) are removed. Retrieval metrics are not computed per batch
  (expensive, and the Evaluator computes the real full-catalog metrics).
  """

  def __init__(self, sizes: VocabularySizes, config: configs.TrainerConfig,
               movie_sampling_probability: tf.Tensor):
    """Builds the model.

    Args:
      sizes: Vocabulary sizes (with OOV buckets) from the Transform output.
      config: Hyperparameters.
      movie_sampling_probability: float32 [sizes.movies], the probability that a training
        example's movie is each movie index (training frequency / number of examples).
    """
    super().__init__()
    self.query_tower = QueryTower(sizes, config)
    self.candidate_tower = CandidateTower(sizes, config)
    # Per-example mean loss (TFRS defaults to the batch sum), so that logged losses compare
    # across batch sizes and the partial last batch; `mean_loss` averages a whole epoch,
    # where Keras's `loss` is the last batch's.
    self.task = tfrs.tasks.Retrieval(
        loss=tf.keras.losses.CategoricalCrossentropy(
            from_logits=True, reduction=tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE),
        loss_metrics=[tf.keras.metrics.Mean(name="mean_loss")],
        temperature=config.temperature, remove_accidental_hits=True)
    self._oov_user_rate = config.oov_user_rate
    self._num_oov_buckets = sizes.num_oov_buckets
    self._first_oov_user = sizes.users - sizes.num_oov_buckets
    self._sampling_probability = tf.constant(movie_sampling_probability, tf.float32)

  def query_embedding(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    return tf.math.l2_normalize(self.query_tower(inputs), axis=-1)

  def candidate_embedding(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    return tf.math.l2_normalize(self.candidate_tower(inputs), axis=-1)

  def _drop_user_ids(self, inputs: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Replaces a random `oov_user_rate` of user ids by a random OOV bucket, to train them.

    Unknown users at serving hash into one of the OOV buckets; each must have been trained.
    """
    user_ids = features.to_vector(inputs[features.USER_ID_INDEX])
    dropped = tf.random.uniform(tf.shape(user_ids)) < self._oov_user_rate
    oov = self._first_oov_user + tf.random.uniform(
        tf.shape(user_ids), maxval=self._num_oov_buckets, dtype=tf.int64)
    return {**inputs, features.USER_ID_INDEX: tf.where(dropped, tf.cast(oov, user_ids.dtype),
                                                       user_ids)}

  def compute_loss(self, inputs: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    if training and self._oov_user_rate > 0:
      inputs = self._drop_user_ids(inputs)
    movie_ids = features.to_vector(inputs[features.MOVIE_ID_INDEX])
    return self.task(
        self.query_embedding(inputs), self.candidate_embedding(inputs),
        candidate_sampling_probability=tf.gather(self._sampling_probability, movie_ids),
        candidate_ids=movie_ids, compute_metrics=False)
