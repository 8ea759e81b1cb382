"""Reusable Keras layers of the towers: masked pooling, deep hash embedding, sequence encoders,
and the serving index of multi-vector queries.

Id lists (context movies, title tokens, genres) arrive as dense int tensors padded with
`PADDING` (-1). Every layer here treats padding as absent: appending padding to a row, or
padding a batch to a wider width, never changes an output. Sequences are ordered most
recent first (position 0 is the latest movie), so a row's positions do not depend on how
much padding follows it.
"""
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

PADDING = -1

# A Mersenne prime above every id the deep hash embedding accepts (ids < 2**31), so
# ((a * id + b) mod p) is a universal hash family computed exactly in int64.
_MERSENNE_PRIME_31 = 2**31 - 1


def padding_mask(ids: tf.Tensor) -> tf.Tensor:
  """bool [..., n]: True where `ids` holds an id, False at padding."""
  return tf.not_equal(ids, PADDING)


def masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  """Mean of `values` [batch, n, d] over the positions where `mask` [batch, n] is True.

  A row with no True position gives zeros.
  """
  weights = tf.cast(mask, values.dtype)[..., tf.newaxis]
  total = tf.reduce_sum(values * weights, axis=-2)
  return total / tf.maximum(tf.reduce_sum(weights, axis=-2), 1.0)


def dense_stack(hidden_layers: Sequence[int], output_dim: int, name: str,
                activation: str = "relu") -> tf.keras.Sequential:
  """Dense layers of the given sizes with `activation`, then a linear layer to output_dim."""
  layers = [tf.keras.layers.Dense(size, activation=activation) for size in hidden_layers]
  layers.append(tf.keras.layers.Dense(output_dim))
  return tf.keras.Sequential(layers, name=name)


def embedding_table(size: int, dim: int, l2: float, name: str) -> tf.keras.layers.Embedding:
  """An embedding table with an optional L2 penalty."""
  regularizer = tf.keras.regularizers.l2(l2) if l2 else None
  return tf.keras.layers.Embedding(size, dim, embeddings_regularizer=regularizer, name=name)


class PaddedEmbedding(tf.keras.layers.Layer):
  """Embeds padded id lists [batch, n] -> [batch, n, dim]; padding rows are zeros.

  Ids are in [0, vocabulary_size); the table has one extra row for padding, which is
  never trained (its output is multiplied by the mask).
  """

  def __init__(self, vocabulary_size: int, dim: int, l2: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    if vocabulary_size < 1 or dim < 1:
      raise ValueError(f"vocabulary_size and dim must be >= 1, got {vocabulary_size}, {dim}.")
    self.vocabulary_size = vocabulary_size
    self.dim = dim
    self._table = embedding_table(vocabulary_size + 1, dim, l2, f"{self.name}_table")

  def call(self, ids: tf.Tensor) -> tf.Tensor:
    mask = tf.cast(padding_mask(ids), tf.float32)[..., tf.newaxis]
    # Padding (-1) reads row 0; every id is shifted by one.
    return self._table(tf.maximum(ids, PADDING) + 1) * mask


class MaskedMeanEmbedding(tf.keras.layers.Layer):
  """Mean of the embeddings of a padded id list [batch, n] -> [batch, dim].

  An all-padding row gives zeros.
  """

  def __init__(self, vocabulary_size: int, dim: int, l2: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    self._embedding = PaddedEmbedding(vocabulary_size, dim, l2, name=f"{self.name}_ids")

  def call(self, ids: tf.Tensor) -> tf.Tensor:
    return masked_mean(self._embedding(ids), padding_mask(ids))


class MultiInterestPooling(tf.keras.layers.Layer):
  """Pools a padded sequence [batch, n, d] into `num_interests` vectors [batch, K, d].

  Self-attentive multi-interest pooling (ComiRec-SA, Cen et al., 2020): each item gets
  one attention logit per interest from a small MLP, logits are softmaxed over the real
  items of the row, and interest k is the weighted sum of the item embeddings. A user
  whose movies fall into several tastes can then be matched on each of them, where a
  single mean vector lies between them. Padding gets zero weight, so it never changes an
  output; an all-padding row gives zeros.
  """

  def __init__(self, num_interests: int, **kwargs):
    super().__init__(**kwargs)
    if num_interests < 1:
      raise ValueError(f"num_interests must be >= 1, got {num_interests}.")
    self.num_interests = num_interests

  def build(self, input_shape):
    dim = int(input_shape[-1])
    self._keys = tf.keras.layers.Dense(dim, activation="tanh", name=f"{self.name}_keys")
    self._logits = tf.keras.layers.Dense(self.num_interests, use_bias=False,
                                         name=f"{self.name}_logits")
    super().build(input_shape)

  def attention_weights(self, embeddings: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """float32 [batch, n, K]: each interest's weights over the items, 0 at padding.

    Each column sums to 1 over a row's real items (to 0 for an all-padding row).
    """
    if not self.built:  # Called directly, before the layer's first call.
      self.build(embeddings.shape)
    real = tf.cast(mask, tf.float32)[..., tf.newaxis]
    # A large negative logit gives padding an exact 0 after the softmax, whatever the
    # real items' logits; multiplying by `real` then zeroes all-padding rows too.
    logits = self._logits(self._keys(embeddings)) - (1.0 - real) * 1e9
    return tf.nn.softmax(logits, axis=1) * real

  def call(self, embeddings: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    return tf.einsum("bnk,bnd->bkd", self.attention_weights(embeddings, mask), embeddings)


class MaxSimBruteForce(tfrs.layers.factorized_top_k.BruteForce):
  """TFRS's exact top-k index, for queries of one vector [batch, d] or several [batch, H, d].

  A multi-vector query scores each candidate by its best-matching vector ("maxsim"),
  the scoring `tfrs.tasks.Retrieval` trains such queries with. One-vector queries score
  exactly as `BruteForce` does.
  """

  def _compute_score(self, queries: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
    if queries.shape.rank == 3:
      return tf.reduce_max(tf.einsum("bhd,cd->bhc", queries, candidates), axis=1)
    return super()._compute_score(queries, candidates)


class DeepHashEmbedding(tf.keras.layers.Layer):
  """Deep Hash Embedding (Kang et al., 2021): k hashes of an id, then an MLP.

  Each id is encoded by `num_hashes` universal hash functions
  h_i(x) = ((a_i * x + b_i) mod p) mod num_buckets, scaled to [-1, 1]: a dense, fixed,
  parameter-free code. An MLP maps the code to the embedding. There is no table with a
  row per id, so the parameter count does not depend on the number of ids; two ids
  collide only if all k hashes agree.

  Input: int ids of any shape [...], in [0, 2**31); `PADDING` entries give zero vectors.
  Output: float32 [..., output_dim].
  """

  def __init__(self, output_dim: int, num_hashes: int = 64,
               hidden_layers: Sequence[int] = (128,), num_buckets: int = 1_000_003,
               seed: int = 0, **kwargs):
    super().__init__(**kwargs)
    if output_dim < 1 or num_hashes < 1 or num_buckets < 2:
      raise ValueError("output_dim and num_hashes must be >= 1 and num_buckets >= 2, got "
                       f"{output_dim}, {num_hashes}, {num_buckets}.")
    if any(size < 1 for size in hidden_layers):
      raise ValueError(f"hidden_layers sizes must be positive, got {list(hidden_layers)}.")
    self.output_dim = output_dim
    self.num_hashes = num_hashes
    self.num_buckets = num_buckets
    rng = np.random.default_rng(seed)
    # Constants (not variables): the hash family is fixed at construction, from the seed.
    self._a = tf.constant(rng.integers(1, _MERSENNE_PRIME_31, num_hashes), tf.int64)
    self._b = tf.constant(rng.integers(0, _MERSENNE_PRIME_31, num_hashes), tf.int64)
    self._mlp = dense_stack(list(hidden_layers), output_dim, f"{self.name}_mlp",
                            activation="relu")

  def hash_code(self, ids: tf.Tensor) -> tf.Tensor:
    """float32 [..., num_hashes] in [-1, 1]: the dense hash encoding of each id."""
    x = tf.cast(ids, tf.int64)[..., tf.newaxis]
    hashed = tf.math.floormod(tf.math.floormod(self._a * x + self._b, _MERSENNE_PRIME_31),
                              self.num_buckets)
    return tf.cast(hashed, tf.float32) / ((self.num_buckets - 1) / 2.0) - 1.0

  def call(self, ids: tf.Tensor) -> tf.Tensor:
    mask = tf.cast(padding_mask(ids), tf.float32)[..., tf.newaxis]
    safe_ids = tf.maximum(tf.cast(ids, tf.int64), 0)
    return self._mlp(self.hash_code(safe_ids)) * mask


class MaskedSelfAttentionEncoder(tf.keras.layers.Layer):
  """Transformer encoder blocks over a padded sequence, then masked mean pooling.

  Input: embeddings [batch, n, d] and mask bool [batch, n] (True for real items), most
  recent first. A learned position embedding (position 0 = most recent) is added, then
  `num_layers` blocks of masked multi-head self-attention and a feed-forward layer, each
  with a residual connection and layer normalization. Padded positions are neither
  attended to nor pooled. Output: [batch, d]; zeros for an all-padding row.
  """

  def __init__(self, max_length: int, num_heads: int = 2, num_layers: int = 1,
               dropout: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    if max_length < 1 or num_heads < 1 or num_layers < 1:
      raise ValueError("max_length, num_heads and num_layers must be >= 1, got "
                       f"{max_length}, {num_heads}, {num_layers}.")
    self.max_length = max_length
    self.num_heads = num_heads
    self.num_layers = num_layers
    self.dropout = dropout

  def build(self, input_shape):
    dim = int(input_shape[-1])
    self._positions = self.add_weight(
        name="position_embedding", shape=[self.max_length, dim],
        initializer=tf.keras.initializers.RandomNormal(stddev=0.02))
    self._attention = [
        tf.keras.layers.MultiHeadAttention(self.num_heads, max(dim // self.num_heads, 1),
                                           dropout=self.dropout, name=f"attention_{i}")
        for i in range(self.num_layers)]
    self._feed_forward = [dense_stack([2 * dim], dim, f"feed_forward_{i}")
                          for i in range(self.num_layers)]
    self._norms = [(tf.keras.layers.LayerNormalization(name=f"attention_norm_{i}"),
                    tf.keras.layers.LayerNormalization(name=f"feed_forward_norm_{i}"))
                   for i in range(self.num_layers)]
    super().build(input_shape)

  def call(self, embeddings: tf.Tensor, mask: tf.Tensor, training: bool = False) -> tf.Tensor:
    length = tf.shape(embeddings)[1]
    tf.debugging.assert_less_equal(length, self.max_length,
                                   message="sequence longer than max_length")
    x = embeddings + self._positions[tf.newaxis, :length]
    # Query position i may attend to key position j iff j is a real item. Rows of
    # padded queries are computed but never pooled.
    attention_mask = mask[:, tf.newaxis, :] & tf.ones_like(mask)[:, :, tf.newaxis]
    for attention, feed_forward, (norm_1, norm_2) in zip(
        self._attention, self._feed_forward, self._norms):
      x = norm_1(x + attention(x, x, attention_mask=attention_mask, training=training))
      x = norm_2(x + feed_forward(x))
    return masked_mean(x, mask)


class MaskedGRUEncoder(tf.keras.layers.Layer):
  """A GRU over a padded sequence, read from the oldest item to the most recent one.

  Input: embeddings [batch, n, d] and mask bool [batch, n], most recent first (padding
  at the end). The GRU runs backwards over the row, so it ends on the most recent item;
  masked steps keep the state unchanged. Output: the final state [batch, units]; zeros
  for an all-padding row.
  """

  def __init__(self, units: int, **kwargs):
    super().__init__(**kwargs)
    if units < 1:
      raise ValueError(f"units must be >= 1, got {units}.")
    self.units = units
    self._gru = tf.keras.layers.GRU(units, go_backwards=True, name=f"{self.name}_gru")

  def call(self, embeddings: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    state = self._gru(embeddings, mask=mask)
    # An all-padding row never updates the state; make its output exactly zero.
    has_items = tf.cast(tf.reduce_any(mask, axis=1), state.dtype)[:, tf.newaxis]
    return state * has_items


class GatedMixture(tf.keras.layers.Layer):
  """Mixes expert outputs [batch, d] with softmax weights from a learned gate.

  The gate reads `gate_input` [batch, g] (e.g. the pooled context) and outputs one logit
  per expert; the result is sum_i softmax(logits)_i * expert_i. `last_weights` is not
  kept: call `gate_weights` to inspect the mixture.
  """

  def __init__(self, num_experts: int, **kwargs):
    super().__init__(**kwargs)
    if num_experts < 2:
      raise ValueError(f"A mixture needs at least 2 experts, got {num_experts}.")
    self.num_experts = num_experts
    self._gate = tf.keras.layers.Dense(num_experts, name=f"{self.name}_gate")

  def gate_weights(self, gate_input: tf.Tensor) -> tf.Tensor:
    """float32 [batch, num_experts], rows sum to 1."""
    return tf.nn.softmax(self._gate(gate_input), axis=-1)

  def call(self, experts: Sequence[tf.Tensor], gate_input: tf.Tensor) -> tf.Tensor:
    if len(experts) != self.num_experts:
      raise ValueError(f"Expected {self.num_experts} experts, got {len(experts)}.")
    weights = self.gate_weights(gate_input)
    stacked = tf.stack(list(experts), axis=1)  # [batch, experts, d]
    return tf.reduce_sum(stacked * weights[..., tf.newaxis], axis=1)


def validate_ids(ids: tf.Tensor, vocabulary_size: int, name: Optional[str] = None) -> None:
  """Raises InvalidArgumentError (eagerly) if an id is outside [-1, vocabulary_size)."""
  tf.debugging.assert_greater_equal(ids, tf.cast(PADDING, ids.dtype),
                                    message=f"{name or 'ids'} below the padding value")
  tf.debugging.assert_less(ids, tf.cast(vocabulary_size, ids.dtype),
                           message=f"{name or 'ids'} outside the vocabulary")


def check_positive(**values: int) -> None:
  """Raises ValueError naming the first size below 1."""
  for name, value in values.items():
    if value < 1:
      raise ValueError(f"{name} must be >= 1, got {value}.")


def check_hidden(hidden_layers: Sequence[int]) -> list:
  """The hidden layer sizes as a list; raises ValueError when one is below 1."""
  hidden = list(hidden_layers)
  if any(size < 1 for size in hidden):
    raise ValueError(f"hidden_layers sizes must be positive, got {hidden}.")
  return hidden
