"""The two-tower retrieval model: a query tower, a candidate tower, the TFRS Retrieval task.

The towers (trainer_module/towers.py) read transformed features (names from
`contracts.features`); variable-length features (title tokens, genres, the context)
arrive as dense int tensors padded with `PADDING` (-1).
"""
import dataclasses
from typing import Dict, Mapping

import tensorflow as tf
import tensorflow_recommenders as tfrs

from contracts import configs
from contracts import features
from trainer_module import layers
from trainer_module import towers

PADDING = layers.PADDING


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


def drop_user_ids(inputs: Mapping[str, tf.Tensor], rate: float,
                  sizes: VocabularySizes) -> Dict[str, tf.Tensor]:
  """Replaces a random `rate` of user ids by a random OOV bucket, to train the buckets.

  Unknown users at serving hash into one of the OOV buckets; each must have been trained.
  """
  user_ids = features.to_vector(inputs[features.USER_ID_INDEX])
  dropped = tf.random.uniform(tf.shape(user_ids)) < rate
  oov = (sizes.users - sizes.num_oov_buckets) + tf.random.uniform(
      tf.shape(user_ids), maxval=sizes.num_oov_buckets, dtype=tf.int64)
  return {**inputs, features.USER_ID_INDEX: tf.where(dropped, tf.cast(oov, user_ids.dtype),
                                                     user_ids)}


class RetrievalModel(tfrs.models.Model):
  """Two towers trained with in-batch softmax, corrected for candidate sampling bias.

  In-batch negatives are drawn in proportion to popularity, so an uncorrected softmax
  pushes popular movies down; the logQ correction subtracts log(sampling probability)
  from each candidate's logit. Accidental hits (the positive movie appearing again as
  another row's candidate) are removed. Retrieval metrics are not computed per batch
  (expensive; the trainer's validation and the Evaluator compute full-catalog ones).
  """

  def __init__(self, sizes: VocabularySizes, config: configs.TrainerConfig,
               movie_sampling_probability: tf.Tensor, max_context: int = 1):
    """Builds the model.

    Args:
      sizes: Vocabulary sizes (with OOV buckets) from the Transform output.
      config: Hyperparameters, family defaults resolved (`towers.resolve_config`).
      movie_sampling_probability: float32 [sizes.movies], the probability that a training
        example's movie is each movie index (training frequency / number of examples).
      max_context: Longest context the sequential query towers accept.
    """
    super().__init__()
    if not config.temperature or not config.learning_rate or not config.epochs:
      raise ValueError("RetrievalModel needs a resolved config (towers.resolve_config): "
                       "learning_rate, temperature and epochs must be set.")
    self.query_tower_name = config.query_tower
    self.query_tower = towers.build_query_tower(config, sizes.users, sizes.movies,
                                                sizes.timestamp_buckets, max_context)
    self.candidate_tower = towers.build_candidate_tower(config, sizes.movies,
                                                        sizes.title_tokens, sizes.genres)
    # Per-example mean loss (TFRS defaults to the batch sum), so that logged losses compare
    # across batch sizes and the partial last batch; `mean_loss` averages a whole epoch,
    # where Keras's `loss` is the last batch's.
    self.task = tfrs.tasks.Retrieval(
        loss=tf.keras.losses.CategoricalCrossentropy(
            from_logits=True, reduction=tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE),
        loss_metrics=[tf.keras.metrics.Mean(name="mean_loss")],
        temperature=config.temperature, remove_accidental_hits=True)
    self._oov_user_rate = config.oov_user_rate
    self._sizes = sizes
    self._sampling_probability = tf.constant(movie_sampling_probability, tf.float32)

  @property
  def uses_context(self) -> bool:
    """Whether the query tower reads the context (CONTEXT_MOVIE_INDICES)."""
    return self.query_tower_name in towers.CONTEXT_QUERY_TOWERS

  def query_embedding(self, inputs: Mapping[str, tf.Tensor],
                      training: bool = False) -> tf.Tensor:
    """L2-normalized [batch, d], or [batch, vectors, d] for a multi-vector query tower
    (the Retrieval task then scores each candidate by its best-matching vector)."""
    return tf.math.l2_normalize(self.query_tower(inputs, training=training), axis=-1)

  def candidate_embedding(self, inputs: Mapping[str, tf.Tensor],
                          training: bool = False) -> tf.Tensor:
    return tf.math.l2_normalize(self.candidate_tower(inputs, training=training), axis=-1)

  def compute_loss(self, inputs: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    if training and self._oov_user_rate > 0:
      inputs = drop_user_ids(inputs, self._oov_user_rate, self._sizes)
    movie_ids = features.to_vector(inputs[features.MOVIE_ID_INDEX])
    return self.task(
        self.query_embedding(inputs, training), self.candidate_embedding(inputs, training),
        candidate_sampling_probability=tf.gather(self._sampling_probability, movie_ids),
        candidate_ids=movie_ids, compute_metrics=False)
