"""UserContext: each rating's context, on a hand-written example, through the real executor.

Checks the rule (order, ties, cap, never the rating's own movie, eval contexts from train
only), that the executor writes exactly that and keeps every other feature, that the
schema inferred from its output lets an eval user with no train history pass validation,
and that the trainer's stored histories follow the same order.
"""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.user_context import context
from components.user_context import executor
from contracts import artifacts
from contracts import features
from trainer_module import data

# (user, movie, timestamp) per split. User 7 rated movies 2 and 3 at the same second.
TRAIN = [("7", "1", 100), ("7", "2", 200), ("7", "3", 200), ("7", "4", 300),
         ("8", "1", 50), ("8", "9", 60)]
EVAL = [("7", "5", 150), ("7", "6", 400), ("8", "4", 10), ("9", "1", 500)]  # 9: eval only.


def test_history_is_most_recent_first_ties_by_larger_id():
  history = context.recent_first([(100, b"1"), (200, b"2"), (200, b"3"), (300, b"4")])
  assert history == [b"4", b"3", b"2", b"1"]


def test_context_leaves_out_the_own_movie_and_is_capped_and_padded():
  history = [b"4", b"3", b"2", b"1"]
  assert context.context_of(history, b"3", 2) == [b"4", b"2"]
  assert context.context_of(history, b"4", 2) == [b"3", b"2"]
  assert context.context_of(history, b"1", 5) == [b"4", b"3", b"2", b"", b""]
  # An eval rating: every train movie (its own movie is never a train movie here).
  assert context.context_of(history, b"6", 3) == [b"4", b"3", b"2"]
  # A user with no train history: all padding.
  assert context.context_of([], b"1", 2) == [b"", b""]
  # A movie rated twice in train never appears in either rating's context.
  assert context.context_of([b"4", b"3", b"4"], b"4", 3) == [b"3", b"", b""]
  with pytest.raises(ValueError, match="max_context"):
    context.context_of(history, b"1", 0)


def _example(user, movie, timestamp):
  feature = {
      features.USER_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[user.encode()])),
      features.MOVIE_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[movie.encode()])),
      features.MOVIE_TITLE: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[f"Movie {movie} (1999)".encode()])),
      features.MOVIE_GENRES: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[b"Drama", b"Comedy"])),
      features.TIMESTAMP: tf.train.Feature(int64_list=tf.train.Int64List(value=[timestamp])),
      features.USER_RATING: tf.train.Feature(float_list=tf.train.FloatList(value=[4.5])),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature))


def _write_ratings(root, splits):
  ratings = standard_artifacts.Examples()
  ratings.uri = os.path.join(root, "ratings")
  ratings.split_names = artifact_utils.encode_split_names(list(splits))
  for split, rows in splits.items():
    split_dir = artifact_utils.get_split_uri([ratings], split)
    os.makedirs(split_dir)
    with tf.io.TFRecordWriter(os.path.join(split_dir, "data.gz"), options="GZIP") as writer:
      for row in rows:
        writer.write(_example(*row).SerializeToString())
  return ratings


def _run(root, ratings, max_context):
  output = standard_artifacts.Examples()
  output.uri = os.path.join(root, "with_context")
  executor.Executor().Do({executor.EXAMPLES_KEY: [ratings]}, {executor.OUTPUT_KEY: [output]},
                         {"max_context": max_context})
  return output


def _read(artifact, split):
  files = sorted(glob.glob(os.path.join(artifact_utils.get_split_uri([artifact], split), "*")))
  return [tf.train.Example.FromString(record.numpy())
          for record in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _value(example, name):
  feature = example.features.feature[name]
  return list(feature.bytes_list.value or feature.int64_list.value or feature.float_list.value)


@pytest.fixture(scope="module")
def with_context(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("user_context"))
  ratings = _write_ratings(root, {artifacts.TRAIN_SPLIT: TRAIN, artifacts.EVAL_SPLIT: EVAL})
  return _run(root, ratings, max_context=3)


def test_executor_writes_the_context_of_every_rating(with_context):
  assert artifact_utils.decode_split_names(with_context.split_names) == [
      artifacts.TRAIN_SPLIT, artifacts.EVAL_SPLIT]
  expected = {
      # Train: the user's other train movies, most recent first, at most 3.
      (artifacts.TRAIN_SPLIT, "7", "1"): [b"4", b"3", b"2"],
      (artifacts.TRAIN_SPLIT, "7", "2"): [b"4", b"3", b"1"],
      (artifacts.TRAIN_SPLIT, "7", "3"): [b"4", b"2", b"1"],
      (artifacts.TRAIN_SPLIT, "7", "4"): [b"3", b"2", b"1"],
      (artifacts.TRAIN_SPLIT, "8", "1"): [b"9", b"", b""],
      (artifacts.TRAIN_SPLIT, "8", "9"): [b"1", b"", b""],
      # Eval: train movies only, never another eval movie (7's movie 5 is in no
      # context), whatever the eval rating's time.
      (artifacts.EVAL_SPLIT, "7", "5"): [b"4", b"3", b"2"],
      (artifacts.EVAL_SPLIT, "7", "6"): [b"4", b"3", b"2"],
      (artifacts.EVAL_SPLIT, "8", "4"): [b"9", b"1", b""],
      (artifacts.EVAL_SPLIT, "9", "1"): [b"", b"", b""],
  }
  got = {}
  for split, rows in ((artifacts.TRAIN_SPLIT, TRAIN), (artifacts.EVAL_SPLIT, EVAL)):
    examples = _read(with_context, split)
    assert len(examples) == len(rows)
    for example in examples:
      user = _value(example, features.USER_ID)[0].decode()
      movie = _value(example, features.MOVIE_ID)[0].decode()
      got[(split, user, movie)] = _value(example, features.CONTEXT_MOVIE_IDS)
      # Every input feature is kept as it was.
      timestamp = _value(example, features.TIMESTAMP)[0]
      original = _example(user, movie, timestamp)
      for name in features.RATING_FEATURES:
        assert _value(example, name) == _value(original, name), name
  assert got == expected


def test_inferred_schema_has_a_fixed_width_context_and_an_empty_history_passes(
    with_context):
  # SchemaGen/ExampleValidator as the pipeline runs them: the schema from train, eval
  # validated against it. Eval user 9 has no train movies (an all-"" context).
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  from tensorflow_transform.tf_metadata import schema_utils  # pylint: disable=g-import-not-at-top

  def statistics(split):
    pattern = os.path.join(artifact_utils.get_split_uri([with_context], split), "*")
    return tfdv.generate_statistics_from_tfrecord(pattern, stats_options=tfdv.StatsOptions(),
                                                  pipeline_options=None)

  schema = tfdv.infer_schema(statistics(artifacts.TRAIN_SPLIT), infer_feature_shape=True)
  spec = schema_utils.schema_as_feature_spec(schema).feature_spec
  assert spec[features.CONTEXT_MOVIE_IDS] == tf.io.FixedLenFeature([3], tf.string)
  anomalies = tfdv.validate_statistics(statistics(artifacts.EVAL_SPLIT), schema)
  # (This tiny set also gets string domains for titles, which eval breaks; real catalogs
  # are far above TFDV's domain size.)
  assert features.CONTEXT_MOVIE_IDS not in anomalies.anomaly_info, anomalies


def test_executor_rejects_bad_inputs(tmp_path):
  only_train = _write_ratings(str(tmp_path / "a"), {artifacts.TRAIN_SPLIT: TRAIN})
  with pytest.raises(ValueError, match="missing"):
    _run(str(tmp_path / "a"), only_train, 3)
  with pytest.raises(ValueError, match="max_context"):
    _run(str(tmp_path / "b"), only_train, 0)


def test_trainer_stores_the_histories_in_the_same_order():
  # The trainer's stored history of a user (what a query without a context uses) is what
  # UserContext gives that user's eval ratings: same order, ties included.
  vocabulary = [b"1", b"3", b"2", b"4", b"9"]  # Frequency order, not id order.
  users = {"7": 0, "8": 1}
  tensors = {
      features.USER_ID_INDEX: tf.constant([users[u] for u, _, _ in TRAIN], tf.int64),
      features.MOVIE_ID_INDEX: tf.constant([vocabulary.index(m.encode()) for _, m, _ in TRAIN],
                                           tf.int64),
      features.TIMESTAMP_SECONDS: tf.constant([t for _, _, t in TRAIN], tf.int64),
  }
  histories = data.user_histories(tensors, vocabulary, num_users=3, max_context=3)
  for user, row in users.items():
    expected = context.context_of(
        context.recent_first((t, m.encode()) for u, m, t in TRAIN if u == user), b"", 3)
    got = [vocabulary[i] if i >= 0 else b"" for i in histories[row]]
    assert got == expected
  # The OOV row (no ratings) is all padding.
  np.testing.assert_array_equal(histories[2], [-1, -1, -1])
