"""Towers and their layers: output shapes, padding invariance, deep hash has no id table,
multi-vector queries."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from contracts import configs
from contracts import features
from trainer_module import candidate_towers
from trainer_module import layers
from trainer_module import query_towers
from trainer_module import towers
from ranking_core import scores as scores_lib

NUM_MOVIES = 50
NUM_USERS = 12
NUM_GENRES = 6
NUM_TOKENS = 30
TIME_BUCKETS = 5
DIM = 8
MAX_CONTEXT = 6
PAD = layers.PADDING


def _query_inputs(context, users=None):
  context = np.asarray(context, np.int64)
  users = np.arange(len(context)) if users is None else np.asarray(users)
  return {
      towers.CONTEXT_MOVIE_INDICES: tf.constant(context),
      features.USER_ID_INDEX: tf.constant(users, tf.int64),
      # Time features are functions of the user, so a row's inputs do not depend on
      # its position in the batch.
      features.TIMESTAMP_BUCKET: tf.constant(users % TIME_BUCKETS, tf.int64),
      features.TIMESTAMP_NORMALIZED: tf.constant(users / NUM_USERS - 0.5, tf.float32),
  }


def _candidate_inputs(movies, title_tokens, genres):
  return {
      features.MOVIE_ID_INDEX: tf.constant(movies, tf.int64),
      features.TITLE_TOKENS: tf.constant(title_tokens, tf.int64),
      features.GENRE_INDICES: tf.constant(genres, tf.int64),
  }


def _query_towers():
  return {
      "user_id": query_towers.UserIdQueryTower(NUM_USERS, TIME_BUCKETS, DIM),
      "history": query_towers.HistoryQueryTower(NUM_MOVIES, DIM),
      "history_user_time": query_towers.HistoryQueryTower(NUM_MOVIES, DIM, hidden_layers=(16,),
                                                    num_users=NUM_USERS,
                                                    num_time_buckets=TIME_BUCKETS),
      "history_interests": query_towers.HistoryQueryTower(NUM_MOVIES, DIM, num_users=NUM_USERS,
                                                    num_time_buckets=TIME_BUCKETS,
                                                    num_interests=3),
      "sequential_attention": query_towers.SequentialAttentionQueryTower(
          NUM_MOVIES, DIM, MAX_CONTEXT, num_heads=2, num_layers=2),
      "sequential_attention_deep_hash": query_towers.SequentialAttentionQueryTower(
          NUM_MOVIES, DIM, MAX_CONTEXT, context_embedding="deep_hash", num_hashes=16,
          num_users=NUM_USERS),
      "sequential_moe": query_towers.SequentialMoEQueryTower(NUM_MOVIES, DIM, MAX_CONTEXT,
                                                       hidden_layers=(16,)),
  }


# Rows: a long context, a short one, an empty one (all padding).
CONTEXT = [[3, 9, 1, 4, 0, 7], [5, 2, PAD, PAD, PAD, PAD], [PAD] * MAX_CONTEXT]


@pytest.mark.parametrize("name", list(_query_towers()))
def test_query_tower_shape_and_padding_invariance(name):
  tf.keras.utils.set_random_seed(0)
  tower = _query_towers()[name]
  out = tower(_query_inputs(CONTEXT)).numpy()
  # The history tower with 3 interests gives 4 vectors a query: the mean, then each interest.
  assert out.shape == ((3, 4, DIM) if name == "history_interests" else (3, DIM))
  assert np.isfinite(out).all()
  # Narrower padding, the same rows: identical outputs (the empty row gets width 2 of PAD).
  narrow = tower(_query_inputs([[5, 2], [PAD, PAD]], users=[1, 2])).numpy()
  np.testing.assert_allclose(narrow, out[1:], rtol=1e-5, atol=1e-6)
  # A row's output does not depend on the other rows of the batch.
  alone = tower(_query_inputs([[5, 2, PAD]], users=[1])).numpy()
  np.testing.assert_allclose(alone[0], out[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in _query_towers() if n != "user_id"])
def test_context_towers_read_the_context(name):
  tf.keras.utils.set_random_seed(1)
  tower = _query_towers()[name]
  out = tower(_query_inputs([[5, 2, PAD], [6, 2, PAD], [2, 5, PAD]], users=[1, 1, 1])).numpy()
  assert not np.allclose(out[0], out[1], atol=1e-4)  # Another movie, another query.
  if name.startswith("history"):
    # Mean pooling ignores order.
    np.testing.assert_allclose(out[0], out[2], rtol=1e-5, atol=1e-6)
  else:
    # Sequence models see the order (positions / GRU direction).
    assert not np.allclose(out[0], out[2], atol=1e-5)


def test_sequential_attention_rejects_a_context_longer_than_max_context():
  tower = query_towers.SequentialAttentionQueryTower(NUM_MOVIES, DIM, max_context=2)
  with pytest.raises(tf.errors.InvalidArgumentError, match="max_length"):
    tower(_query_inputs([[1, 2, 3]]))


def test_moe_gate_weights_are_a_distribution():
  tower = query_towers.SequentialMoEQueryTower(NUM_MOVIES, DIM, MAX_CONTEXT)
  inputs = _query_inputs(CONTEXT)
  tower(inputs)
  weights = tower.expert_weights(inputs).numpy()
  assert weights.shape == (3, 2)
  np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
  assert (weights > 0).all()


def test_gru_encoder_reads_oldest_to_newest_and_ignores_padding():
  tf.keras.utils.set_random_seed(2)
  encoder = layers.MaskedGRUEncoder(4)
  items = tf.random.normal([1, 3, DIM])
  mask = tf.constant([[True, True, True]])
  full = encoder(items, mask).numpy()
  padded_items = tf.concat([items, tf.random.normal([1, 2, DIM])], axis=1)
  padded = encoder(padded_items, tf.constant([[True, True, True, False, False]])).numpy()
  np.testing.assert_allclose(padded, full, rtol=1e-5, atol=1e-6)
  # Reading newest-first (position 0 last) equals a forward GRU over the reversed row.
  forward = tf.keras.layers.GRU(4)
  forward(items)  # Builds it.
  forward.set_weights(encoder.get_weights())
  np.testing.assert_allclose(forward(items[:, ::-1]).numpy(), full, rtol=1e-5, atol=1e-6)
  empty = encoder(items, tf.constant([[False, False, False]])).numpy()
  np.testing.assert_array_equal(empty, np.zeros([1, 4]))


def _candidate_towers():
  return {
      "features": candidate_towers.FeaturesCandidateTower(NUM_MOVIES, NUM_TOKENS, NUM_GENRES, DIM),
      "deep_hash": candidate_towers.DeepHashCandidateTower(NUM_GENRES, DIM, num_hashes=16,
                                                 hash_hidden_layers=(32,)),
  }


@pytest.mark.parametrize("name", list(_candidate_towers()))
def test_candidate_tower_shape_and_padding_invariance(name):
  tf.keras.utils.set_random_seed(3)
  tower = _candidate_towers()[name]
  out = tower(_candidate_inputs([1, 2], [[4, 5, PAD], [7, PAD, PAD]],
                                [[1, PAD, PAD], [2, 3, PAD]])).numpy()
  assert out.shape == (2, DIM)
  narrow = tower(_candidate_inputs([1, 2], [[4, 5], [7, PAD]], [[1, PAD], [2, 3]])).numpy()
  np.testing.assert_allclose(narrow, out, rtol=1e-5, atol=1e-6)
  assert not np.allclose(out[0], out[1], atol=1e-4)


@pytest.mark.parametrize("num_movies", [100, 1_000_000])
def test_deep_hash_tower_has_no_variable_sized_by_the_catalog(num_movies):
  tower = candidate_towers.DeepHashCandidateTower(NUM_GENRES, DIM, num_hashes=16,
                                        hash_hidden_layers=(32,))
  movies = np.array([0, 1, num_movies - 1])
  out = tower(_candidate_inputs(movies, [[PAD]] * 3, [[1]] * 3)).numpy()
  assert np.isfinite(out).all()
  # The genre table (NUM_GENRES + 1 rows for padding) is the only table; every other
  # variable is a layer of the MLPs. Nothing depends on the number of movies.
  shapes = sorted(tuple(v.shape.as_list()) for v in tower.trainable_variables)
  assert [s for s in shapes if s[0] == NUM_GENRES + 1] == [(NUM_GENRES + 1, DIM)]
  assert max(s[0] for s in shapes) < 100
  assert sum(int(np.prod(s)) for s in shapes) == _DEEP_HASH_PARAMETERS
  # Distinct ids far apart get distinct embeddings.
  assert not np.allclose(out[0], out[2], atol=1e-4)


# 16 hashes -> 32 -> DIM, genres (NUM_GENRES + 1) x DIM, then the 2*DIM -> DIM projection.
_DEEP_HASH_PARAMETERS = (16 * 32 + 32) + (32 * DIM + DIM) + (NUM_GENRES + 1) * DIM + (
    2 * DIM * DIM + DIM)


def test_deep_hash_code_is_deterministic_bounded_and_spreads_ids():
  embedding = layers.DeepHashEmbedding(DIM, num_hashes=32, seed=5)
  codes = embedding.hash_code(tf.range(1000, dtype=tf.int64)).numpy()
  assert codes.shape == (1000, 32)
  assert codes.min() >= -1.0 and codes.max() <= 1.0
  assert len({row.tobytes() for row in codes}) == 1000  # No two ids share a code.
  np.testing.assert_array_equal(
      codes, layers.DeepHashEmbedding(DIM, num_hashes=32, seed=5).hash_code(
          tf.range(1000, dtype=tf.int64)).numpy())
  # Roughly uniform on [-1, 1].
  assert abs(codes.mean()) < 0.05


def test_deep_hash_padding_gives_zeros():
  embedding = layers.DeepHashEmbedding(DIM, num_hashes=8)
  out = embedding(tf.constant([[3, PAD]], tf.int64)).numpy()
  assert np.abs(out[0, 0]).sum() > 0
  np.testing.assert_array_equal(out[0, 1], np.zeros(DIM))


def test_multi_interest_weights_cover_the_real_items_only():
  tf.keras.utils.set_random_seed(2)
  pooling = layers.MultiInterestPooling(3)
  ids = tf.constant(CONTEXT, tf.int64)
  items = tf.random.normal([3, MAX_CONTEXT, DIM])
  weights = pooling.attention_weights(items, layers.padding_mask(ids)).numpy()
  assert weights.shape == (3, MAX_CONTEXT, 3)
  np.testing.assert_array_equal(weights[1, 2:], 0.0)  # Padding gets no weight...
  np.testing.assert_array_equal(weights[2], 0.0)  # ... and an empty row none at all.
  np.testing.assert_allclose(weights[:2].sum(axis=1), 1.0, rtol=1e-6)
  assert (weights[0] > 0).all()
  # The interests look at the items differently (not three copies of one pooling).
  assert not np.allclose(weights[0, :, 0], weights[0, :, 1], atol=1e-3)
  interests = pooling(items, layers.padding_mask(ids)).numpy()
  np.testing.assert_allclose(interests[0], weights[0].T @ items[0].numpy(), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_array_equal(interests[2], 0.0)
  # A context of one movie: every interest is that movie.
  one = pooling(items[:1, :1], tf.constant([[True]])).numpy()
  np.testing.assert_allclose(one[0], np.repeat(items[0, :1].numpy(), 3, axis=0), rtol=1e-6)


def test_max_sim_index_scores_a_movie_by_the_best_query_vector():
  rng = np.random.default_rng(3)
  candidates = rng.normal(size=(20, DIM)).astype(np.float32)
  queries = rng.normal(size=(4, 3, DIM)).astype(np.float32)
  index = layers.MaxSimBruteForce(k=5)
  index.index(tf.constant(candidates), identifiers=tf.range(20))
  scores, positions = index(tf.constant(queries))
  expected = np.max(np.einsum("bhd,cd->bhc", queries, candidates), axis=1)
  np.testing.assert_array_equal(positions.numpy(), np.argsort(-expected, axis=1)[:, :5])
  np.testing.assert_allclose(scores.numpy(), -np.sort(-expected, axis=1)[:, :5], rtol=1e-5)
  # The evaluator's numpy scoring is the same rule.
  np.testing.assert_allclose(scores_lib.query_scores(queries, candidates.T), expected,
                             rtol=1e-5)
  # One-vector queries score as TFRS's BruteForce does.
  plain = tfrs.layers.factorized_top_k.BruteForce(k=5)
  plain.index(tf.constant(candidates), identifiers=tf.range(20))
  single = tf.constant(queries[:, 0])
  np.testing.assert_array_equal(index(single)[1].numpy(), plain(single)[1].numpy())
  np.testing.assert_allclose(scores_lib.query_scores(queries[:, 0], candidates.T),
                             queries[:, 0] @ candidates.T, rtol=1e-6)


def test_interests_are_only_for_the_history_tower():
  # Refused when the config is built (so when the flags are parsed), not at Trainer time.
  with pytest.raises(ValueError, match="num_interests applies to the 'history' query "
                     "tower, not --query_tower='sequential_attention'"):
    configs.TrainerConfig.from_flags(query_tower="sequential_attention", num_interests=2)
  with pytest.raises(ValueError, match="num_interests"):
    configs.TrainerConfig.from_flags(num_interests=-1)
  config = configs.TrainerConfig.from_flags(num_interests=2)
  tower = towers.build_query_tower(config, NUM_USERS, NUM_MOVIES, TIME_BUCKETS, MAX_CONTEXT)
  assert tower.interests is not None


@pytest.mark.parametrize("query_tower", towers.CONTEXT_QUERY_TOWERS)
@pytest.mark.parametrize("history_time", [False, True])
def test_history_time_adds_the_query_time_to_the_context_towers(query_tower, history_time):
  tf.keras.utils.set_random_seed(3)
  config = configs.TrainerConfig.from_flags(query_tower=query_tower, history_time=history_time)
  tower = towers.build_query_tower(config, NUM_USERS, NUM_MOVIES, TIME_BUCKETS, MAX_CONTEXT)
  inputs = _query_inputs([[5, 2, PAD]] * 2, users=[1, 1])
  # The same user and context at two times.
  inputs[features.TIMESTAMP_BUCKET] = tf.constant([0, TIME_BUCKETS - 1], tf.int64)
  inputs[features.TIMESTAMP_NORMALIZED] = tf.constant([-1.0, 1.0])
  out = tower(inputs).numpy()
  assert np.allclose(out[0], out[1], atol=1e-6) != history_time


@pytest.mark.parametrize("make", [
    lambda: query_towers.HistoryQueryTower(0, DIM),
    lambda: query_towers.HistoryQueryTower(NUM_MOVIES, DIM, num_interests=-1),
    lambda: layers.MultiInterestPooling(0),
    lambda: query_towers.HistoryQueryTower(NUM_MOVIES, DIM, hidden_layers=(0,)),
    lambda: query_towers.SequentialAttentionQueryTower(NUM_MOVIES, DIM, 0),
    lambda: query_towers.SequentialAttentionQueryTower(NUM_MOVIES, DIM, 4, context_embedding="x"),
    lambda: layers.DeepHashEmbedding(DIM, num_hashes=0),
    lambda: layers.GatedMixture(1),
])
def test_bad_constructor_arguments_fail_clearly(make):
  with pytest.raises(ValueError, match="must|at least"):
    make()
