"""Query towers: Keras models from a request's transformed features to its embedding.

Each reads a mapping of transformed features (names from `contracts.features`) and
returns an unnormalized float32 [batch, output_dim] embedding, or, for the history tower
with interests, [batch, 1 + num_interests, output_dim] (a multi-vector query, scored by
its best-matching vector). towers.py lists the families and builds them by name.

The context (`features.CONTEXT_MOVIE_INDICES`) is int [batch, n], the movie vocabulary
indices of the user's previous movies, most recent first, padded with `layers.PADDING`.
"""
from typing import Mapping, Sequence

import tensorflow as tf

from contracts import configs
from contracts import features
from trainer_module import layers


class _UserAndTime(tf.keras.layers.Layer):
  """Optional user id and time features of a query, concatenated: [batch, k] (k may be 0)."""

  def __init__(self, num_users: int, num_time_buckets: int, dim: int, l2: float, **kwargs):
    super().__init__(**kwargs)
    self._user = (layers.embedding_table(num_users, dim, l2, "user_id") if num_users else None)
    self._time = (layers.embedding_table(num_time_buckets, max(dim // 4, 4), l2,
                                         "timestamp_bucket") if num_time_buckets else None)

  @property
  def uses_user(self) -> bool:
    return self._user is not None

  def call(self, inputs: Mapping[str, tf.Tensor]) -> list:
    parts = []
    if self._user is not None:
      parts.append(self._user(features.to_vector(inputs[features.USER_ID_INDEX])))
    if self._time is not None:
      parts.append(self._time(features.to_vector(inputs[features.TIMESTAMP_BUCKET])))
      parts.append(tf.cast(features.to_vector(inputs[features.TIMESTAMP_NORMALIZED]),
                           tf.float32)[:, tf.newaxis])
    return parts


class UserIdQueryTower(tf.keras.Model):
  """User id embedding + timestamp bucket embedding + normalized timestamp -> embedding."""

  def __init__(self, num_users: int, num_time_buckets: int, output_dim: int,
               hidden_layers: Sequence[int] = (), l2: float = 0.0, name: str = "query_tower",
               use_time: bool = True):
    """Args:
      num_users: User vocabulary size, OOV buckets included.
      num_time_buckets: Timestamp buckets of the Transform output.
      output_dim: Embedding size.
      hidden_layers: ReLU layer sizes before the final linear projection.
      l2: L2 penalty on the embedding tables.
      name: Keras name.
      use_time: Read the query time (bucket embedding and normalized timestamp); False:
        the user id alone.
    """
    super().__init__(name=name)
    layers.check_positive(num_users=num_users, num_time_buckets=num_time_buckets,
                    output_dim=output_dim)
    self.user_and_time = _UserAndTime(num_users, num_time_buckets if use_time else 0,
                                      output_dim, l2, name="user_and_time")
    self.projection = layers.dense_stack(layers.check_hidden(hidden_layers), output_dim,
                                         "query_projection")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    return self.projection(tf.concat(self.user_and_time(inputs), axis=1))


class HistoryQueryTower(tf.keras.Model):
  """Mean of the context movies' embeddings (+ optional user id and time) -> embedding.

  The context table is the tower's own (not the candidate tower's). A query with an
  empty context gets the projection of zeros (plus the user and time parts, if used).

  With `num_interests` > 0 the query is several vectors [batch, 1 + num_interests, d]:
  the mean, then each interest of `layers.MultiInterestPooling` over the same context
  embeddings, each concatenated with the user and time parts and projected by the same
  layers. A movie then scores by the vector it matches best, so a user with several
  tastes is matched on each.
  """

  def __init__(self, num_movies: int, output_dim: int, hidden_layers: Sequence[int] = (),
               num_users: int = 0, num_time_buckets: int = 0, num_interests: int = 0,
               l2: float = 0.0, name: str = "query_tower"):
    """Args:
      num_movies: Movie vocabulary size, OOV buckets included (context ids index it).
      output_dim: Embedding size (also the context embedding size).
      hidden_layers: ReLU layer sizes before the final linear projection.
      num_users: User vocabulary size to add a user id embedding; 0 for none.
      num_time_buckets: Timestamp buckets to add time features; 0 for none.
      num_interests: Attention-pooled interest vectors beside the mean; 0 for the mean
        only (a [batch, output_dim] output).
      l2: L2 penalty on the embedding tables.
      name: Keras name.
    """
    super().__init__(name=name)
    layers.check_positive(num_movies=num_movies, output_dim=output_dim)
    if num_interests < 0:
      raise ValueError(f"num_interests must be >= 0, got {num_interests}.")
    self.context_embedding = layers.PaddedEmbedding(num_movies, output_dim, l2,
                                                    name="context")
    self.interests = (layers.MultiInterestPooling(num_interests, name="interests")
                      if num_interests else None)
    self.user_and_time = _UserAndTime(num_users, num_time_buckets, output_dim, l2,
                                      name="user_and_time")
    self.projection = layers.dense_stack(layers.check_hidden(hidden_layers), output_dim,
                                         "query_projection")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    ids = inputs[features.CONTEXT_MOVIE_INDICES]
    items, mask = self.context_embedding(ids), layers.padding_mask(ids)
    pooled = layers.masked_mean(items, mask)
    user_and_time = self.user_and_time(inputs)
    if self.interests is None:
      return self.projection(tf.concat([pooled] + user_and_time, axis=1))
    vectors = tf.concat([pooled[:, tf.newaxis], self.interests(items, mask)], axis=1)
    if user_and_time:
      # The same user and time parts beside every vector: [batch, vectors, k].
      per_query = tf.concat(user_and_time, axis=1)[:, tf.newaxis]
      vectors = tf.concat([vectors, tf.repeat(per_query, tf.shape(vectors)[1], axis=1)],
                          axis=2)
    return self.projection(vectors)


def _context_embedding(kind: str, num_movies: int, dim: int, num_hashes: int,
                       l2: float) -> tf.keras.layers.Layer:
  if kind == configs.TABLE:
    return layers.PaddedEmbedding(num_movies, dim, l2, name="context_table")
  if kind == configs.DEEP_HASH:
    return layers.DeepHashEmbedding(dim, num_hashes=num_hashes, hidden_layers=(2 * dim,),
                                    name="context_deep_hash")
  raise ValueError(f"context_embedding must be one of {configs.CONTEXT_EMBEDDINGS}, got {kind!r}.")


class SequentialAttentionQueryTower(tf.keras.Model):
  """Context movies -> masked multi-head self-attention -> pooled -> MLP -> embedding.

  The sequential deep-hash-with-attention query model: each context movie is embedded
  (a table, or a deep hash embedding with no per-movie table), position embeddings mark
  recency, transformer blocks attend over the real items only, and the masked mean of
  their outputs (with the optional user id and time features) goes through an MLP.
  """

  def __init__(self, num_movies: int, output_dim: int, max_context: int,
               num_heads: int = 2, num_layers: int = 1, hidden_layers: Sequence[int] = (),
               context_embedding: str = configs.TABLE, num_hashes: int = 64, num_users: int = 0,
               num_time_buckets: int = 0, dropout: float = 0.0, l2: float = 0.0,
               name: str = "query_tower"):
    """Args:
      num_movies: Movie vocabulary size, OOV buckets included.
      output_dim: Embedding size (also the per-item size inside the encoder).
      max_context: Longest context accepted (position embeddings).
      num_heads: Attention heads.
      num_layers: Transformer blocks.
      hidden_layers: ReLU layer sizes before the final linear projection.
      context_embedding: 'table' or 'deep_hash'.
      num_hashes: Hash functions of the deep hash embedding.
      num_users: User vocabulary size to add a user id embedding; 0 for none.
      num_time_buckets: Timestamp buckets to add time features; 0 for none.
      dropout: Attention dropout while training.
      l2: L2 penalty on the embedding tables.
      name: Keras name.
    """
    super().__init__(name=name)
    layers.check_positive(num_movies=num_movies, output_dim=output_dim, max_context=max_context)
    self.item_embedding = _context_embedding(context_embedding, num_movies, output_dim,
                                             num_hashes, l2)
    self.encoder = layers.MaskedSelfAttentionEncoder(max_context, num_heads, num_layers,
                                                     dropout, name="self_attention")
    self.user_and_time = _UserAndTime(num_users, num_time_buckets, output_dim, l2,
                                      name="user_and_time")
    self.projection = layers.dense_stack(layers.check_hidden(hidden_layers), output_dim,
                                         "query_projection")

  def call(self, inputs: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    ids = inputs[features.CONTEXT_MOVIE_INDICES]
    pooled = self.encoder(self.item_embedding(ids), layers.padding_mask(ids),
                          training=training)
    return self.projection(tf.concat([pooled] + self.user_and_time(inputs), axis=1))


class SequentialMoEQueryTower(tf.keras.Model):
  """An attention expert and a GRU expert over the context, mixed by a learned gate.

  Self-attention sees the whole context at once (long-range interests); the GRU reads it
  from the oldest to the latest movie (short-range, recent interests). A gate reads the
  mean context embedding and weighs the two experts per query; the mixture (with the
  optional user id and time features) goes through an MLP.
  """

  def __init__(self, num_movies: int, output_dim: int, max_context: int,
               num_heads: int = 2, hidden_layers: Sequence[int] = (),
               context_embedding: str = configs.TABLE, num_hashes: int = 64, num_users: int = 0,
               num_time_buckets: int = 0, dropout: float = 0.0, l2: float = 0.0,
               name: str = "query_tower"):
    """Args: as `SequentialAttentionQueryTower` (one transformer block), and the GRU's
    state has `output_dim` units."""
    super().__init__(name=name)
    layers.check_positive(num_movies=num_movies, output_dim=output_dim, max_context=max_context)
    self.item_embedding = _context_embedding(context_embedding, num_movies, output_dim,
                                             num_hashes, l2)
    self.attention_expert = layers.MaskedSelfAttentionEncoder(
        max_context, num_heads, 1, dropout, name="attention_expert")
    self.gru_expert = layers.MaskedGRUEncoder(output_dim, name="gru_expert")
    self.mixture = layers.GatedMixture(2, name="mixture")
    self.user_and_time = _UserAndTime(num_users, num_time_buckets, output_dim, l2,
                                      name="user_and_time")
    self.projection = layers.dense_stack(layers.check_hidden(hidden_layers), output_dim,
                                         "query_projection")

  def expert_weights(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """float32 [batch, 2]: the gate's weights of the attention and GRU experts."""
    ids = inputs[features.CONTEXT_MOVIE_INDICES]
    return self.mixture.gate_weights(
        layers.masked_mean(self.item_embedding(ids), layers.padding_mask(ids)))

  def call(self, inputs: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    ids = inputs[features.CONTEXT_MOVIE_INDICES]
    items, mask = self.item_embedding(ids), layers.padding_mask(ids)
    mixed = self.mixture([self.attention_expert(items, mask, training=training),
                          self.gru_expert(items, mask)],
                         gate_input=layers.masked_mean(items, mask))
    return self.projection(tf.concat([mixed] + self.user_and_time(inputs), axis=1))
