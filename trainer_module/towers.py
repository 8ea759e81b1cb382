"""The tower families by name, their training defaults, and building them from a config.

The towers themselves are in query_towers.py and candidate_towers.py: Keras models from
transformed features to an unnormalized embedding (a query may have several vectors,
scored by its best-matching one); `RetrievalModel` L2-normalizes every vector. They are
chosen by name (`QUERY_TOWERS`, `CANDIDATE_TOWERS`).

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
"""
import dataclasses

import tensorflow as tf

from contracts import configs
from contracts import features
from trainer_module import candidate_towers
from trainer_module import query_towers

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
  users = num_users if tower.history_user_id else 0
  time_buckets = num_time_buckets if tower.history_time else 0
  if tower.query_tower == USER_ID:
    return query_towers.UserIdQueryTower(num_users, num_time_buckets, dim, hidden, l2)
  if tower.query_tower == HISTORY:
    return query_towers.HistoryQueryTower(num_movies, dim, hidden, num_users=users,
                                          num_time_buckets=time_buckets,
                                          num_interests=tower.num_interests, l2=l2)
  sequential = dict(num_heads=tower.num_heads, hidden_layers=hidden,
                    context_embedding=tower.context_embedding, num_hashes=tower.num_hashes,
                    num_users=users, num_time_buckets=time_buckets, l2=l2)
  if tower.query_tower == SEQUENTIAL_ATTENTION:
    return query_towers.SequentialAttentionQueryTower(num_movies, dim, max_context,
                                                      **sequential)
  if tower.query_tower == SEQUENTIAL_MOE:
    return query_towers.SequentialMoEQueryTower(num_movies, dim, max_context, **sequential)
  raise ValueError(f"query_tower must be one of {QUERY_TOWERS}, got {tower.query_tower!r}.")


def build_candidate_tower(config: configs.TrainerConfig, num_movies: int,
                          num_title_tokens: int, num_genres: int) -> tf.keras.Model:
  """The candidate tower `config.towers.candidate_tower` names, sized from the
  vocabularies."""
  tower = config.towers
  dim, hidden, l2 = tower.embedding_dim, tower.hidden_layers, tower.l2_regularization
  if tower.candidate_tower == FEATURES:
    return candidate_towers.FeaturesCandidateTower(num_movies, num_title_tokens, num_genres,
                                                   dim, hidden, l2)
  if tower.candidate_tower == DEEP_HASH:
    return candidate_towers.DeepHashCandidateTower(
        num_genres, dim, num_hashes=2 * tower.num_hashes, hidden_layers=hidden, l2=l2,
        seed=config.optimization.seed)
  raise ValueError(f"candidate_tower must be one of {CANDIDATE_TOWERS}, "
                   f"got {tower.candidate_tower!r}.")
