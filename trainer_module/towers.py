"""Query and candidate towers: Keras models from transformed features to an embedding.

Every tower reads a mapping of transformed features (names from `trainer_module.features`)
and returns an unnormalized float32 [batch, output_dim] embedding, or, for the history
tower with interests, [batch, 1 + num_interests, output_dim] (a multi-vector query, scored
by its best-matching vector); `RetrievalModel` L2-normalizes every vector. Towers are
built from the layers of `trainer_module.layers` and are chosen by name (`QUERY_TOWERS`,
`CANDIDATE_TOWERS`).

Query towers:
  user_id               user id embedding + timestamp bucket embedding + scaled time.
  history               masked mean of the context movies' embeddings, optionally with
                        the user id and time embeddings, and optionally attention-pooled
                        interest vectors beside the mean (`num_interests`).
  sequential_attention  context movies (table or deep-hash embeddings) through masked
                        multi-head self-attention, pooled, then an MLP.
  sequential_moe        an attention expert (long range) and a GRU expert (short range)
                        over the context, mixed by a learned gate.
Candidate towers:
  features              movie id embedding + mean title-token and genre embeddings.
  deep_hash             deep hash embedding of the movie id (no per-movie table) + mean
                        genre embedding.

The context (`CONTEXT_MOVIE_INDICES`) is int [batch, n], the movie vocabulary indices of
the user's previous movies, most recent first, padded with `layers.PADDING`.
"""
import dataclasses
from typing import Mapping, Sequence

import tensorflow as tf

from contracts import configs
from contracts import features
from trainer_module import layers

CONTEXT_MOVIE_INDICES = features.CONTEXT_MOVIE_INDICES

# Tower names are spelled once, in contracts/configs.py (the flags' allowed values).
USER_ID = configs.USER_ID_TOWER
HISTORY = configs.HISTORY_TOWER
SEQUENTIAL_ATTENTION = configs.SEQUENTIAL_ATTENTION_TOWER
SEQUENTIAL_MOE = configs.SEQUENTIAL_MOE_TOWER
QUERY_TOWERS = configs.QUERY_TOWERS
# Query towers that read the context feature.
CONTEXT_QUERY_TOWERS = (HISTORY, SEQUENTIAL_ATTENTION, SEQUENTIAL_MOE)

FEATURES = configs.FEATURES_TOWER
DEEP_HASH = configs.DEEP_HASH
CANDIDATE_TOWERS = configs.CANDIDATE_TOWERS

TABLE = configs.TABLE
CONTEXT_EMBEDDINGS = configs.CONTEXT_EMBEDDINGS


def _check_positive(**values: int) -> None:
  for name, value in values.items():
    if value < 1:
      raise ValueError(f"{name} must be >= 1, got {value}.")


def _check_hidden(hidden_layers: Sequence[int]) -> list:
  hidden = list(hidden_layers)
  if any(size < 1 for size in hidden):
    raise ValueError(f"hidden_layers sizes must be positive, got {hidden}.")
  return hidden


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
    _check_positive(num_users=num_users, num_time_buckets=num_time_buckets,
                    output_dim=output_dim)
    self.user_and_time = _UserAndTime(num_users, num_time_buckets if use_time else 0,
                                      output_dim, l2, name="user_and_time")
    self.projection = layers.dense_stack(_check_hidden(hidden_layers), output_dim,
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
    _check_positive(num_movies=num_movies, output_dim=output_dim)
    if num_interests < 0:
      raise ValueError(f"num_interests must be >= 0, got {num_interests}.")
    self.context_embedding = layers.PaddedEmbedding(num_movies, output_dim, l2,
                                                    name="context")
    self.interests = (layers.MultiInterestPooling(num_interests, name="interests")
                      if num_interests else None)
    self.user_and_time = _UserAndTime(num_users, num_time_buckets, output_dim, l2,
                                      name="user_and_time")
    self.projection = layers.dense_stack(_check_hidden(hidden_layers), output_dim,
                                         "query_projection")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    ids = inputs[CONTEXT_MOVIE_INDICES]
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
  if kind == TABLE:
    return layers.PaddedEmbedding(num_movies, dim, l2, name="context_table")
  if kind == DEEP_HASH:
    return layers.DeepHashEmbedding(dim, num_hashes=num_hashes, hidden_layers=(2 * dim,),
                                    name="context_deep_hash")
  raise ValueError(f"context_embedding must be one of {CONTEXT_EMBEDDINGS}, got {kind!r}.")


class SequentialAttentionQueryTower(tf.keras.Model):
  """Context movies -> masked multi-head self-attention -> pooled -> MLP -> embedding.

  The sequential deep-hash-with-attention query model: each context movie is embedded
  (a table, or a deep hash embedding with no per-movie table), position embeddings mark
  recency, transformer blocks attend over the real items only, and the masked mean of
  their outputs (with the optional user id and time features) goes through an MLP.
  """

  def __init__(self, num_movies: int, output_dim: int, max_context: int,
               num_heads: int = 2, num_layers: int = 1, hidden_layers: Sequence[int] = (),
               context_embedding: str = TABLE, num_hashes: int = 64, num_users: int = 0,
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
    _check_positive(num_movies=num_movies, output_dim=output_dim, max_context=max_context)
    self.item_embedding = _context_embedding(context_embedding, num_movies, output_dim,
                                             num_hashes, l2)
    self.encoder = layers.MaskedSelfAttentionEncoder(max_context, num_heads, num_layers,
                                                     dropout, name="self_attention")
    self.user_and_time = _UserAndTime(num_users, num_time_buckets, output_dim, l2,
                                      name="user_and_time")
    self.projection = layers.dense_stack(_check_hidden(hidden_layers), output_dim,
                                         "query_projection")

  def call(self, inputs: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    ids = inputs[CONTEXT_MOVIE_INDICES]
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
               context_embedding: str = TABLE, num_hashes: int = 64, num_users: int = 0,
               num_time_buckets: int = 0, dropout: float = 0.0, l2: float = 0.0,
               name: str = "query_tower"):
    """Args: as `SequentialAttentionQueryTower` (one transformer block), and the GRU's
    state has `output_dim` units."""
    super().__init__(name=name)
    _check_positive(num_movies=num_movies, output_dim=output_dim, max_context=max_context)
    self.item_embedding = _context_embedding(context_embedding, num_movies, output_dim,
                                             num_hashes, l2)
    self.attention_expert = layers.MaskedSelfAttentionEncoder(
        max_context, num_heads, 1, dropout, name="attention_expert")
    self.gru_expert = layers.MaskedGRUEncoder(output_dim, name="gru_expert")
    self.mixture = layers.GatedMixture(2, name="mixture")
    self.user_and_time = _UserAndTime(num_users, num_time_buckets, output_dim, l2,
                                      name="user_and_time")
    self.projection = layers.dense_stack(_check_hidden(hidden_layers), output_dim,
                                         "query_projection")

  def expert_weights(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """float32 [batch, 2]: the gate's weights of the attention and GRU experts."""
    ids = inputs[CONTEXT_MOVIE_INDICES]
    return self.mixture.gate_weights(
        layers.masked_mean(self.item_embedding(ids), layers.padding_mask(ids)))

  def call(self, inputs: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    ids = inputs[CONTEXT_MOVIE_INDICES]
    items, mask = self.item_embedding(ids), layers.padding_mask(ids)
    mixed = self.mixture([self.attention_expert(items, mask, training=training),
                          self.gru_expert(items, mask)],
                         gate_input=layers.masked_mean(items, mask))
    return self.projection(tf.concat([mixed] + self.user_and_time(inputs), axis=1))


class FeaturesCandidateTower(tf.keras.Model):
  """Movie id embedding + mean title-token embedding + mean genre embedding -> embedding."""

  def __init__(self, num_movies: int, num_title_tokens: int, num_genres: int,
               output_dim: int, hidden_layers: Sequence[int] = (), l2: float = 0.0,
               name: str = "candidate_tower"):
    """Args:
      num_movies, num_title_tokens, num_genres: Vocabulary sizes, OOV buckets included.
      output_dim: Embedding size.
      hidden_layers: ReLU layer sizes before the final linear projection.
      l2: L2 penalty on the embedding tables.
      name: Keras name.
    """
    super().__init__(name=name)
    _check_positive(num_movies=num_movies, num_title_tokens=num_title_tokens,
                    num_genres=num_genres, output_dim=output_dim)
    self.movie_embedding = layers.embedding_table(num_movies, output_dim, l2, "movie_id")
    self.title_embedding = layers.MaskedMeanEmbedding(num_title_tokens, output_dim, l2,
                                                      name="title")
    self.genre_embedding = layers.MaskedMeanEmbedding(num_genres, output_dim, l2,
                                                      name="genres")
    self.projection = layers.dense_stack(_check_hidden(hidden_layers), output_dim,
                                         "candidate_projection")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    return self.projection(tf.concat([
        self.movie_embedding(features.to_vector(inputs[features.MOVIE_ID_INDEX])),
        self.title_embedding(inputs[features.TITLE_TOKENS]),
        self.genre_embedding(inputs[features.GENRE_INDICES]),
    ], axis=1))


class DeepHashCandidateTower(tf.keras.Model):
  """Deep hash embedding of the movie id + mean genre embedding -> embedding.

  No variable grows with the number of movies: the id is encoded by `num_hashes` hash
  functions, and an MLP maps the code to a vector. Genres (a vocabulary of about twenty)
  let movies with few ratings borrow from similar ones.
  """

  def __init__(self, num_genres: int, output_dim: int, num_hashes: int = 128,
               hash_hidden_layers: Sequence[int] = (256,), hidden_layers: Sequence[int] = (),
               l2: float = 0.0, seed: int = 0, name: str = "candidate_tower"):
    """Args:
      num_genres: Genre vocabulary size, OOV buckets included.
      output_dim: Embedding size.
      num_hashes: Hash functions encoding the id.
      hash_hidden_layers: Hidden layer sizes of the deep hash MLP.
      hidden_layers: ReLU layer sizes before the final linear projection.
      l2: L2 penalty on the genre table.
      seed: Seed of the hash functions.
      name: Keras name.
    """
    super().__init__(name=name)
    _check_positive(num_genres=num_genres, output_dim=output_dim, num_hashes=num_hashes)
    self.movie_embedding = layers.DeepHashEmbedding(
        output_dim, num_hashes=num_hashes, hidden_layers=_check_hidden(hash_hidden_layers),
        seed=seed, name="movie_id_deep_hash")
    self.genre_embedding = layers.MaskedMeanEmbedding(num_genres, output_dim, l2,
                                                      name="genres")
    self.projection = layers.dense_stack(_check_hidden(hidden_layers), output_dim,
                                         "candidate_projection")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    return self.projection(tf.concat([
        self.movie_embedding(features.to_vector(inputs[features.MOVIE_ID_INDEX])),
        self.genre_embedding(inputs[features.GENRE_INDICES]),
    ], axis=1))


@dataclasses.dataclass(frozen=True)
class FamilyDefaults:
  """Training defaults of a query tower family (used where the config says 0)."""
  learning_rate: float
  temperature: float
  epochs: int


# Chosen on ml-latest-small and the synthetic data together (docs/model_quality.md).
FAMILY_DEFAULTS = {
    USER_ID: FamilyDefaults(learning_rate=0.005, temperature=0.1, epochs=8),
    HISTORY: FamilyDefaults(learning_rate=0.002, temperature=0.2, epochs=12),
    SEQUENTIAL_ATTENTION: FamilyDefaults(learning_rate=0.002, temperature=0.2, epochs=12),
    SEQUENTIAL_MOE: FamilyDefaults(learning_rate=0.002, temperature=0.2, epochs=12),
}


def resolve_config(config: configs.TrainerConfig) -> configs.TrainerConfig:
  """`config` with learning_rate, temperature and epochs at 0 replaced by family defaults."""
  defaults = FAMILY_DEFAULTS[config.towers.query_tower]
  optimization = config.optimization
  return config.replace(learning_rate=optimization.learning_rate or defaults.learning_rate,
                        temperature=optimization.temperature or defaults.temperature,
                        epochs=optimization.epochs or defaults.epochs)


def build_query_tower(config: configs.TrainerConfig, num_users: int, num_movies: int,
                      num_time_buckets: int, max_context: int) -> tf.keras.Model:
  """The query tower `config.towers.query_tower` names, sized from the vocabularies.

  Args:
    config: Hyperparameters (query_tower, embedding_dim, hidden_layers, ...).
    num_users, num_movies: Vocabulary sizes, OOV buckets included.
    num_time_buckets: Timestamp buckets of the Transform output.
    max_context: Longest context the sequential towers accept.
  """
  tower = config.towers
  dim, hidden, l2 = tower.embedding_dim, tower.hidden_layers, tower.l2_regularization
  users = num_users if config.towers.history_user_id else 0
  time_buckets = num_time_buckets if config.towers.history_time else 0
  if config.towers.query_tower == USER_ID:
    return UserIdQueryTower(num_users, num_time_buckets, dim, hidden, l2)
  if config.towers.query_tower == HISTORY:
    return HistoryQueryTower(num_movies, dim, hidden, num_users=users,
                             num_time_buckets=time_buckets,
                             num_interests=config.towers.num_interests, l2=l2)
  sequential = dict(num_heads=config.towers.num_heads, hidden_layers=hidden,
                    context_embedding=tower.context_embedding, num_hashes=tower.num_hashes,
                    num_users=users, num_time_buckets=time_buckets, l2=l2)
  if config.towers.query_tower == SEQUENTIAL_ATTENTION:
    return SequentialAttentionQueryTower(num_movies, dim, max_context, **sequential)
  if config.towers.query_tower == SEQUENTIAL_MOE:
    return SequentialMoEQueryTower(num_movies, dim, max_context, **sequential)
  raise ValueError(f"query_tower must be one of {QUERY_TOWERS}, got {config.towers.query_tower!r}.")


def build_candidate_tower(config: configs.TrainerConfig, num_movies: int,
                          num_title_tokens: int, num_genres: int) -> tf.keras.Model:
  """The candidate tower `config.towers.candidate_tower` names, sized from the vocabularies."""
  tower = config.towers
  dim, hidden, l2 = tower.embedding_dim, tower.hidden_layers, tower.l2_regularization
  if config.towers.candidate_tower == FEATURES:
    return FeaturesCandidateTower(num_movies, num_title_tokens, num_genres, dim, hidden, l2)
  if config.towers.candidate_tower == DEEP_HASH:
    return DeepHashCandidateTower(num_genres, dim, num_hashes=2 * config.towers.num_hashes,
                                  hidden_layers=hidden, l2=l2, seed=config.optimization.seed)
  raise ValueError(f"candidate_tower must be one of {CANDIDATE_TOWERS}, "
                   f"got {config.towers.candidate_tower!r}.")
