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
from trainer_module import query_towers
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


def make_optimizer(name: str, learning_rate: float) -> tf.keras.optimizers.Optimizer:
  """A Keras optimizer by name ('adam' or 'adagrad')."""
  optimizers = {"adam": tf.keras.optimizers.Adam, "adagrad": tf.keras.optimizers.Adagrad}
  if name not in optimizers:
    raise ValueError(f"optimizer must be one of {sorted(optimizers)}, got {name!r}.")
  return optimizers[name](learning_rate=learning_rate)


def retrieval_task(temperature: float, loss_name: str) -> tfrs.tasks.Retrieval:
  """The in-batch softmax task, accidental hits removed, with a metric `loss_name`.

  Per-example mean loss (TFRS defaults to the batch sum), so that logged losses compare
  across batch sizes and the partial last batch; the metric averages a whole epoch, where
  Keras's `loss` is the last batch's.
  """
  return tfrs.tasks.Retrieval(
      loss=tf.keras.losses.CategoricalCrossentropy(
          from_logits=True, reduction=tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE),
      loss_metrics=[tf.keras.metrics.Mean(name=loss_name)],
      temperature=temperature, remove_accidental_hits=True)


class UserIdHead(tf.keras.Model):
  """A second two-tower model trained beside a context query tower (`user_id_head`).

  The user_id query tower (on the user id alone) with its own candidate tower, retrieval
  task and optimizer, at the user_id family's temperature and learning rate. The context
  towers know a user only by their movies; this head learns each user's own embedding,
  and the model scores by the sum of both cosines (docs/model_quality.md measures the
  head against the history tower alone).
  """

  def __init__(self, sizes: VocabularySizes, config: configs.TrainerConfig):
    """Args:
      sizes: Vocabulary sizes (with OOV buckets) from the Transform output.
      config: The model's hyperparameters; the head takes embedding_dim, hidden_layers,
        l2_regularization, optimizer and the candidate tower from it.
    """
    super().__init__(name="user_id_head")
    defaults = towers.FAMILY_DEFAULTS[towers.USER_ID]
    # The user id alone, not the user_id tower's time features: their bucket boundaries
    # are Transform's approximate quantiles, which move a little from run to run, and a
    # model should not change between two runs of the same data.
    self.query_tower = query_towers.UserIdQueryTower(
        sizes.users, sizes.timestamp_buckets, config.towers.embedding_dim,
        config.towers.hidden_layers, config.towers.l2_regularization, use_time=False)
    self.candidate_tower = towers.build_candidate_tower(config, sizes.movies,
                                                        sizes.title_tokens, sizes.genres)
    self.task = retrieval_task(defaults.temperature, "user_id_mean_loss")
    self.head_optimizer = make_optimizer(config.optimization.optimizer, defaults.learning_rate)


class RetrievalModel(tfrs.models.Model):
  """Two towers trained with in-batch softmax, corrected for candidate sampling bias.

  In-batch negatives are drawn in proportion to popularity, so an uncorrected softmax
  pushes popular movies down; the logQ correction subtracts log(sampling probability)
  from each candidate's logit. Accidental hits (the positive movie appearing again as
  another row's candidate) are removed. Retrieval metrics are not computed per batch
  (expensive; the trainer's validation and the Evaluator compute full-catalog ones).
  A context query tower may carry a user id head (`UserIdHead`), a second two-tower
  model whose embeddings are appended to the towers'.
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
    optimization = config.optimization
    if not (optimization.temperature and optimization.learning_rate and optimization.epochs):
      raise ValueError("RetrievalModel needs a resolved config (towers.resolve_config): "
                       "learning_rate, temperature and epochs must be set.")
    self.query_tower_name = config.towers.query_tower
    self.query_tower = towers.build_query_tower(config, sizes.users, sizes.movies,
                                                sizes.timestamp_buckets, max_context)
    self.candidate_tower = towers.build_candidate_tower(config, sizes.movies,
                                                        sizes.title_tokens, sizes.genres)
    self.task = retrieval_task(config.optimization.temperature, "mean_loss")
    self._oov_user_rate = config.optimization.oov_user_rate
    self._sizes = sizes
    self._sampling_probability = tf.constant(movie_sampling_probability, tf.float32)
    self.user_id_head = None
    if config.towers.user_id_head and self.uses_context:
      self.user_id_head = UserIdHead(sizes, config)

  @property
  def uses_context(self) -> bool:
    """Whether the query tower reads the context (CONTEXT_MOVIE_INDICES)."""
    return self.query_tower_name in towers.CONTEXT_QUERY_TOWERS

  def query_embedding(self, inputs: Mapping[str, tf.Tensor],
                      training: bool = False) -> tf.Tensor:
    """L2-normalized [batch, d], or [batch, vectors, d] for a multi-vector query tower
    (the Retrieval task then scores each candidate by its best-matching vector).

    With a user id head, its normalized query is appended to each vector ([..., 2d]),
    as its candidate is to `candidate_embedding`'s, so one dot product is the sum of
    both models' cosines."""
    query = _normalized(self.query_tower(inputs, training=training))
    if self.user_id_head is None:
      return query
    user = _normalized(self.user_id_head.query_tower(inputs, training=training))
    if query.shape.rank == 3:  # Every vector of a multi-vector query gets the same part.
      user = tf.tile(user[:, tf.newaxis, :], [1, tf.shape(query)[1], 1])
    return tf.concat([query, user], axis=-1)

  def candidate_embedding(self, inputs: Mapping[str, tf.Tensor],
                          training: bool = False) -> tf.Tensor:
    candidate = _normalized(self.candidate_tower(inputs, training=training))
    if self.user_id_head is None:
      return candidate
    return tf.concat(
        [candidate, _normalized(self.user_id_head.candidate_tower(inputs, training=training))],
        axis=-1)

  def compute_loss(self, inputs: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    if training and self._oov_user_rate > 0:
      inputs = drop_user_ids(inputs, self._oov_user_rate, self._sizes)
    movie_ids = features.to_vector(inputs[features.MOVIE_ID_INDEX])
    sampling_probability = tf.gather(self._sampling_probability, movie_ids)
    heads = [(self.query_tower, self.candidate_tower, self.task)]
    if self.user_id_head is not None:
      heads.append((self.user_id_head.query_tower, self.user_id_head.candidate_tower,
                    self.user_id_head.task))
    # Each head's loss reads only its own towers: the heads train as separate models.
    return tf.add_n([
        task(_normalized(query_tower(inputs, training=training)),
             _normalized(candidate_tower(inputs, training=training)),
             candidate_sampling_probability=sampling_probability, candidate_ids=movie_ids,
             compute_metrics=False)
        for query_tower, candidate_tower, task in heads])

  def train_step(self, inputs):
    """tfrs.models.Model's step; a user id head's variables take its own optimizer."""
    if self.user_id_head is None:
      return super().train_step(inputs)
    with tf.GradientTape() as tape:
      loss = self.compute_loss(inputs, training=True)
      regularization_loss = tf.reduce_sum([tf.reduce_sum(l) for l in self.losses])
      total_loss = loss + regularization_loss
    head_variables = self.user_id_head.trainable_variables
    head_refs = {variable.ref() for variable in head_variables}
    own_variables = [v for v in self.trainable_variables if v.ref() not in head_refs]
    gradients = tape.gradient(total_loss, own_variables + head_variables)
    self.optimizer.apply_gradients(zip(gradients[:len(own_variables)], own_variables))
    self.user_id_head.head_optimizer.apply_gradients(
        zip(gradients[len(own_variables):], head_variables))
    metrics = {metric.name: metric.result() for metric in self.metrics}
    metrics.update(loss=loss, regularization_loss=regularization_loss, total_loss=total_loss)
    return metrics


def _normalized(embedding: tf.Tensor) -> tf.Tensor:
  return tf.math.l2_normalize(embedding, axis=-1)
