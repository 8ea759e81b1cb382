"""The two-tower retrieval model: a query tower, a candidate tower, the TFRS Retrieval task.

The towers (trainer_module/towers.py) read transformed features (names from
`contracts.features`); variable-length features (title tokens, genres, the context)
arrive as dense int tensors padded with `PADDING` (-1).
"""
import dataclasses
from typing import Dict, List, Mapping, Optional

import tensorflow as tf
import tensorflow_recommenders as tfrs

from contracts import configs
from contracts import features
from trainer_module import distribution
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


class CrossReplicaRetrieval(tfrs.tasks.Retrieval):
  """TFRS's Retrieval task whose in-batch negatives are the candidates of every replica.

  Under a strategy of N replicas each replica's queries are scored against the
  candidates of all replicas (gathered with their ids and sampling probabilities), and
  each replica's loss is its examples' summed loss over the examples of all replicas:
  the replicas' losses, and the gradients Keras sums over the replicas, are those of one
  replica training on the N batches as one. TFRS's own task scores each replica's batch
  alone, and its per-example mean loss is refused under a strategy by Keras.

  With one replica the loss is TFRS's, per-example mean (SUM_OVER_BATCH_SIZE), to float
  precision (the cross-entropy is computed from the positives' indices, not one-hot
  labels). The scoring, logQ correction and accidental hit removal are TFRS's layers; hard
  negative mining, score masks and factorized or batch metrics are not supported.
  """

  def __init__(self, temperature: float, remove_accidental_hits: bool = True,
               loss_metrics: Optional[List[tf.keras.metrics.Metric]] = None,
               name: Optional[str] = None):
    """Args:
      temperature: Temperature of the softmax.
      remove_accidental_hits: Drop other rows' copies of a query's positive candidate
        from its negatives (`call` then needs `candidate_ids`).
      loss_metrics: Metrics updated with the loss; under N replicas each receives the
        replica's loss times N, which Keras's metrics (summed over the replicas) average
        to the loss of the whole step.
      name: Layer name.
    """
    # No Keras loss: `call` computes the cross-entropy itself.
    super().__init__(
        loss_metrics=loss_metrics, temperature=temperature,
        remove_accidental_hits=remove_accidental_hits, name=name)

  def call(self, query_embeddings: tf.Tensor, candidate_embeddings: tf.Tensor,
           sample_weight: Optional[tf.Tensor] = None,
           candidate_sampling_probability: Optional[tf.Tensor] = None,
           candidate_ids: Optional[tf.Tensor] = None,
           compute_metrics: bool = True, compute_batch_metrics: bool = True,
           score_mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The in-batch softmax loss of this replica's queries over every replica's
    candidates, as a share of the mean over all replicas' examples.

    Args are tfrs.tasks.Retrieval.call's: query_embeddings [queries, d] (or
    [queries, vectors, d], scored by the best vector), candidate_embeddings
    [candidates, d] whose first rows are the queries' positives, sample_weight
    [queries], candidate_sampling_probability and candidate_ids [candidates].
    compute_metrics and compute_batch_metrics are unused (no such metrics).
    """
    del compute_metrics, compute_batch_metrics  # No factorized or batch metrics.
    if score_mask is not None:
      raise ValueError("CrossReplicaRetrieval does not support score_mask.")
    constants = [c for c in (candidate_sampling_probability, candidate_ids) if c is not None]
    num_queries = tf.shape(query_embeddings, out_type=tf.int32)[0]
    batch = distribution.gather_replicas([candidate_embeddings], constants, num_queries)
    gathered = iter(batch.constants)
    probability = None if candidate_sampling_probability is None else next(gathered)
    ids = None if candidate_ids is None else next(gathered)
    # Query i's positive is its own candidate, at this replica's offset in the gathered rows.
    positives = batch.offset + tf.range(num_queries)
    labels = tf.one_hot(positives, batch.num_rows)
    scores = self._logits(query_embeddings, batch.differentiable[0], labels, probability, ids)
    # The categorical cross-entropy of TFRS's task, from the positives' indices: the same
    # value without the one-hot labels' [queries, rows] pass (the costliest op of a step).
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(positives, scores)
    if sample_weight is not None:
      per_example *= tf.cast(tf.reshape(sample_weight, [-1]), per_example.dtype)
    loss = tf.math.divide_no_nan(tf.reduce_sum(per_example),
                                 tf.cast(batch.num_examples, per_example.dtype))
    shown = loss * batch.num_replicas if batch.num_replicas > 1 else loss
    update_ops = [metric.update_state(shown) for metric in self._loss_metrics]
    with tf.control_dependencies(update_ops):
      return tf.identity(loss)

  def _logits(self, queries: tf.Tensor, candidates: tf.Tensor, labels: tf.Tensor,
              probability: Optional[tf.Tensor], ids: Optional[tf.Tensor]) -> tf.Tensor:
    """Scores as tfrs.tasks.Retrieval computes them: dot products (the best query vector
    of a multi-vector query), over the temperature, logQ corrected, accidental hits
    removed."""
    if queries.shape.rank == 3:
      scores = tf.reduce_max(tf.einsum("qne,ce->qnc", queries, candidates), axis=1)
    else:
      scores = tf.linalg.matmul(queries, candidates, transpose_b=True)
    if self._temperature is not None:
      scores = scores / self._temperature
    if probability is not None:
      scores = tfrs.layers.loss.SamplingProbablityCorrection()(scores, probability)
    if self._remove_accidental_hits:
      if ids is None:
        raise ValueError("When accidental hit removal is enabled, candidate ids must be "
                         "supplied.")
      scores = tfrs.layers.loss.RemoveAccidentalHits()(labels, scores, ids)
    return scores


def retrieval_task(temperature: float, loss_name: str) -> CrossReplicaRetrieval:
  """The in-batch softmax task, accidental hits removed, with a metric `loss_name`.

  Per-example mean loss (TFRS defaults to the batch sum), so that logged losses compare
  across batch sizes and the partial last batch; the metric averages a whole epoch, where
  Keras's `loss` is the last batch's. Under a strategy the negatives are every replica's
  candidates and the mean is over every replica's examples (`CrossReplicaRetrieval`).
  """
  return CrossReplicaRetrieval(temperature, loss_metrics=[tf.keras.metrics.Mean(name=loss_name)])


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

  # The steps run as written, not converted by AutoGraph: they have no tensor-dependent
  # Python control flow, and AutoGraph would otherwise convert every tf_keras function they
  # reach (tf_keras is not on AutoGraph's do-not-convert list, as keras is), which makes
  # tracing a step slower than many training steps.
  @tf.autograph.experimental.do_not_convert
  def train_step(self, inputs):
    """tfrs.models.Model's step, under any strategy; a user id head's variables take its
    own optimizer.

    Keras sums the replicas' gradients: each replica's task loss is already its share of
    the whole step's mean, and the regularization is divided by the replicas so that it
    counts once. Summed over the replicas, the gradients and logged losses are those of
    one replica stepping on the whole global batch.
    """
    with tf.GradientTape() as tape:
      loss = self.compute_loss(inputs, training=True)
      regularization_loss = self._regularization_share()
      total_loss = loss + regularization_loss
    head_variables = self.user_id_head.trainable_variables if self.user_id_head else []
    head_refs = {variable.ref() for variable in head_variables}
    own_variables = [v for v in self.trainable_variables if v.ref() not in head_refs]
    gradients = tape.gradient(total_loss, own_variables + head_variables)
    self.optimizer.apply_gradients(zip(gradients[:len(own_variables)], own_variables))
    if head_variables:
      self.user_id_head.head_optimizer.apply_gradients(
          zip(gradients[len(own_variables):], head_variables))
    return self._step_logs(loss, regularization_loss)

  @tf.autograph.experimental.do_not_convert
  def test_step(self, inputs):
    """tfrs.models.Model's step, under any strategy (the losses as `train_step`'s)."""
    loss = self.compute_loss(inputs, training=False)
    return self._step_logs(loss, self._regularization_share())

  def _regularization_share(self) -> tf.Tensor:
    """The regularization losses over the replicas running the step (all of it with one):
    the replicas' summed gradients then carry it once."""
    regularization = tf.reduce_sum([tf.reduce_sum(loss) for loss in self.losses])
    replicas = distribution.replicas_in_step()
    return regularization / replicas if replicas > 1 else regularization

  def _step_logs(self, loss: tf.Tensor, regularization_loss: tf.Tensor) -> Dict[str, tf.Tensor]:
    """The metrics (the whole step's mean losses) and this replica's shares of the step's
    losses. `training.build_model` has Keras log the first replica's values
    (distribute_reduction_method 'first'): summed across workers, the metrics would count
    each worker's copy of the whole step's mean."""
    logs = {metric.name: metric.result() for metric in self.metrics}
    logs.update(loss=loss, regularization_loss=regularization_loss,
                total_loss=loss + regularization_loss)
    return logs


def _normalized(embedding: tf.Tensor) -> tf.Tensor:
  return tf.math.l2_normalize(embedding, axis=-1)
