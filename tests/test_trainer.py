"""The trainer module: towers, sampling probabilities, training, and run_fn's exports.

One synthetic MovieLens set (60 users, 160 movies, 2400 ratings; a few movies are never
rated in training) goes through the real ExampleGen encoding, the UserContext rule and the
real Transform (tests/transform_fixtures.py); `trainer.run_fn` is then called as the TFX
Trainer calls it, with the default (history) query tower and with the user_id one, and
the exports are checked against each other and against the catalog.
"""
import collections
import dataclasses
import json
import os
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow.core.protobuf import saved_model_pb2
from tfx import v1 as tfx

from components.retrieval_evaluator import data as evaluator_data
from components.retrieval_evaluator import scoring
from contracts import artifacts
from contracts import configs
from contracts import features
from contracts import serving as serving_lib
from tests import transform_fixtures
from trainer_module import artifact_files
from trainer_module import data
from trainer_module import export
from trainer_module import layers
from trainer_module import model as model_lib
from trainer_module import ranking
from trainer_module import recommend
from trainer_module import towers
from trainer_module import trainer
from trainer_module import histories
from trainer_module import inputs
from trainer_module import training
from trainer_module import validation as validation_lib
from trainer_module import validation_slice
from ranking_core import scores as scores_lib

EMBEDDING_DIM = 16
# The default history tower and its user id head side by side (`user_id_head`).
TOWERS_DIM = 2 * EMBEDDING_DIM
TOP_K = 10
# The towers alone: the EASE factor (on by default) has its own fixture, `ease_uri`.
TRAINER_CONFIG = {
    "embedding_dim": EMBEDDING_DIM, "batch_size": 128, "epochs": 5, "serving_top_k": TOP_K,
    "max_title_tokens": 16, "seed": 7, "ease_factor_rank": 0,
}
HIT_RATE_K = 20


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory):
  return transform_fixtures.build(str(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="module")
def tft_output(fixture_data):
  return tft.TFTransformOutput(fixture_data.transform_output)


@pytest.fixture(scope="module")
def transform_config(fixture_data):
  return configs.TransformConfig.from_dict(fixture_data.transform_config)


@pytest.fixture(scope="module")
def trainer_config():
  return towers.resolve_config(configs.TrainerConfig.from_dict(TRAINER_CONFIG))


@pytest.fixture(scope="module")
def sizes(tft_output, transform_config):
  return training.vocabulary_sizes(tft_output, transform_config)


@pytest.fixture(scope="module")
def user_histories(fixture_data, tft_output, sizes):
  return data.read_user_histories([fixture_data.history_pattern], tft_output, sizes.users,
                                  fixture_data.max_context)


@pytest.fixture(scope="module")
def training_input(fixture_data, tft_output, trainer_config, user_histories):
  fitted = data.read_interactions([fixture_data.transformed_train_pattern], tft_output)
  return inputs.TrainingInput(
      train_files=[fixture_data.transformed_train_pattern], num_examples=len(fitted),
      tft_output=tft_output, max_title_tokens=trainer_config.towers.max_title_tokens,
      histories=user_histories.fitted, max_context=fixture_data.max_context)


@pytest.fixture(scope="module")
def train_data(fixture_data, tft_output, trainer_config, user_histories):
  """The fitted train split in memory, contexts joined (what training streams)."""
  return inputs.read_all([fixture_data.transformed_train_pattern], tft_output,
                         trainer_config.towers.max_title_tokens, user_histories.fitted,
                         fixture_data.max_context, keep_rating=True)


@pytest.fixture(scope="module")
def batch(training_input):
  return next(iter(training_input.batches(32)))


def _validation(fixture_data, tft_output, trainer_config, user_histories):
  catalog = data.transformed_catalog(tft_output,
                                     data.read_raw_catalog([fixture_data.catalog_pattern]),
                                     trainer_config.towers.max_title_tokens)
  return validation_slice.build(
      [fixture_data.transformed_validation_pattern], tft_output,
      data.read_interactions([fixture_data.transformed_train_pattern], tft_output), catalog,
      trainer_config.towers.max_title_tokens, user_histories.fitted, fixture_data.max_context)


@pytest.fixture(scope="module")
def validation(fixture_data, tft_output, trainer_config, user_histories):
  return _validation(fixture_data, tft_output, trainer_config, user_histories)


def _fn_args(fixture_data, model_uri, custom_config):
  return tfx.components.FnArgs(
      train_files=[fixture_data.transformed_train_pattern],
      eval_files=[fixture_data.transformed_validation_pattern],
      transform_output=fixture_data.transform_output,
      serving_model_dir=os.path.join(model_uri, "Format-Serving"),
      model_run_dir=os.path.join(os.path.dirname(model_uri), "model_run"),
      custom_config=custom_config)


def _run_fn(fixture_data, model_uri, trainer_config):
  trainer.run_fn(_fn_args(fixture_data, model_uri, fixture_data.custom_config(trainer_config)))
  return model_uri


@pytest.fixture(scope="module")
def trained_uri(fixture_data, tmp_path_factory):
  """The Model artifact directory written by run_fn (the default, history query tower)."""
  return _run_fn(fixture_data, os.path.join(str(tmp_path_factory.mktemp("trained")), "model"),
                 TRAINER_CONFIG)


@pytest.fixture(scope="module")
def user_id_uri(fixture_data, tmp_path_factory):
  """A Model artifact of the user_id query tower (user id and time features)."""
  return _run_fn(fixture_data, os.path.join(str(tmp_path_factory.mktemp("user_id")), "model"),
                 {**TRAINER_CONFIG, "query_tower": "user_id"})


@pytest.fixture(scope="module")
def interests_uri(fixture_data, tmp_path_factory):
  """A Model artifact of the history tower with 2 interests (3-vector queries)."""
  return _run_fn(fixture_data, os.path.join(str(tmp_path_factory.mktemp("interests")),
                                            "model"),
                 {**TRAINER_CONFIG, "num_interests": 2})


@pytest.fixture(scope="module")
def untrained_uri(fixture_data, tft_output, trainer_config, transform_config, user_histories,
                  tmp_path_factory):
  """The same exports of a freshly built, never trained model."""
  tf.keras.utils.set_random_seed(trainer_config.optimization.seed)
  model_uri = os.path.join(str(tmp_path_factory.mktemp("untrained")), "model")
  retrieval_model = training.build_model(tft_output, trainer_config, transform_config,
                                        fixture_data.max_context)
  export.export_all(export.ExportInputs(
      model_uri=model_uri, serving_model_dir=os.path.join(model_uri, "Format-Serving"),
      tft_output=tft_output, retrieval_model=retrieval_model,
      raw_catalog=data.read_raw_catalog([fixture_data.catalog_pattern]),
      max_title_tokens=trainer_config.towers.max_title_tokens, top_k=TOP_K,
      reference_timestamp=int(fixture_data.train.timestamps.max()),
      seen_movies=histories.seen_movies(data.read_interactions(
          [fixture_data.transformed_train_pattern,
           fixture_data.transformed_validation_pattern], tft_output), tft_output),
      user_histories=user_histories.whole))
  return model_uri


@pytest.fixture(scope="module")
def serving(trained_uri):
  return tf.saved_model.load(os.path.join(trained_uri, "Format-Serving"))


@pytest.fixture(scope="module")
def user_id_serving(user_id_uri):
  return tf.saved_model.load(os.path.join(user_id_uri, "Format-Serving"))


@pytest.fixture(scope="module")
def query_model(trained_uri):
  return tf.saved_model.load(artifacts.query_model_path(trained_uri))


def _candidates(model_uri):
  with open(artifacts.movie_ids_path(model_uri)) as f:
    movie_ids = f.read().splitlines()
  return movie_ids, np.load(artifacts.embeddings_path(model_uri))


def _strings(tensor):
  return [[value.decode() for value in row] for row in tensor.numpy().tolist()]


# -------------------------------------------------------------------------------- towers


def _towers(sizes, config, max_context):
  return (towers.build_query_tower(config, sizes.users, sizes.movies, sizes.timestamp_buckets,
                                   max_context),
          towers.build_candidate_tower(config, sizes.movies, sizes.title_tokens, sizes.genres))


@pytest.mark.parametrize("query_tower", configs.QUERY_TOWERS)
@pytest.mark.parametrize("candidate_tower", configs.CANDIDATE_TOWERS)
def test_every_family_reads_the_transformed_batch(batch, sizes, fixture_data, query_tower,
                                                  candidate_tower):
  config = configs.TrainerConfig.from_flags(embedding_dim=EMBEDDING_DIM,
                                            query_tower=query_tower,
                                            candidate_tower=candidate_tower)
  query_tower, candidate_tower = _towers(sizes, config, fixture_data.max_context)
  query, candidate = query_tower(batch), candidate_tower(batch)
  assert query.shape == (32, EMBEDDING_DIM)
  assert candidate.shape == (32, EMBEDDING_DIM)
  assert np.all(np.isfinite(query.numpy())) and np.all(np.isfinite(candidate.numpy()))


def test_tower_names_match_the_config_choices():
  assert towers.QUERY_TOWERS == configs.QUERY_TOWERS
  assert towers.CANDIDATE_TOWERS == configs.CANDIDATE_TOWERS
  assert set(towers.FAMILY_DEFAULTS) == set(configs.QUERY_TOWERS)


def test_family_defaults_fill_only_zero_fields():
  resolved = towers.resolve_config(configs.TrainerConfig.from_flags(query_tower="user_id"))
  defaults = towers.FAMILY_DEFAULTS["user_id"]
  resolved = resolved.optimization
  assert (resolved.learning_rate, resolved.temperature, resolved.epochs) == (
      defaults.learning_rate, defaults.temperature, defaults.epochs)
  explicit = towers.resolve_config(configs.TrainerConfig.from_flags(
      learning_rate=0.3, temperature=0.7, epochs=3)).optimization
  assert (explicit.learning_rate, explicit.temperature, explicit.epochs) == (0.3, 0.7, 3)
  with pytest.raises(ValueError, match="resolved config"):
    model_lib.RetrievalModel(
        model_lib.VocabularySizes(5, 5, 5, 5, 5), configs.TrainerConfig(), np.ones(5) / 5)


def test_embeddings_are_l2_normalized(batch, tft_output, trainer_config, transform_config):
  retrieval_model = training.build_model(tft_output, trainer_config, transform_config)
  for embedding in (retrieval_model.query_embedding(batch),
                    retrieval_model.candidate_embedding(batch)):
    _assert_unit_parts(embedding.numpy())
  # The raw tower output is not normalized: the normalization is the model's doing.
  raw = np.linalg.norm(retrieval_model.query_tower(batch).numpy(), axis=1)
  assert not np.allclose(raw, 1.0)


def _assert_unit_parts(embeddings: np.ndarray) -> None:
  """Each model's part of the towers' embeddings (the history tower's, the user id
  head's) is L2-normalized."""
  parts = embeddings[..., :TOWERS_DIM].reshape(*embeddings.shape[:-1], 2, EMBEDDING_DIM)
  np.testing.assert_allclose(np.linalg.norm(parts, axis=-1), 1.0, rtol=1e-5)


def _head_model(tft_output, trainer_config, transform_config, **overrides):
  config = trainer_config.replace(**overrides)
  return training.build_model(tft_output, config, transform_config)


def test_user_id_head_adds_a_user_id_model_s_cosine(batch, tft_output, trainer_config,
                                                     transform_config):
  with_head = _head_model(tft_output, trainer_config, transform_config,
                          query_tower="history", user_id_head=True)
  head = with_head.user_id_head
  query, candidate = with_head.query_embedding(batch), with_head.candidate_embedding(batch)
  assert query.shape == (32, 2 * EMBEDDING_DIM) and candidate.shape == query.shape
  own = (tf.math.l2_normalize(with_head.query_tower(batch), -1),
         tf.math.l2_normalize(with_head.candidate_tower(batch), -1))
  heads = (tf.math.l2_normalize(head.query_tower(batch), -1),
           tf.math.l2_normalize(head.candidate_tower(batch), -1))
  scores = tf.matmul(query, candidate, transpose_b=True).numpy()
  np.testing.assert_allclose(
      scores, (tf.matmul(*own, transpose_b=True) + tf.matmul(*heads, transpose_b=True)).numpy(),
      rtol=1e-5, atol=1e-5)
  # The head reads the user id: another user changes its part of the query only.
  other = {**batch, features.USER_ID_INDEX: batch[features.USER_ID_INDEX] + 1}
  moved = with_head.query_embedding(other).numpy()
  np.testing.assert_allclose(moved[:, :EMBEDDING_DIM], query.numpy()[:, :EMBEDDING_DIM])
  assert not np.allclose(moved[:, EMBEDDING_DIM:], query.numpy()[:, EMBEDDING_DIM:])
  # It reads no time (Transform's quantile buckets move a little from run to run).
  later = {**batch, features.TIMESTAMP_BUCKET: batch[features.TIMESTAMP_BUCKET] * 0 + 1,
           features.TIMESTAMP_NORMALIZED: batch[features.TIMESTAMP_NORMALIZED] + 1.0}
  np.testing.assert_allclose(with_head.query_embedding(later).numpy(), query.numpy())
  # The user_id query tower is that model already: no head.
  assert _head_model(tft_output, trainer_config, transform_config, query_tower="user_id",
                     user_id_head=True).user_id_head is None


def test_user_id_head_trains_as_a_separate_model(batch, tft_output, trainer_config,
                                                 transform_config):
  plain = _head_model(tft_output, trainer_config, transform_config, query_tower="history",
                      user_id_head=False)
  with_head = _head_model(tft_output, trainer_config, transform_config,
                          query_tower="history", user_id_head=True)
  for built in (plain, with_head):  # Keras creates the weights on the first call.
    built.compute_loss(batch)
  with_head.query_tower.set_weights(plain.query_tower.get_weights())
  with_head.candidate_tower.set_weights(plain.candidate_tower.get_weights())
  own_variables = plain.query_tower.trainable_variables + plain.candidate_tower.trainable_variables
  with tf.GradientTape(persistent=True) as tape:
    plain_loss = plain.compute_loss(batch)
    head_loss = with_head.compute_loss(batch)
  # Its own loss is added, and the other towers' gradients are those without the head.
  assert float(head_loss) > float(plain_loss) + 1.0
  for expected, got in zip(
      tape.gradient(plain_loss, own_variables),
      tape.gradient(head_loss, with_head.query_tower.trainable_variables
                    + with_head.candidate_tower.trainable_variables)):
    np.testing.assert_allclose(tf.convert_to_tensor(got).numpy(),
                               tf.convert_to_tensor(expected).numpy(), rtol=1e-4, atol=1e-6)
  # Each model steps with its own optimizer, the head at the user_id family's rate.
  head_before = [v.numpy() for v in with_head.user_id_head.trainable_variables]
  with_head.train_step(batch)
  head_optimizer = with_head.user_id_head.head_optimizer
  assert int(head_optimizer.iterations) == 1 and int(with_head.optimizer.iterations) == 1
  assert float(head_optimizer.learning_rate) == pytest.approx(
      towers.FAMILY_DEFAULTS["user_id"].learning_rate)
  assert all(not np.allclose(before, after.numpy()) for before, after in
             zip(head_before, with_head.user_id_head.trainable_variables))


def test_hidden_layers_add_dense_layers(batch, sizes, fixture_data):
  def dense_units(tower):
    return [layer.units for layer in tower.projection.layers
            if isinstance(layer, tf.keras.layers.Dense)]

  for name in ("user_id", "history"):
    plain = _towers(sizes, configs.TrainerConfig.from_flags(
        embedding_dim=8, hidden_layers="", query_tower=name), fixture_data.max_context)
    deep = _towers(sizes, configs.TrainerConfig.from_flags(
        embedding_dim=8, hidden_layers="32,24", query_tower=name), fixture_data.max_context)
    for plain_tower, deep_tower in zip(plain, deep):
      assert deep_tower(batch).shape == (32, 8) and plain_tower(batch).shape == (32, 8)
      assert dense_units(plain_tower) == [8]
      assert dense_units(deep_tower) == [32, 24, 8]
      assert [layer.activation.__name__ for layer in deep_tower.projection.layers] == [
          "relu", "relu", "linear"]


def test_parse_hidden_layers():
  assert configs.parse_hidden_layers("") == []
  assert configs.parse_hidden_layers("256,128") == [256, 128]
  assert configs.parse_hidden_layers(" 64 , 32 ") == [64, 32]
  for bad in ("abc", "64;32", "1.5", "64,x"):
    with pytest.raises(ValueError, match="hidden_layers"):
      configs.parse_hidden_layers(bad)


@pytest.mark.parametrize("bad", ["0", "64,0", "-32"])
def test_parse_hidden_layers_rejects_non_positive_sizes(bad):
  # A layer of 0 units is accepted by Keras and silently collapses every embedding to
  # the next layer's bias; sizes must be positive.
  with pytest.raises(ValueError, match="hidden_layers"):
    configs.parse_hidden_layers(bad)


def test_masked_mean_embedding():
  layer = layers.MaskedMeanEmbedding(vocabulary_size=6, dim=4, name="test_mean")
  ids = tf.constant([[0, 2, 2, 5],
                     [3, -1, -1, -1],
                     [-1, -1, -1, -1],
                     [1, 4, -1, -1]], tf.int64)
  out = layer(ids).numpy()
  assert out.shape == (4, 4)
  np.testing.assert_array_equal(out[2], np.zeros(4))
  table = layer.weights[0].numpy()
  assert table.shape == (7, 4)  # Vocabulary plus the padding row.

  def embedding(i):
    return table[i + 1]  # Row 0 is padding.

  np.testing.assert_allclose(out[0], np.mean([embedding(i) for i in (0, 2, 2, 5)], axis=0),
                             rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(out[1], embedding(3), rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(out[3], (embedding(1) + embedding(4)) / 2, rtol=1e-6,
                             atol=1e-7)
  # Padding never reads a real row: changing the padding row changes nothing.
  layer.weights[0].assign(tf.tensor_scatter_nd_update(
      layer.weights[0], [[0]], [[100.0, 100.0, 100.0, 100.0]]))
  np.testing.assert_allclose(layer(ids).numpy(), out, rtol=1e-6, atol=1e-7)


def _fitted_ratings(fixture_data):
  """The fixture's train ratings without the validation ones: what training fits."""
  held_out = set(zip(fixture_data.validation.user_ids, fixture_data.validation.movie_ids))
  return fixture_data.train.select(np.array(
      [(u, m) not in held_out for u, m in zip(fixture_data.train.user_ids,
                                              fixture_data.train.movie_ids)]))


def test_batches_pad_cap_and_join_the_context(fixture_data, tft_output, training_input,
                                              train_data):
  fitted = _fitted_ratings(fixture_data)
  assert training_input.num_examples == len(fitted) == len(train_data[features.MOVIE_ID_INDEX])
  for name in (features.TITLE_TOKENS, features.GENRE_INDICES,
               features.CONTEXT_MOVIE_INDICES):
    value = train_data[name].numpy()
    assert value.ndim == 2 and value.shape[0] == len(fitted)
    assert value.min() >= model_lib.PADDING
  for name in (features.TITLE_TOKENS, features.GENRE_INDICES):
    assert train_data[name].dtype == data.LIST_DTYPE
    assert np.all((train_data[name].numpy() != model_lib.PADDING).sum(axis=1) >= 1)
  assert train_data[features.CONTEXT_MOVIE_INDICES].shape[1] == fixture_data.max_context
  capped = inputs.read_all([fixture_data.transformed_train_pattern], tft_output, 2,
                           training_input.histories, 3)
  np.testing.assert_array_equal(capped[features.TITLE_TOKENS].numpy(),
                                train_data[features.TITLE_TOKENS].numpy()[:, :2])
  # The context keeps its most recent movies.
  np.testing.assert_array_equal(capped[features.CONTEXT_MOVIE_INDICES].numpy(),
                                train_data[features.CONTEXT_MOVIE_INDICES].numpy()[:, :3])
  # The rating is read only when asked for (the ranking stage).
  assert features.RATING_LABEL not in next(iter(training_input.batches(8)))
  assert features.RATING_LABEL in next(iter(training_input.batches(8, keep_rating=True)))


def test_the_joined_context_is_the_users_other_fitted_movies(fixture_data, tft_output,
                                                             train_data):
  vocabulary = [m.decode() for m in tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB)]
  user_vocabulary = [u.decode() for u in tft_output.vocabulary_by_name(features.USER_ID_VOCAB)]
  contexts = train_data[features.CONTEXT_MOVIE_INDICES].numpy()
  targets = train_data[features.MOVIE_ID_INDEX].numpy().reshape(-1)
  users = train_data[features.USER_ID_INDEX].numpy().reshape(-1)
  fitted = _fitted_ratings(fixture_data)
  held_out = collections.defaultdict(set)
  for user, movie in zip(fixture_data.validation.user_ids, fixture_data.validation.movie_ids):
    held_out[user].add(movie)
  movies_of = collections.defaultdict(list)
  for user, movie, timestamp in zip(fitted.user_ids, fitted.movie_ids, fitted.timestamps):
    movies_of[user].append((int(timestamp), movie.encode()))
  for row in range(len(targets)):
    user = user_vocabulary[users[row]]
    expected = [m.decode() for _, m in sorted(movies_of[user], reverse=True)
                if m.decode() != vocabulary[targets[row]]][:fixture_data.max_context]
    got = [vocabulary[i] for i in contexts[row] if i != model_lib.PADDING]
    assert got == expected
    assert targets[row] not in contexts[row]  # Never the example's own movie.
    assert not set(got) & held_out[user]  # Never a validation movie.


def test_join_context_drops_the_own_movie_and_keeps_order():
  histories = tf.constant([[5, 3, 9, -1], [3, 5, -1, -1], [-1, -1, -1, -1]], tf.int32)
  users = tf.constant([0, 0, 1, 2, 1])
  movies = tf.constant([3, 7, 3, 1, 5])
  joined = inputs.join_context(histories, users, movies, 3)
  assert joined.dtype == tf.int32
  np.testing.assert_array_equal(joined.numpy(), [[5, 9, -1], [5, 3, 9], [5, -1, -1],
                                                 [-1, -1, -1], [3, -1, -1]])


def test_each_epoch_streams_every_row_once_in_a_new_seeded_order(training_input):
  def keys(dataset):
    return np.concatenate([b[features.USER_ID_INDEX].numpy().reshape(-1) * 100000
                           + b[features.MOVIE_ID_INDEX].numpy().reshape(-1) for b in dataset])

  def epochs(count, seed=3):
    dataset = training_input.batches(64, shuffle_buffer=1 << 10, seed=seed)
    return [keys(dataset) for _ in range(count)]
  orders = epochs(3)
  in_order = keys(training_input.batches(64))
  for order in orders:
    assert len(order) == training_input.num_examples
    np.testing.assert_array_equal(np.sort(order), np.sort(in_order))
  assert len({order.tobytes() for order in orders}) == 3  # A new order each epoch.
  # The same sequence of orders from the same seed, whatever ran before.
  assert [order.tobytes() for order in epochs(3)] == [order.tobytes() for order in orders]
  assert epochs(1, seed=4)[0].tobytes() != orders[0].tobytes()


def test_user_histories_follow_the_vocabularies(fixture_data, tft_output, user_histories,
                                                sizes):
  vocabulary = tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB)
  user_vocabulary = tft_output.vocabulary_by_name(features.USER_ID_VOCAB)
  assert user_histories.whole.shape == (sizes.users, fixture_data.max_context)
  assert user_histories.fitted.shape == (sizes.users, fixture_data.max_context + 1)
  train = fixture_data.train
  for row, user in enumerate(user_vocabulary[:10]):
    entries = [(int(t), m.encode()) for u, m, t in zip(train.user_ids, train.movie_ids,
                                                       train.timestamps) if u == user.decode()]
    expected = [m for _, m in sorted(entries, reverse=True)][:fixture_data.max_context]
    got = [vocabulary[i] for i in user_histories.whole[row] if i != model_lib.PADDING]
    assert got == expected
  # The OOV rows have no history.
  assert np.all(user_histories.whole[len(user_vocabulary):] == model_lib.PADDING)


# ------------------------------------------------------------------ sampling probability


def test_movie_sampling_probability(fixture_data, tft_output, transform_config):
  probability = data.movie_sampling_probability(tft_output, transform_config.num_oov_buckets)
  vocab = [m.decode() for m in tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB)]
  assert probability.dtype == np.float32
  assert probability.shape == (len(vocab) + transform_config.num_oov_buckets,)
  assert probability.sum() == pytest.approx(1.0, abs=1e-5)
  assert np.all(probability > 0)

  counts = collections.Counter(fixture_data.train.movie_ids)
  expected = np.array([counts[movie_id] for movie_id in vocab], np.float64)
  assert expected.min() >= 1  # Every vocabulary movie was rated in training.
  ratio = probability[:len(vocab)] / expected
  np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)
  # The OOV bucket gets the smallest probability.
  np.testing.assert_allclose(probability[len(vocab):], probability[:len(vocab)].min(),
                             rtol=1e-6)


def test_build_model_sizes_follow_transform_output(tft_output, sizes, transform_config):
  users = tft_output.vocabulary_size_by_name(features.USER_ID_VOCAB)
  movies = tft_output.vocabulary_size_by_name(features.MOVIE_ID_VOCAB)
  assert sizes.users == users + transform_config.num_oov_buckets
  assert sizes.movies == movies + transform_config.num_oov_buckets
  assert sizes.timestamp_buckets == transform_config.timestamp_buckets


# ------------------------------------------------------------------------------ training


def _full_loss(retrieval_model, tensors):
  """Mean per-example retrieval loss, every example in one batch (deterministic)."""
  return float(retrieval_model.compute_loss(tensors, training=False))


def test_training_decreases_loss(tft_output, transform_config, training_input, train_data,
                                 tmp_path, fixture_data):
  config = configs.TrainerConfig.from_dict({**TRAINER_CONFIG, "epochs": 12})
  tf.keras.utils.set_random_seed(config.optimization.seed)
  retrieval_model = training.build_model(tft_output, config, transform_config,
                                        fixture_data.max_context)
  before = _full_loss(retrieval_model, train_data)
  history = training.train(retrieval_model, training_input, None, config,
                           str(tmp_path / "logs"))
  after = _full_loss(retrieval_model, train_data)

  # `mean_loss` is the epoch's mean per-example loss (Keras's `loss` is the last batch's).
  # Without a validation slice every epoch runs.
  assert len(history["mean_loss"]) == config.optimization.epochs
  assert "val_mean_loss" not in history
  assert len(history["examples_per_second"]) == config.optimization.epochs
  assert history["epoch_kept"] == [config.optimization.epochs]
  assert history["mean_loss"][-1] < 0.9 * history["mean_loss"][0]
  # All examples in one softmax: about log(1,800) = 7.5 untrained.
  assert after < 0.85 * before


def test_the_validation_split_is_held_out_of_training_and_its_contexts(
    fixture_data, validation, train_data, tft_output):
  fitted = _fitted_ratings(fixture_data)
  # UserContext's validation split is a share of train, disjoint from what is fitted.
  total = len(fixture_data.train)
  assert len(fitted) + validation.num_examples == total
  assert 0.02 * total < validation.num_examples < 0.1 * total
  assert not (set(zip(fitted.user_ids, fitted.movie_ids))
              & set(zip(fixture_data.validation.user_ids, fixture_data.validation.movie_ids)))
  user_vocabulary = tft_output.vocabulary_by_name(features.USER_ID_VOCAB)
  held_out = collections.defaultdict(set)
  for user, movie in zip(validation.query_users[validation.users], validation.movies):
    held_out[user].add(movie)
  # No query's context reveals a held-out movie of its user.
  for user, context in zip(validation.query_users,
                           validation.queries[features.CONTEXT_MOVIE_INDICES].numpy()):
    kept = context[context != model_lib.PADDING]
    assert not set(kept) & held_out[user]
    assert np.all(context[len(kept):] == model_lib.PADDING)
    assert len(kept) > 0  # Every validation user of this fixture has fitted movies.
  # One query per validation user; its fitted movies are excluded from its ranking.
  assert len(validation.query_users) == len(set(fixture_data.validation.user_ids))
  assert {user_vocabulary[u].decode() for u in validation.query_users} == set(
      fixture_data.validation.user_ids)
  excluded = set(zip(validation.query_users[validation.train_users], validation.train_movies))
  users = train_data[features.USER_ID_INDEX].numpy().reshape(-1)
  movies = train_data[features.MOVIE_ID_INDEX].numpy().reshape(-1)
  assert excluded == {(u, m) for u, m in zip(users, movies)
                      if u in set(validation.query_users)}
  # The candidates: every movie of the train split, fitted or held out.
  assert set(validation.candidate_movies) == set(movies) | set(validation.movies)
  np.testing.assert_array_equal(
      validation.candidates[features.MOVIE_ID_INDEX].numpy().reshape(-1),
      validation.candidate_movies)


def test_validation_queries_each_user_at_the_lower_median_held_out_time(fixture_data,
                                                                       validation,
                                                                       tft_output):
  user_vocabulary = tft_output.vocabulary_by_name(features.USER_ID_VOCAB)
  times = collections.defaultdict(list)
  for user, timestamp in zip(fixture_data.validation.user_ids,
                             fixture_data.validation.timestamps):
    times[user].append(int(timestamp))
  query_times = validation.queries[features.TIMESTAMP_SECONDS].numpy().reshape(-1)
  checked_even = False
  for user, query_time in zip(validation.query_users, query_times):
    held_out = sorted(times[user_vocabulary[user].decode()])
    # As the Evaluator: the lower of the two middle times for an even count.
    assert query_time == held_out[(len(held_out) - 1) // 2]
    checked_even |= len(held_out) % 2 == 0 and held_out[0] != held_out[-1]
  assert checked_even  # The fixture exercises the even-count rule.


def test_an_empty_validation_split_is_a_clear_error(fixture_data, tft_output, tmp_path):
  empty = str(tmp_path / "empty.gz")
  with tf.io.TFRecordWriter(empty, options="GZIP"):
    pass
  with pytest.raises(ValueError, match="validation_fraction"):
    validation_slice.build([empty], tft_output, data.Interactions(
        np.zeros([0], np.int32), np.zeros([0], np.int32), np.zeros([0], np.int64)), [], 16)


def test_early_stopping_keeps_the_best_epoch(tft_output, transform_config, training_input,
                                             validation, fixture_data, tmp_path):
  # A learning rate far too high: validation gets worse after the first epochs; training
  # stops after `patience` epochs without gain and keeps the best epoch's weights.
  config = towers.resolve_config(configs.TrainerConfig.from_dict(
      {**TRAINER_CONFIG, "epochs": 15, "learning_rate": 0.3, "early_stopping_patience": 2}))
  tf.keras.utils.set_random_seed(config.optimization.seed)
  retrieval_model = training.build_model(tft_output, config, transform_config,
                                        fixture_data.max_context)
  history = training.train(retrieval_model, training_input, validation, config,
                           str(tmp_path / "logs"))
  rates = history["val_hit_rate"]
  best = int(np.argmax(rates)) + 1
  assert history["epoch_kept"] == [best]
  assert len(rates) == best + 2 < config.optimization.epochs
  # The kept weights are the best epoch's: re-measuring gives its validation hit rate.
  callback = validation_lib.ValidationHitRate(validation, patience=2, seed=config.optimization.seed)
  callback.set_model(retrieval_model)
  assert callback.hit_rate() == pytest.approx(rates[best - 1])


class _PointingModel:
  """Scores each movie index by a fixed, distinct base value, plus `boost` for the movies
  the user holds out: the ranking of every validation user is known in advance."""

  def __init__(self, validation, num_movies, boost):
    self._num_movies = num_movies
    self._base = np.linspace(0.0, 0.5, num_movies)
    self._held_out = collections.defaultdict(set)
    for user, movie in zip(validation.query_users[validation.users], validation.movies):
      self._held_out[user].add(movie)
    self._boost = boost

  def candidate_embedding(self, inputs):
    return tf.one_hot(tf.reshape(inputs[features.MOVIE_ID_INDEX], [-1]), self._num_movies)

  def query_embedding(self, inputs):
    users = tf.reshape(inputs[features.USER_ID_INDEX], [-1]).numpy()
    rows = [self._base + self._boost * np.isin(np.arange(self._num_movies),
                                               list(self._held_out[user]))
            for user in users]
    return tf.constant(np.stack(rows).astype(np.float32))


def test_validation_hit_rate_measures_the_ranking(validation, sizes):
  # A cutoff of one movie, so that users holding out several have fewer hits than pairs.
  callback = validation_lib.ValidationHitRate(validation, patience=1, seed=0,
                                              targets_ratio=0.01)
  assert callback.k == 1 == validation_lib.validation_k(len(callback.candidate_movies), 0.01)
  # Held-out movies ranked first: a user's held-out pairs are hits up to k of them.
  callback.model = _PointingModel(validation, sizes.movies, boost=1.0)
  held_out = np.array(list(collections.Counter(validation.users).values()))
  assert held_out.max() > callback.k  # The cutoff matters here.
  assert callback.hit_rate() == pytest.approx(np.minimum(held_out, callback.k).sum()
                                              / held_out.sum())
  # Ranked last: none is.
  callback.model = _PointingModel(validation, sizes.movies, boost=-1.0)
  assert callback.hit_rate() == 0.0


def test_the_validation_cutoff_keeps_the_eval_splits_targets_per_list_slot(validation):
  # The defaults: the slice holds 5% of the train split (80% of the ratings), the eval
  # split 20% of the ratings: a fifth as many held-out movies per user, a fifth the cutoff.
  assert validation_lib.validation_targets_ratio(0.05, configs.DataConfig()) == pytest.approx(
      0.2)
  assert validation_lib.validation_targets_ratio(
      0.1, configs.DataConfig(eval_fraction=0.5)) == pytest.approx(0.1)
  # A temporal split's eval users are mostly new: no per-user share to match.
  assert validation_lib.validation_targets_ratio(
      0.05, configs.DataConfig(split_method=configs.TEMPORAL_SPLIT)) == 1.0
  assert validation_lib.validation_k(9125) == 100
  assert validation_lib.validation_k(9125, 0.2) == 20
  assert validation_lib.validation_k(500) == 50 and validation_lib.validation_k(500, 0.2) == 10
  assert validation_lib.validation_k(9125, 3.0) == 100  # Never above the Evaluator's cutoff.
  assert validation_lib.validation_k(30, 0.01) == 1
  whole = validation_lib.ValidationHitRate(validation, patience=1, seed=0)
  half = validation_lib.ValidationHitRate(validation, patience=1, seed=0, targets_ratio=0.5)
  assert half.k == validation_lib.validation_k(len(whole.candidate_movies), 0.5) < whole.k


def test_run_fn_requires_catalog_files(fixture_data, tmp_path):
  with pytest.raises(ValueError, match="catalog_files"):
    trainer.run_fn(_fn_args(fixture_data, str(tmp_path / "model"), {
        configs.TRAINER_KEY: TRAINER_CONFIG,
        configs.TRANSFORM_KEY: fixture_data.transform_config}))


def test_a_context_tower_requires_the_user_histories(fixture_data, tmp_path):
  custom_config = fixture_data.custom_config(TRAINER_CONFIG)
  del custom_config[configs.HISTORY_FILES_KEY]
  with pytest.raises(ValueError, match="history_files"):
    trainer.run_fn(_fn_args(fixture_data, str(tmp_path / "model"), custom_config))


def test_run_fn_never_reads_the_eval_split(fixture_data, tmp_path):
  # The epoch is chosen on the validation split: run_fn reads train and validation
  # files only. Hidden eval files would fail it if it read them.
  model_uri = str(tmp_path / "model")
  args = _fn_args(fixture_data, model_uri,
                  fixture_data.custom_config({**TRAINER_CONFIG, "epochs": 2}))
  read = []
  original = data.records
  def records(patterns):
    read.extend(patterns)
    return original(patterns)
  with mock.patch.object(data, "records", records):
    trainer.run_fn(args)
  assert fixture_data.transformed_eval_pattern not in read
  assert all("eval" not in pattern for pattern in read), read
  with open(artifacts.training_history_path(model_uri)) as f:
    history = json.load(f)
  assert len(history["val_hit_rate"]) == len(history["mean_loss"]) <= 2


# ------------------------------------------------------------------------------- exports


def test_run_fn_writes_every_export(fixture_data, trained_uri):
  serving_dir = os.path.join(trained_uri, "Format-Serving")
  assert tf.saved_model.contains_saved_model(serving_dir)
  assert tf.saved_model.contains_saved_model(artifacts.query_model_path(trained_uri))

  movie_ids, embeddings = _candidates(trained_uri)
  assert movie_ids == list(fixture_data.catalog)  # Every catalog movie, in catalog order.
  never_trained = set(fixture_data.catalog) - set(fixture_data.train.movie_ids)
  assert never_trained and never_trained <= set(movie_ids)
  assert embeddings.dtype == np.float32
  assert embeddings.shape == (len(fixture_data.catalog), TOWERS_DIM)
  _assert_unit_parts(embeddings)
  # Movies never rated share the OOV id embedding but differ by title and genres.
  unrated = np.array([embeddings[movie_ids.index(m)] for m in sorted(never_trained)])
  assert len(np.unique(unrated.round(5), axis=0)) == len(unrated)


def test_exports_carry_no_keras_layer_traces(trained_uri):
  # The models are served by their signatures (tf.saved_model.load, TF Serving); the
  # Keras layers' call traces would only make every export slower.
  for directory in (os.path.join(trained_uri, "Format-Serving"),
                    artifacts.query_model_path(trained_uri)):
    saved = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(directory, "saved_model.pb"), "rb") as f:
      saved.ParseFromString(f.read())
    names = [function.signature.name
             for function in saved.meta_graphs[0].graph_def.library.function]
    assert names and not [name for name in names if "layer_call" in name], directory


def test_run_fn_writes_seen_movies(fixture_data, trained_uri):
  seen = artifact_files.read_seen_movies(os.path.join(trained_uri, "Format-Serving"))
  expected = collections.defaultdict(set)
  for user, movie in zip(fixture_data.train.user_ids, fixture_data.train.movie_ids):
    expected[user].add(movie)
  assert {user: set(movies) for user, movies in seen.items()} == dict(expected)
  assert all(len(movies) == len(set(movies)) for movies in seen.values())


def _check_results(result, fixture_data, batch_size):
  assert set(result) == {"movie_id", "movie_title", "score"}
  for name in result:
    assert result[name].shape == (batch_size, TOP_K), name
  scores = result["score"].numpy()
  assert np.all(np.isfinite(scores))
  assert np.all(np.diff(scores, axis=1) <= 0)  # Best first.
  ids, titles = _strings(result["movie_id"]), _strings(result["movie_title"])
  for row_ids, row_titles in zip(ids, titles):
    assert len(set(row_ids)) == TOP_K
    assert row_titles == [fixture_data.catalog[m].title for m in row_ids]
  return ids, scores


def test_serving_signatures(fixture_data, serving):
  assert set(serving.signatures) == {serving_lib.SERVING_DEFAULT, serving_lib.SERVING_AT_TIME,
                                     serving_lib.SERVING_WITH_CONTEXT,
                                     serving_lib.SERVING_WITH_CONTEXT_AT_TIME,
                                     serving_lib.SERVING_EXCLUDE_SEEN}
  users = tf.constant(["1", "2", "3"])
  default = serving.signatures[serving_lib.SERVING_DEFAULT](user_id=users)
  default_ids, _ = _check_results(default, fixture_data, 3)
  assert default_ids[0] != default_ids[1] or default_ids[1] != default_ids[2]

  reference = int(fixture_data.train.timestamps.max())
  at_reference = serving.signatures[serving_lib.SERVING_AT_TIME](
      user_id=users, timestamp=tf.constant([reference] * 3, tf.int64))
  _check_results(at_reference, fixture_data, 3)
  # serving_default queries at the latest training timestamp.
  np.testing.assert_allclose(at_reference["score"].numpy(), default["score"].numpy(),
                             rtol=1e-5, atol=1e-6)

  exclude = serving.signatures[serving_lib.SERVING_EXCLUDE_SEEN](
      user_id=users, exclude_movie_ids=tf.constant([[""]] * 3))
  _check_results(exclude, fixture_data, 3)

  # With a context: every row padded with "", of any width.
  context = tf.constant([["1", "2", ""], ["3", "", ""], ["4", "5", "6"]])
  with_context = serving.signatures[serving_lib.SERVING_WITH_CONTEXT](
      user_id=users, context_movie_ids=context)
  _check_results(with_context, fixture_data, 3)
  at_time = serving.signatures[serving_lib.SERVING_WITH_CONTEXT_AT_TIME](
      user_id=users, context_movie_ids=context,
      timestamp=tf.constant([reference] * 3, tf.int64))
  np.testing.assert_allclose(at_time["score"].numpy(), with_context["score"].numpy(),
                             rtol=1e-5, atol=1e-6)


def test_unknown_user_gets_results(fixture_data, serving):
  result = serving.signatures[serving_lib.SERVING_DEFAULT](
      user_id=tf.constant(["no-such-user", "99999999"]))
  ids, _ = _check_results(result, fixture_data, 2)
  assert ids[0] == ids[1]  # Both are the OOV user.


def test_exclude_seen(fixture_data, serving):
  users = tf.constant(["4", "5"])
  default_ids = _strings(serving.signatures[serving_lib.SERVING_DEFAULT](user_id=users)["movie_id"])
  excluded = [
      # The top 3, padding, an id not in the catalog, and a duplicate.
      default_ids[0][:3] + ["", "no-such-movie", default_ids[0][0]],
      # Every top-k movie: k replacements must come from further down the ranking.
      default_ids[1][:TOP_K],
  ]
  width = max(len(row) for row in excluded)
  padded = [row + [""] * (width - len(row)) for row in excluded]
  result = serving.signatures[serving_lib.SERVING_EXCLUDE_SEEN](
      user_id=users, exclude_movie_ids=tf.constant(padded))
  ids, _ = _check_results(result, fixture_data, 2)
  for row_ids, row_excluded, row_default in zip(ids, excluded, default_ids):
    assert not set(row_ids) & set(row_excluded)
    # The kept movies keep their order; new ones follow them.
    kept = [m for m in row_default if m not in row_excluded]
    assert row_ids[:len(kept)] == kept
  assert not set(ids[1]) & set(default_ids[1])


def test_exclude_almost_everything_leaves_blank_slots(fixture_data, serving):
  catalog = list(fixture_data.catalog)
  keep = catalog[:3]  # Fewer than TOP_K movies remain after the exclusion.
  result = serving.signatures[serving_lib.SERVING_EXCLUDE_SEEN](
      user_id=tf.constant(["1"]), exclude_movie_ids=tf.constant([catalog[3:]]))
  ids, titles = _strings(result["movie_id"])[0], _strings(result["movie_title"])[0]
  scores = result["score"].numpy()[0]
  assert sorted(ids[:3]) == sorted(keep)
  assert ids[3:] == [""] * (TOP_K - 3) and titles[3:] == [""] * (TOP_K - 3)
  assert np.all(np.isfinite(scores[:3])) and np.all(np.isneginf(scores[3:]))


def test_every_oov_user_bucket_is_trained(sizes, trainer_config):  # pylint: disable=redefined-outer-name
  # With 3 OOV buckets, the dropped user ids must land in each of them, never on a real user.
  sizes3 = dataclasses.replace(sizes, users=sizes.users + 2, num_oov_buckets=3)
  config = trainer_config.replace(oov_user_rate=1.0)
  dropped = model_lib.drop_user_ids({features.USER_ID_INDEX: tf.zeros([3000], tf.int64)},
                                    config.optimization.oov_user_rate,
                                    sizes3)[features.USER_ID_INDEX].numpy()
  assert set(dropped.tolist()) == {sizes3.users - 3, sizes3.users - 2, sizes3.users - 1}


def test_the_ranker_trains_unknown_users_with_and_without_a_history(sizes):
  # Every user dropped to the OOV bucket: about half of them lose their context, the
  # others keep it whole; known users' contexts are never touched.
  users = tf.constant([0] * 2000 + [sizes.users - 1] * 2000, tf.int64)
  contexts = tf.tile(tf.constant([[3, 4, -1]], tf.int64), [4000, 1])
  blanked = ranking.blank_some_unknown_contexts(
      {features.USER_ID_INDEX: users, features.CONTEXT_MOVIE_INDICES: contexts},
      sizes)[features.CONTEXT_MOVIE_INDICES].numpy()
  is_blank = np.all(blanked == layers.PADDING, axis=1)
  assert not is_blank[:2000].any()
  assert 0.4 < is_blank[2000:].mean() < 0.6
  assert (blanked[~is_blank] == [3, 4, -1]).all()


def test_zero_oov_buckets_is_rejected():
  with pytest.raises(ValueError, match="num_oov_buckets"):
    configs.TransformConfig(num_oov_buckets=0)


def test_only_padding_and_unknown_ids_change_nothing(fixture_data, serving):
  users = tf.constant(["6", "7"])
  default = serving.signatures[serving_lib.SERVING_DEFAULT](user_id=users)
  result = serving.signatures[serving_lib.SERVING_EXCLUDE_SEEN](
      user_id=users, exclude_movie_ids=tf.constant([["", "unknown-id"], ["", ""]]))
  assert _strings(result["movie_id"]) == _strings(default["movie_id"])
  np.testing.assert_allclose(result["score"].numpy(), default["score"].numpy(), rtol=1e-6)


def test_query_model_matches_serving_model(fixture_data, trained_uri, serving, query_model):
  movie_ids, embeddings = _candidates(trained_uri)
  users = ["1", "8", "no-such-user"]
  timestamps = [int(fixture_data.train.timestamps.min()),
                int(fixture_data.train.timestamps.max()),
                int(np.median(fixture_data.train.timestamps))]
  signature = query_model.signatures[serving_lib.QUERY_SIGNATURE]
  queries = signature(user_id=tf.constant(users), timestamp=tf.constant(timestamps, tf.int64))
  queries = queries[serving_lib.EMBEDDING_OUTPUT].numpy()
  assert queries.shape == (3, TOWERS_DIM)
  _assert_unit_parts(queries)

  served = serving.signatures[serving_lib.SERVING_AT_TIME](
      user_id=tf.constant(users), timestamp=tf.constant(timestamps, tf.int64))
  scores = queries @ embeddings.T
  expected_positions = np.argsort(-scores, axis=1, kind="stable")[:, :TOP_K]
  expected_ids = [[movie_ids[p] for p in row] for row in expected_positions]
  assert _strings(served["movie_id"]) == expected_ids
  np.testing.assert_allclose(served["score"].numpy(),
                             np.take_along_axis(scores, expected_positions, axis=1),
                             rtol=1e-4, atol=1e-5)


def test_multi_vector_queries_rank_alike_in_serving_and_evaluator(fixture_data,
                                                                  interests_uri):
  movie_ids, embeddings = _candidates(interests_uri)
  users = ["1", "8", "23"]
  # The Evaluator's path: its query embeddings and score function.
  queries = evaluator_data.query_embeddings(interests_uri, {
      features.USER_ID: np.array(users, object),
      features.TIMESTAMP: np.full(3, int(fixture_data.train.timestamps.max()))})
  assert queries.shape == (3, 3, TOWERS_DIM)
  _assert_unit_parts(queries)
  # The user id head's part is the same on every vector of a query.
  np.testing.assert_allclose(queries[:, 1:, EMBEDDING_DIM:],
                             np.repeat(queries[:, :1, EMBEDDING_DIM:], 2, axis=1))
  scores = scoring.embedding_score_fn(queries, embeddings,
                                      np.ones(len(movie_ids), bool))(np.arange(3))
  per_vector = np.einsum("uhd,md->uhm", queries, embeddings)
  np.testing.assert_allclose(scores, per_vector.max(axis=1), rtol=1e-5, atol=1e-6)
  # Each of the vectors is some movie's best match: all of them are used.
  assert len(np.unique(per_vector.argmax(axis=1))) == 3
  # The serving model ranks the same way.
  served = tf.saved_model.load(os.path.join(interests_uri, "Format-Serving")).signatures[
      "serving_default"](user_id=tf.constant(users))
  expected = np.argsort(-scores, axis=1, kind="stable")[:, :TOP_K]
  assert _strings(served["movie_id"]) == [[movie_ids[p] for p in row] for row in expected]
  np.testing.assert_allclose(served["score"].numpy(),
                             np.take_along_axis(scores, expected, axis=1), rtol=1e-4,
                             atol=1e-5)


def _recent_train_movies(fixture_data, user, count):
  """The user's `count` most recent train movies (the UserContext order), raw ids."""
  history = [(int(t), m.encode()) for u, m, t in zip(
      fixture_data.train.user_ids, fixture_data.train.movie_ids, fixture_data.train.timestamps)
             if u == user]
  return [m.decode() for _, m in sorted(history, reverse=True)][:count]


def test_known_user_without_context_gets_the_stored_training_history(fixture_data,
                                                                      query_model, trained_uri):
  users = ["1", "8", "23"]
  timestamps = tf.constant([int(fixture_data.train.timestamps.max())] * 3, tf.int64)
  stored = query_model.signatures[serving_lib.QUERY_SIGNATURE](
      user_id=tf.constant(users), timestamp=timestamps)[serving_lib.EMBEDDING_OUTPUT].numpy()
  histories = [_recent_train_movies(fixture_data, user, fixture_data.max_context)
               for user in users]
  width = max(len(h) for h in histories)
  explicit = query_model.signatures[serving_lib.QUERY_WITH_CONTEXT_SIGNATURE](
      user_id=tf.constant(users), timestamp=timestamps,
      context_movie_ids=tf.constant([h + [""] * (width - len(h)) for h in histories]))
  np.testing.assert_allclose(explicit[serving_lib.EMBEDDING_OUTPUT].numpy(), stored,
                             rtol=1e-5, atol=1e-6)
  # The evaluator's reader calls either signature.
  read = evaluator_data.query_embeddings(trained_uri, {
      features.USER_ID: np.array(users, dtype=object), features.TIMESTAMP: timestamps.numpy(),
      features.CONTEXT_MOVIE_IDS: np.array([h + [""] * (width - len(h)) for h in histories],
                                           dtype=object)},
      serving_lib.QUERY_WITH_CONTEXT_SIGNATURE)
  np.testing.assert_allclose(read, stored, rtol=1e-5, atol=1e-6)
  # An all-"" row means "no context given": the stored history again.
  blank = query_model.signatures[serving_lib.QUERY_WITH_CONTEXT_SIGNATURE](
      user_id=tf.constant(users), timestamp=timestamps,
      context_movie_ids=tf.constant([[""]] * 3))
  np.testing.assert_allclose(blank[serving_lib.EMBEDDING_OUTPUT].numpy(), stored,
                             rtol=1e-5, atol=1e-6)
  # Users have different histories, hence different queries.
  assert not np.allclose(stored[0], stored[1], atol=1e-4)


def test_unknown_user_with_a_history_gets_recommendations_from_it(fixture_data, serving,
                                                                   query_model):
  history = _recent_train_movies(fixture_data, "5", 8)
  without = serving.signatures[serving_lib.SERVING_DEFAULT](user_id=tf.constant(["new-user"]))
  with_history = serving.signatures[serving_lib.SERVING_WITH_CONTEXT](
      user_id=tf.constant(["new-user"]), context_movie_ids=tf.constant([history]))
  assert _strings(with_history["movie_id"]) != _strings(without["movie_id"])
  # The history tower knows a user by their movies only; the user id head adds what the
  # model learned of user 5, and for the new user its trained OOV embedding.
  queries = query_model.signatures[serving_lib.QUERY_WITH_CONTEXT_SIGNATURE](
      user_id=tf.constant(["5", "new-user"]),
      timestamp=tf.constant([int(fixture_data.train.timestamps.max())] * 2, tf.int64),
      context_movie_ids=tf.constant([history] * 2))[serving_lib.EMBEDDING_OUTPUT].numpy()
  np.testing.assert_allclose(queries[0, :EMBEDDING_DIM], queries[1, :EMBEDDING_DIM],
                             rtol=1e-5, atol=1e-6)
  assert not np.allclose(queries[0, EMBEDDING_DIM:TOWERS_DIM],
                         queries[1, EMBEDDING_DIM:TOWERS_DIM], atol=1e-3)
  # Padding anywhere, and ids beyond the first max_context, change nothing.
  full = _recent_train_movies(fixture_data, "5", fixture_data.max_context)
  longer = [""] + full[:1] + ["", ""] + full[1:] + ["", "no-such-movie", "1"]
  outputs = [serving.signatures[serving_lib.SERVING_WITH_CONTEXT](
      user_id=tf.constant(["new-user"]), context_movie_ids=tf.constant([row]))
             for row in (full, longer)]
  assert _strings(outputs[0]["movie_id"]) == _strings(outputs[1]["movie_id"])
  np.testing.assert_allclose(outputs[0]["score"].numpy(), outputs[1]["score"].numpy(),
                             rtol=1e-6)


EASE_RANK = 4


@pytest.fixture(scope="module")
def ease_uri(fixture_data, tmp_path_factory):
  """A Model artifact of the default towers with a rank-4 EASE factor at weight 1.5."""
  return _run_fn(fixture_data, os.path.join(str(tmp_path_factory.mktemp("ease")), "model"),
                 {**TRAINER_CONFIG, "ease_factor_rank": EASE_RANK,
                  "ease_factor_weights": "1.5"})


def _train_movies(fixture_data, user):
  return sorted({m for u, m in zip(fixture_data.train.user_ids, fixture_data.train.movie_ids)
                 if u == user})


def test_ease_factor_is_appended_to_the_query_and_candidate_embeddings(fixture_data,
                                                                       ease_uri):
  movie_ids, embeddings = _candidates(ease_uri)
  assert embeddings.shape == (len(movie_ids), TOWERS_DIM + EASE_RANK)
  _assert_unit_parts(embeddings)
  query_model = tf.saved_model.load(artifacts.query_model_path(ease_uri))
  with_context = query_model.signatures[serving_lib.QUERY_WITH_CONTEXT_SIGNATURE]
  time = int(fixture_data.train.timestamps.max())

  def factor_of(users, contexts):
    width = max(len(row) for row in contexts)
    return with_context(
        user_id=tf.constant(users), timestamp=tf.constant([time] * len(users), tf.int64),
        context_movie_ids=tf.constant([row + [""] * (width - len(row)) for row in contexts])
    )[serving_lib.EMBEDDING_OUTPUT].numpy()[:, TOWERS_DIM:]

  # Without a context, a known user's factor reads every train movie of the user, not only
  # the max_context stored ones, and as if the user had been left out of EASE's fit: not
  # the sum of the factors of chunks of the history (EASE from the user's own row, which
  # scores the user's train movies higher).
  history = _train_movies(fixture_data, "1")
  assert len(history) > fixture_data.max_context
  chunks = [history[i:i + fixture_data.max_context]
            for i in range(0, len(history), fixture_data.max_context)]
  stored = factor_of(["1"], [[""]])[0]
  in_sample = factor_of(["new-user"] * len(chunks), chunks).sum(axis=0)
  assert np.abs(stored).max() > 1e-3
  own = np.isin(movie_ids, history)
  factor_scores = lambda vector: embeddings[:, TOWERS_DIM:] @ vector
  assert factor_scores(stored)[own].mean() < factor_scores(in_sample)[own].mean()
  # An unknown user without a context has no factor; with one, the factor of its movies:
  # all of them, also past max_context (the towers read the first max_context).
  unknown = factor_of(["new-user", "new-user"], [[""], history[:3]])
  assert not unknown[0].any() and np.abs(unknown[1]).max() > 1e-4
  np.testing.assert_allclose(factor_of(["new-user"], [history])[0], in_sample, rtol=1e-4,
                             atol=1e-5)
  assert np.abs(factor_of(["new-user"], [history[:fixture_data.max_context]])[0]
                - in_sample).max() > 1e-4

  # The serving model ranks by the same dot product, factor included.
  users = ["1", "8", "no-such-user"]
  queries = query_model.signatures[serving_lib.QUERY_SIGNATURE](
      user_id=tf.constant(users), timestamp=tf.constant([time] * 3, tf.int64)
  )[serving_lib.EMBEDDING_OUTPUT].numpy()
  served = tf.saved_model.load(os.path.join(ease_uri, "Format-Serving")).signatures[
      serving_lib.SERVING_DEFAULT](user_id=tf.constant(users))
  scores = queries @ embeddings.T
  expected = np.argsort(-scores, axis=1, kind="stable")[:, :TOP_K]
  assert _strings(served["movie_id"]) == [[movie_ids[p] for p in row] for row in expected]
  np.testing.assert_allclose(served["score"].numpy(),
                             np.take_along_axis(scores, expected, axis=1), rtol=1e-4,
                             atol=1e-5)
  with open(artifacts.training_history_path(ease_uri)) as f:
    history_file = json.load(f)
  assert history_file["ease_factor_weight"] == [1.5]
  assert history_file["ease_factor_rank"] == [EASE_RANK]
  assert history_file["ease_factor_weights"] == [1.5]
  assert 0 <= history_file["ease_factor_validation_hit_rates"][0] <= 1
  assert history_file["ease_factor_level_weights"] == [1.5]  # One weight: level with itself.
  # The session rows' weight is chosen on the validation slice too, from the default list.
  assert history_file["ease_factor_session_weights"] == [0.0, 0.25]
  rates = history_file["ease_factor_session_validation_hit_rates"]
  assert len(rates) == 2 and all(0 <= rate <= 1 for rate in rates)
  kept = history_file["ease_factor_session_weight"][0]
  assert kept == [0.0, 0.25][int(np.argmax(rates))]


def test_without_an_ease_factor_the_embeddings_are_the_towers(trained_uri):
  with open(artifacts.training_history_path(trained_uri)) as f:
    assert json.load(f)["ease_factor_weight"] == [0.0]
  assert _candidates(trained_uri)[1].shape[1] == TOWERS_DIM


def test_user_id_tower_ignores_the_context(user_id_serving):
  users = tf.constant(["1", "2"])
  default = user_id_serving.signatures[serving_lib.SERVING_DEFAULT](user_id=users)
  with_context = user_id_serving.signatures[serving_lib.SERVING_WITH_CONTEXT](
      user_id=users, context_movie_ids=tf.constant([["1", "2"], ["3", ""]]))
  np.testing.assert_allclose(with_context["score"].numpy(), default["score"].numpy(),
                             rtol=1e-6)


def test_recommend_from_a_history(fixture_data, trained_uri):
  model_dir = os.path.join(trained_uri, "Format-Serving")
  history = _recent_train_movies(fixture_data, "5", 8)
  [rows] = recommend.recommend(model_dir, ["new-user"], k=5, history=history)
  assert len(rows) == 5 and not {rec.movie_id for rec in rows} & set(history)
  [plain] = recommend.recommend(model_dir, ["new-user"], k=5)
  assert [rec.movie_id for rec in rows] != [rec.movie_id for rec in plain]
  # An id the catalog lacks is named in a warning, not silently read as another movie.
  with mock.patch.object(recommend.logging, "warning") as warning:
    recommend.recommend(model_dir, ["new-user"], k=5, history=history)
    warning.assert_not_called()
    recommend.recommend(model_dir, ["new-user"], k=5, history=history + ["no-such-movie"])
  assert "no-such-movie" in warning.call_args.args[-1]
  with pytest.raises(ValueError, match="--history"):
    recommend.recommend(model_dir, ["1"], history=["1", " "])
  with pytest.raises(ValueError, match="--exclude_seen"):
    recommend.recommend(model_dir, ["1"], history=["1"], exclude_seen=True)
  with pytest.raises(ValueError, match="drop --timestamp"):
    recommend.recommend(model_dir, ["1"], exclude_seen=True, timestamp=0)


def test_query_time_matters(user_id_serving):
  # The user_id tower reads the timestamp, so the same user at different times may differ.
  users = tf.constant(["1", "1"])
  result = user_id_serving.signatures[serving_lib.SERVING_AT_TIME](
      user_id=users, timestamp=tf.constant([0, 2_000_000_000], tf.int64))
  scores = result["score"].numpy()
  assert not np.allclose(scores[0], scores[1])


def _top_lists(serving, users, timestamp):
  result = serving.signatures[serving_lib.SERVING_AT_TIME](
      user_id=tf.constant(users), timestamp=tf.fill([len(users)], tf.constant(timestamp,
                                                                               tf.int64)))
  return _strings(result["movie_id"])


def test_queries_outside_the_training_time_range_stay_personalized(fixture_data,
                                                                    user_id_serving):
  serving = user_id_serving
  # Time features are clipped to the training range: a query at today's date on old data
  # (or before any rating) is answered as at the nearest trained time, not with one list
  # for everybody.
  users = sorted(set(fixture_data.train.user_ids))
  first, last = (int(fixture_data.train.timestamps.min()),
                 int(fixture_data.train.timestamps.max()))
  far_future = _top_lists(serving, users, last + 30 * 365 * 86_400)
  far_past = _top_lists(serving, users, 0)
  assert far_future == _top_lists(serving, users, last)
  assert far_past == _top_lists(serving, users, first)
  for lists in (far_future, far_past):
    assert len({tuple(row) for row in lists}) >= len(users) // 2


def test_serving_rejects_inputs_of_different_batch_sizes(serving):
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match="timestamp, user_id must have the same batch size"):
    serving.signatures[serving_lib.SERVING_AT_TIME](
        user_id=tf.constant(["1", "2"]), timestamp=tf.constant([0, 1, 2], tf.int64))
  # A one-row exclusion list is not broadcast to every user of a larger batch.
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match="exclude_movie_ids, user_id must have the same batch"):
    serving.signatures[serving_lib.SERVING_EXCLUDE_SEEN](
        user_id=tf.constant(["1", "2"]), exclude_movie_ids=tf.constant([["1"]]))
  # The message names the request's inputs only, not the time the signature fills in.
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"inputs context_movie_ids, user_id must have the same batch"):
    serving.signatures[serving_lib.SERVING_WITH_CONTEXT](
        user_id=tf.constant(["1", "2"]), context_movie_ids=tf.constant([["1"]]))


def test_signature_inputs_come_from_the_query_features(serving, query_model):
  def inputs(signature):
    return set(signature.structured_input_signature[1])
  assert inputs(serving.signatures[serving_lib.SERVING_DEFAULT]) == set(
      features.REQUIRED_QUERY_FEATURES)
  assert inputs(serving.signatures[serving_lib.SERVING_AT_TIME]) == set(
      features.REQUEST_QUERY_FEATURES)
  assert inputs(serving.signatures[serving_lib.SERVING_WITH_CONTEXT]) == set(
      features.REQUIRED_QUERY_FEATURES + features.CONTEXT_FEATURES)
  assert inputs(serving.signatures[serving_lib.SERVING_WITH_CONTEXT_AT_TIME]) == set(
      features.QUERY_FEATURES)
  assert inputs(serving.signatures[serving_lib.SERVING_EXCLUDE_SEEN]) == set(
      features.REQUIRED_QUERY_FEATURES) | {serving_lib.EXCLUDE_MOVIE_IDS}
  # The Evaluator gives a request's features; the model fills the context from its store.
  assert inputs(query_model.signatures[serving_lib.QUERY_SIGNATURE]) == set(
      features.REQUEST_QUERY_FEATURES) == {features.USER_ID, features.TIMESTAMP}
  assert inputs(query_model.signatures[serving_lib.QUERY_WITH_CONTEXT_SIGNATURE]) == set(
      features.QUERY_FEATURES)
  assert features.CONTEXT_MOVIE_IDS in features.QUERY_FEATURES
  assert features.CONTEXT_MOVIE_IDS not in features.REQUIRED_QUERY_FEATURES


def test_recommend_rejects_bad_requests_and_never_returns_blank_slots(trained_uri, tmp_path):
  model_dir = os.path.join(trained_uri, "Format-Serving")
  for user_ids, k, flag in (([""], 5, "--user_id"), ([" "], 5, "--user_id"),
                            ([], 5, "--user_id"), (["1"], 0, "--k"), (["1"], -5, "--k")):
    with pytest.raises(ValueError, match=flag):
      recommend.recommend(model_dir, user_ids, k=k)
  # More than the model returns: all it has, no more, and no blank slots.
  [rows] = recommend.recommend(model_dir, ["1"], k=100_000)
  assert len(rows) == TOP_K and all(rec.movie_id for rec in rows)
  # Another of the pipeline's SavedModels, or no model at all.
  with pytest.raises(ValueError, match="query_model is not a serving model: its "
                     "serving_default returns \\['embedding'\\]"):
    recommend.recommend(artifacts.query_model_path(trained_uri), ["1"])
  with pytest.raises(FileNotFoundError, match="No SavedModel in") as missing:
    recommend.recommend(trained_uri + "-missing", ["1"])
  assert "pipeline root" not in str(missing.value)
  # A pipeline root, whose pushed models are in serving_model/: the message points there.
  root = tmp_path / "root"
  (root / artifacts.DEFAULT_SERVING_DIR).mkdir(parents=True)
  with pytest.raises(FileNotFoundError, match=(
      f"{root} looks like a pipeline root: pass {root}/{artifacts.DEFAULT_SERVING_DIR}.")):
    recommend.recommend(str(root), ["1"])


def test_recommend_cli_reports_a_bad_model_dir_in_one_line(trained_uri):
  missing = trained_uri + "-missing"
  failed = subprocess.run(
      [sys.executable, "-m", "trainer_module.recommend", "--model_dir", missing,
       "--user_id", "1"], capture_output=True, text=True, check=False,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert failed.returncode == 1 and failed.stdout == ""
  assert [line for line in failed.stderr.splitlines() if "ERROR" in line] == [
      f"ERROR: No SavedModel in {missing} nor in a numeric version directory under it. Run "
      "the pipeline (make run) and pass its --serving_dir, or a Trainer's Format-Serving dir."]
  assert "Traceback" not in failed.stderr


# ---------------------------------------------------------------------------- usefulness


def _hit_rate(model_uri, fixture_data, k=HIT_RATE_K):
  """Fraction of eval ratings whose movie is in the user's top k (train movies excluded)."""
  movie_ids, embeddings = _candidates(model_uri)
  position = {movie_id: i for i, movie_id in enumerate(movie_ids)}
  signature = tf.saved_model.load(artifacts.query_model_path(model_uri)).signatures[
      serving_lib.QUERY_SIGNATURE]
  queries = signature(user_id=tf.constant(fixture_data.eval.user_ids),
                      timestamp=tf.constant(fixture_data.eval.timestamps, tf.int64))
  scores = queries[serving_lib.EMBEDDING_OUTPUT].numpy() @ embeddings.T
  seen = collections.defaultdict(list)
  for user, movie in zip(fixture_data.train.user_ids, fixture_data.train.movie_ids):
    seen[user].append(position[movie])
  for row, user in enumerate(fixture_data.eval.user_ids):
    scores[row, seen[user]] = -np.inf
  top = np.argsort(-scores, axis=1)[:, :k]
  return float(np.mean([position[movie] in top[row]
                        for row, movie in enumerate(fixture_data.eval.movie_ids)]))


def test_trained_model_beats_untrained(fixture_data, trained_uri, untrained_uri):
  trained = _hit_rate(trained_uri, fixture_data)
  untrained = _hit_rate(untrained_uri, fixture_data)
  # Random ranking gives about k / (catalog size - seen) ~ 0.15 here.
  assert untrained < 0.3
  assert trained > untrained + 0.2, (trained, untrained)


def _evaluate(fixture_data, model_uri, workdir):
  """Runs the RetrievalEvaluator executor on an exported model; returns metrics.json."""
  from components.retrieval_evaluator import executor as evaluator  # pylint: disable=g-import-not-at-top
  from components.retrieval_evaluator import results  # pylint: disable=g-import-not-at-top
  from tfx.types import artifact_utils, standard_artifacts  # pylint: disable=g-import-not-at-top
  examples = standard_artifacts.Examples()
  examples.uri = os.path.dirname(os.path.dirname(fixture_data.raw_train_pattern))
  examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
  model = standard_artifacts.Model()
  model.uri = model_uri
  evaluation = standard_artifacts.ModelEvaluation()
  evaluation.uri = os.path.join(workdir, "evaluation")
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = os.path.join(workdir, "blessing")
  evaluator.Executor().Do({evaluator.EXAMPLES_KEY: [examples], evaluator.MODEL_KEY: [model]},
                          {evaluator.EVALUATION_KEY: [evaluation],
                           evaluator.BLESSING_KEY: [blessing]},
                          # hit_rate@100 saturates on this 160-movie catalog.
                          {"blessing_k": 10})
  return results.load(evaluation.uri), blessing


def test_evaluator_refuses_the_untrained_model(fixture_data, trained_uri, untrained_uri,
                                               tmp_path):
  # That a trained model is blessed is shown by tests/test_pipeline_e2e.py, on a catalog
  # large enough for the default gate; on this 160-movie one popularity is about as good.
  trained, _ = _evaluate(fixture_data, trained_uri, str(tmp_path / "t"))
  untrained, untrained_blessing = _evaluate(fixture_data, untrained_uri, str(tmp_path / "u"))
  assert untrained["blessed"] is False
  assert untrained_blessing.get_int_custom_property("blessed") == 0
  assert os.path.exists(os.path.join(str(tmp_path / "u"), "blessing", "NOT_BLESSED"))
  assert (untrained["model"]["hit_rate@10"]
          < untrained["baseline_popularity"]["hit_rate@10"] / 2)
  assert any("Failed" in r and "popularity" in r for r in untrained["reasons"])
  assert trained["model"]["hit_rate@10"] > 2 * untrained["model"]["hit_rate@10"]


# ------------------------------------------------------------------------ ranking stage

RANKING_CONFIG = {**TRAINER_CONFIG, "ranking_model": "dcn", "ranking_epochs": 10,
                  "ranking_learning_rate": 0.01, "ranking_candidates": TOP_K}


@pytest.fixture(scope="module")
def ranked_uri(fixture_data, tmp_path_factory):
  """A Model artifact with the DCN ranking stage; it re-orders the retrieved top TOP_K."""
  return _run_fn(fixture_data, os.path.join(str(tmp_path_factory.mktemp("ranked")), "model"),
                 RANKING_CONFIG)


@pytest.fixture(scope="module")
def ranked_serving(ranked_uri):
  return tf.saved_model.load(os.path.join(ranked_uri, "Format-Serving"))


def _predicted_ratings(ranked_uri, user_ids, movie_ids, timestamps, catalog, context=None):
  """The ranking model export's predictions for (user, movie, time) triples: with
  `context` (one history, padded with "", for every triple) from its with_context
  signature, else from its default one (the stored histories)."""
  ranking_model = tf.saved_model.load(artifacts.ranking_model_path(ranked_uri))
  genres = [catalog[m].genres for m in movie_ids]
  width = max(len(g) for g in genres)
  inputs = dict(
      user_id=tf.constant(user_ids), timestamp=tf.constant(timestamps, tf.int64),
      movie_id=tf.constant(movie_ids),
      movie_title=tf.constant([catalog[m].title for m in movie_ids]),
      movie_genres=tf.constant([list(g) + [""] * (width - len(g)) for g in genres]))
  signature = serving_lib.RANKING_SIGNATURE
  if context is not None:
    signature = serving_lib.RANKING_WITH_CONTEXT_SIGNATURE
    inputs[features.CONTEXT_MOVIE_IDS] = tf.constant([list(context)] * len(movie_ids))
  result = ranking_model.signatures[signature](**inputs)
  return result[serving_lib.PREDICTED_RATING_OUTPUT].numpy()


def test_ranking_stage_beats_the_train_mean_on_eval(fixture_data, ranked_uri):
  # Synthetic ratings grow with movie quality and user leniency: a model that learned
  # anything predicts the held-out ratings better than the train mean does.
  evaluation = fixture_data.eval
  predicted = _predicted_ratings(ranked_uri, evaluation.user_ids, evaluation.movie_ids,
                                 evaluation.timestamps.tolist(), fixture_data.catalog)
  assert predicted.shape == (len(evaluation),) and np.all(np.isfinite(predicted))
  rmse = np.sqrt(np.mean((predicted - evaluation.ratings) ** 2))
  mean_rmse = np.sqrt(np.mean((fixture_data.train.ratings.mean() - evaluation.ratings) ** 2))
  assert rmse < 0.95 * mean_rmse, (rmse, mean_rmse)
  with tf.io.gfile.GFile(artifacts.training_history_path(ranked_uri)) as f:
    history = json.load(f)
  assert len(history["ranking_val_root_mean_squared_error"]) >= 1
  assert 1 <= history["ranking_epoch_kept"][0] <= RANKING_CONFIG["ranking_epochs"]
  # What the Evaluator reads to re-order as serving_ranked does.
  with tf.io.gfile.GFile(artifacts.ranking_config_path(ranked_uri)) as f:
    assert json.load(f) == {"ranking_model": "dcn",
                            "ranking_candidates": RANKING_CONFIG["ranking_candidates"],
                            "ranking_weight": configs.TrainerConfig().ranking.weight}


def test_retrieval_only_exports_no_ranking_stage(trained_uri, serving):
  assert not tf.io.gfile.exists(artifacts.ranking_model_path(trained_uri))
  assert not tf.io.gfile.exists(artifacts.ranking_config_path(trained_uri))
  assert not set(serving_lib.RANKED_TWINS.values()) & set(serving.signatures)


def _ranked_request(fixture_data, signature, users, serving_model):
  """The inputs of `signature` (a retrieval signature) for `users`, and the query time the
  ranking model then rates at: an early train time where the request gives one, else
  the model's reference time (the latest training rating). An exclude_seen request
  excludes each user's 3 best movies of `serving_model`'s serving_default."""
  inputs = serving_lib.QUERY_SIGNATURE_INPUTS[signature]
  request = {features.USER_ID: tf.constant(users)}
  if signature in serving_lib.EXCLUDING_SIGNATURES:
    best = serving_model.signatures[serving_lib.SERVING_DEFAULT](**request)["movie_id"]
    request[serving_lib.EXCLUDE_MOVIE_IDS] = best[:, :3]
  rating_time = int(fixture_data.train.timestamps.max())
  if features.TIMESTAMP in inputs:
    rating_time = int(np.quantile(fixture_data.train.timestamps, 0.1))
    request[features.TIMESTAMP] = tf.constant([rating_time] * len(users), tf.int64)
  if features.CONTEXT_MOVIE_IDS in inputs:
    # User 5's recent movies for every row: an unknown user then gets a list too.
    history = _recent_train_movies(fixture_data, "5", 8)
    request[features.CONTEXT_MOVIE_IDS] = tf.constant([history] * len(users))
  return request, rating_time


@pytest.mark.parametrize("signature", list(serving_lib.RANKED_TWINS))
def test_ranked_signatures_reorder_what_their_retrieval_twin_retrieves(
    fixture_data, ranked_uri, ranked_serving, signature):
  users = ["1", "2", "unknown-user"]
  request, rating_time = _ranked_request(fixture_data, signature, users, ranked_serving)
  retrieved = ranked_serving.signatures[signature](**request)
  ranked = ranked_serving.signatures[serving_lib.RANKED_TWINS[signature]](**request)
  ratings = ranked[serving_lib.PREDICTED_RATING_OUTPUT].numpy()
  assert ratings.shape == (len(users), TOP_K)
  # Every retrieved movie is returned (ranking_candidates == k), so the key can be
  # recomputed from the outputs: best first, and not the order of either part alone.
  key = scores_lib.ranked_order_key(ranked["score"].numpy(), ratings,
                                   configs.TrainerConfig().ranking.weight)
  assert np.all(np.diff(key, axis=1) <= 1e-5)
  assert np.any(np.diff(ratings, axis=1) > 0) and np.any(np.diff(ranked["score"], axis=1) > 0)
  for row, user in enumerate(users):
    ranked_ids = _strings(ranked["movie_id"])[row]
    # ranking_candidates == k: the same movies as the twin returns, in another order,
    # each with its retrieval score.
    assert sorted(ranked_ids) == sorted(_strings(retrieved["movie_id"])[row])
    score_by_id = dict(zip(_strings(retrieved["movie_id"])[row],
                           retrieved["score"].numpy()[row]))
    np.testing.assert_allclose(ranked["score"].numpy()[row],
                               [score_by_id[m] for m in ranked_ids], rtol=1e-5)
    # The serving model's ratings are the ranking model export's, at the request's time
    # and with the request's context (else the stored history).
    context = (_strings(request[features.CONTEXT_MOVIE_IDS])[row]
               if features.CONTEXT_MOVIE_IDS in request else None)
    expected = _predicted_ratings(ranked_uri, [user] * TOP_K, ranked_ids,
                                  [rating_time] * TOP_K, fixture_data.catalog, context)
    np.testing.assert_allclose(ratings[row], expected, rtol=1e-5)


def test_a_history_changes_the_ranked_list_of_an_unknown_user(fixture_data, ranked_serving):
  request, _ = _ranked_request(fixture_data, serving_lib.SERVING_WITH_CONTEXT, ["new-user"],
                               ranked_serving)
  with_history = ranked_serving.signatures[serving_lib.SERVING_RANKED_WITH_CONTEXT](**request)
  without = ranked_serving.signatures[serving_lib.SERVING_RANKED](user_id=tf.constant(["new-user"]))
  assert sorted(_strings(with_history["movie_id"])[0]) != sorted(
      _strings(without["movie_id"])[0])


def test_the_ranking_stage_rates_from_the_history_a_request_gives(fixture_data, ranked_uri):
  catalog, movies = fixture_data.catalog, list(fixture_data.catalog)[:6]
  times = [int(fixture_data.train.timestamps.max())] * len(movies)

  def rated(user, context=None):
    return _predicted_ratings(ranked_uri, [user] * len(movies), movies, times, catalog,
                              context)

  # An unknown user is rated from the history they give: two histories, two ratings.
  history_a = _recent_train_movies(fixture_data, "5", 8)
  history_b = _recent_train_movies(fixture_data, "7", 8)
  assert not np.allclose(rated("new-user", history_a), rated("new-user", history_b),
                         atol=1e-4)
  # Without a history (or with an all-"" row) a user is rated from the stored one.
  stored = _recent_train_movies(fixture_data, "1", fixture_data.max_context)
  np.testing.assert_allclose(rated("1", [""] * 3), rated("1"), rtol=1e-6)
  np.testing.assert_allclose(rated("1", stored), rated("1"), rtol=1e-5)
  assert not np.allclose(rated("1", history_b), rated("1"), atol=1e-4)


def test_a_user_id_tower_keeps_the_stored_histories_for_a_ranker_that_reads_them(
    fixture_data, tft_output, transform_config, user_histories, sizes, tmp_path):
  # The user_id tower ignores the context; the ranking stage still rates from it.
  config = configs.TrainerConfig.from_dict({**RANKING_CONFIG, "query_tower": "user_id"})
  model_uri = str(tmp_path / "model")
  export.export_all(export.ExportInputs(
      model_uri=model_uri, serving_model_dir=os.path.join(model_uri, "Format-Serving"),
      tft_output=tft_output,
      retrieval_model=training.build_model(tft_output, towers.resolve_config(config),
                                          transform_config, fixture_data.max_context),
      raw_catalog=data.read_raw_catalog([fixture_data.catalog_pattern]),
      max_title_tokens=config.towers.max_title_tokens, top_k=TOP_K,
      reference_timestamp=int(fixture_data.train.timestamps.max()),
      seen_movies={}, ranker=ranking.build(sizes, config, 3.5, uses_context=True),
      ranking_candidates=TOP_K, ranking_weight=0.5, user_histories=user_histories.whole))
  served = tf.saved_model.load(os.path.join(model_uri, "Format-Serving"))
  ranked = served.signatures[serving_lib.SERVING_RANKED_WITH_CONTEXT]
  lists = [ranked(user_id=tf.constant(["new-user"]), context_movie_ids=tf.constant(
      [_recent_train_movies(fixture_data, user, 8)])) for user in ("5", "7")]
  # The same movies retrieved (the tower ignores the history), rated differently.
  assert sorted(_strings(lists[0]["movie_id"])[0]) == sorted(_strings(lists[1]["movie_id"])[0])
  rating = [dict(zip(_strings(result["movie_id"])[0],
                     result[serving_lib.PREDICTED_RATING_OUTPUT].numpy()[0])) for result in lists]
  assert any(abs(rating[0][m] - rating[1][m]) > 1e-4 for m in rating[0])


def test_ranking_stage_needs_the_rating_in_the_transform_output(tft_output):
  ranking.check_has_ratings(tft_output)  # The fixture's Transform writes it.
  without_rating = mock.Mock(spec=tft.TFTransformOutput)
  without_rating.transformed_feature_spec.return_value = {
      name: spec for name, spec in tft_output.transformed_feature_spec().items()
      if name != features.RATING_LABEL}
  with pytest.raises(ValueError, match="run Transform again"):
    ranking.check_has_ratings(without_rating)


def test_recommend_ranked(ranked_uri, trained_uri, ranked_serving):
  [rows] = recommend.recommend(os.path.join(ranked_uri, "Format-Serving"), ["1"], k=5,
                               ranked=True)
  ranked = ranked_serving.signatures[serving_lib.SERVING_RANKED](user_id=tf.constant(["1"]))
  assert [rec.movie_id for rec in rows] == _strings(ranked["movie_id"])[0][:5]
  np.testing.assert_allclose([rec.predicted_rating for rec in rows],
                             ranked[serving_lib.PREDICTED_RATING_OUTPUT].numpy()[0, :5], rtol=1e-6)
  [plain] = recommend.recommend(os.path.join(ranked_uri, "Format-Serving"), ["1"], k=5)
  assert all(rec.predicted_rating is None for rec in plain)
  with pytest.raises(ValueError, match="has no ranking stage"):
    recommend.recommend(os.path.join(trained_uri, "Format-Serving"), ["1"], ranked=True)
  # --exclude_seen: serving_ranked_exclude_seen with the user's stored train movies.
  [unseen] = recommend.recommend(os.path.join(ranked_uri, "Format-Serving"), ["1"], k=5,
                                 exclude_seen=True, ranked=True)
  seen = artifact_files.read_seen_movies(os.path.join(ranked_uri, "Format-Serving"))["1"]
  expected = ranked_serving.signatures[serving_lib.SERVING_RANKED_EXCLUDE_SEEN](
      user_id=tf.constant(["1"]), exclude_movie_ids=tf.constant([seen]))
  assert [rec.movie_id for rec in unseen] == _strings(expected["movie_id"])[0][:5]
  assert not {rec.movie_id for rec in unseen} & set(seen)


def test_ranked_exclusion_of_almost_everything_ranks_what_is_left(fixture_data,
                                                                  ranked_serving):
  catalog = list(fixture_data.catalog)
  keep = catalog[:4]  # Fewer than ranking_candidates movies remain.
  result = ranked_serving.signatures[serving_lib.SERVING_RANKED_EXCLUDE_SEEN](
      user_id=tf.constant(["1"]), exclude_movie_ids=tf.constant([catalog[4:]]))
  ids = _strings(result["movie_id"])[0]
  scores = result["score"].numpy()[0]
  ratings = result[serving_lib.PREDICTED_RATING_OUTPUT].numpy()[0]
  assert sorted(ids[:4]) == sorted(keep) and ids[4:] == [""] * (TOP_K - 4)
  assert np.all(np.isneginf(scores[4:])) and np.all(np.isnan(ratings[4:]))
  # The four are ordered by the key standardized over them alone, not over the blanks.
  key = scores_lib.ranked_order_key(scores[None, :4], ratings[None, :4],
                                   configs.TrainerConfig().ranking.weight)
  assert np.all(np.diff(key, axis=1) <= 1e-5)


def test_recommend_ranked_with_a_history_and_a_time(fixture_data, ranked_uri, ranked_serving):
  request, rating_time = _ranked_request(
      fixture_data, serving_lib.SERVING_WITH_CONTEXT_AT_TIME, ["new-user"], ranked_serving)
  history = _strings(request[features.CONTEXT_MOVIE_IDS])[0]
  [rows] = recommend.recommend(os.path.join(ranked_uri, "Format-Serving"), ["new-user"],
                               k=TOP_K, timestamp=rating_time, history=history, ranked=True)
  ranked = ranked_serving.signatures[serving_lib.SERVING_RANKED_WITH_CONTEXT_AT_TIME](**request)
  # The history's movies are left out; the rest come in serving's order.
  expected = [m for m in _strings(ranked["movie_id"])[0] if m not in history]
  assert [rec.movie_id for rec in rows] == expected
  assert all(rec.predicted_rating is not None for rec in rows)


def test_dcn_ranking_model_shapes_and_padding():
  sizes = model_lib.VocabularySizes(users=5, movies=7, title_tokens=4, genres=3,
                                    timestamp_buckets=2)
  ranker = ranking.build(sizes, configs.TrainerConfig.from_flags(ranking_model="dcn"),
                         mean_rating=3.5)
  inputs = {features.USER_ID_INDEX: tf.constant([1, 2]),
            features.TIMESTAMP_BUCKET: tf.constant([0, 1]),
            features.MOVIE_ID_INDEX: tf.constant([3, 4]),
            features.TITLE_TOKENS: tf.constant([[1, -1], [2, 3]]),
            features.GENRE_INDICES: tf.constant([[0, -1], [1, 2]])}
  predicted = ranker(inputs).numpy()
  assert predicted.shape == (2,)
  # Padding a batch wider never changes a prediction.
  wider = {**inputs, features.TITLE_TOKENS: tf.constant([[1, -1, -1], [2, 3, -1]]),
           features.GENRE_INDICES: tf.constant([[0, -1, -1, -1], [1, 2, -1, -1]])}
  np.testing.assert_allclose(ranker(wider).numpy(), predicted, rtol=1e-6)
  # A ranker that reads the context: it changes the prediction, its padding does not.
  with_context = ranking.build(sizes, configs.TrainerConfig.from_flags(ranking_model="dcn"),
                               mean_rating=3.5, uses_context=True)
  context = {**inputs, features.CONTEXT_MOVIE_INDICES: tf.constant([[5, 6, -1], [6, -1, -1]])}
  predicted = with_context(context).numpy()
  padded = {**context, features.CONTEXT_MOVIE_INDICES: tf.constant([[5, 6, -1, -1],
                                                                    [6, -1, -1, -1]])}
  np.testing.assert_allclose(with_context(padded).numpy(), predicted, rtol=1e-6)
  other = {**context, features.CONTEXT_MOVIE_INDICES: tf.constant([[1, -1, -1], [6, -1, -1]])}
  changed = with_context(other).numpy()
  assert changed[0] != pytest.approx(predicted[0]) and changed[1] == pytest.approx(predicted[1])
  with pytest.raises(ValueError, match="No ranking model 'none'"):
    ranking.build(sizes, configs.TrainerConfig(), mean_rating=3.5)
