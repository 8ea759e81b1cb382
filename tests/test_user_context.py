"""UserContext: the validation split and the user histories, on hand-written examples,
through the real executor.

Checks the rules (history order, ties, cap; which train ratings go to validation), that
the executor writes every rating once to train, validation or eval, unchanged, each
user's histories (whole and fitted), the same bytes whatever the input's order and
sharding, and refuses bad inputs.
"""
import glob
import os
import random

import pytest
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.user_context import context
from components.user_context import executor
from contracts import artifacts
from contracts import features

# (user, movie, timestamp) per split. User 7 rated movies 2 and 3 at the same second.
TRAIN = [("7", "1", 100), ("7", "2", 200), ("7", "3", 200), ("7", "4", 300),
         ("8", "1", 50), ("8", "9", 60)] + [("10", str(m), 1000 + m) for m in range(40)]
EVAL = [("7", "5", 150), ("7", "6", 400), ("8", "4", 10), ("9", "1", 500)]  # 9: eval only.
MAX_CONTEXT = 3
FRACTION = 0.3
SEED = 11


def test_history_is_most_recent_first_ties_by_larger_id():
  history = context.recent_first([(100, b"1"), (200, b"2"), (200, b"3"), (300, b"4")])
  assert history == [b"4", b"3", b"2", b"1"]


def test_the_validation_share_and_the_order_follow_the_seed():
  pairs = [(str(u).encode(), str(m).encode()) for u in range(100) for m in range(100)]
  held_out = [context.is_validation(u, m, 0.2, seed=1) for u, m in pairs]
  assert 0.18 < sum(held_out) / len(pairs) < 0.22
  assert held_out == [context.is_validation(u, m, 0.2, seed=1) for u, m in pairs]
  assert held_out != [context.is_validation(u, m, 0.2, seed=2) for u, m in pairs]
  assert not any(context.is_validation(u, m, 0.0, seed=1) for u, m in pairs)
  order = [context.write_order(u, m, seed=1) for u, m in pairs]
  assert len(set(order)) == len(order) and min(order) >= 0 and max(order) < 1 << 63
  assert order != sorted(order)  # A shuffle, not the input order.


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


def _write_ratings(root, splits, shards=1, seed=0):
  """ExampleGen-like ratings; each split's rows shuffled by `seed` into `shards` files."""
  ratings = standard_artifacts.Examples()
  ratings.uri = os.path.join(root, "ratings")
  ratings.split_names = artifact_utils.encode_split_names(list(splits))
  for split, rows in splits.items():
    split_dir = artifact_utils.get_split_uri([ratings], split)
    os.makedirs(split_dir)
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    for shard in range(shards):
      with tf.io.TFRecordWriter(os.path.join(split_dir, f"data-{shard}.gz"),
                                options="GZIP") as writer:
        for row in rows[shard::shards]:
          writer.write(_example(*row).SerializeToString())
  return ratings


def _run(root, ratings, max_context=MAX_CONTEXT, fraction=FRACTION):
  output, histories = standard_artifacts.Examples(), standard_artifacts.Examples()
  output.uri = os.path.join(root, "split")
  histories.uri = os.path.join(root, "histories")
  executor.Executor().Do({executor.EXAMPLES_KEY: [ratings]},
                         {executor.OUTPUT_KEY: [output], executor.HISTORIES_KEY: [histories]},
                         {"max_context": max_context, "validation_fraction": fraction,
                          "validation_seed": SEED})
  return output, histories


def _files(artifact, split):
  return sorted(glob.glob(os.path.join(artifact_utils.get_split_uri([artifact], split), "*")))


def _read(artifact, split):
  return [tf.train.Example.FromString(record.numpy()) for record in
          tf.data.TFRecordDataset(_files(artifact, split), compression_type="GZIP")]


def _value(example, name):
  feature = example.features.feature[name]
  return list(feature.bytes_list.value or feature.int64_list.value or feature.float_list.value)


def _pair(example):
  return (_value(example, features.USER_ID)[0].decode(),
          _value(example, features.MOVIE_ID)[0].decode())


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("user_context"))
  ratings = _write_ratings(root, {artifacts.TRAIN_SPLIT: TRAIN, artifacts.EVAL_SPLIT: EVAL})
  return _run(root, ratings)


def test_every_rating_is_written_once_unchanged_train_split_by_the_hash(outputs):
  split, _ = outputs
  assert artifact_utils.decode_split_names(split.split_names) == [
      artifacts.TRAIN_SPLIT, artifacts.VALIDATION_SPLIT, artifacts.EVAL_SPLIT]
  written = {name: _read(split, name) for name in executor.SPLITS}
  for examples in written.values():
    for example in examples:
      user, movie = _pair(example)
      timestamp = _value(example, features.TIMESTAMP)[0]
      original = _example(user, movie, timestamp)
      assert example == original  # Every feature as it was; no context added.
  pairs = {name: sorted(_pair(e) for e in examples) for name, examples in written.items()}
  expected_validation = sorted((u, m) for u, m, _ in TRAIN if context.is_validation(
      u.encode(), m.encode(), FRACTION, SEED))
  assert pairs[artifacts.VALIDATION_SPLIT] == expected_validation
  assert 0 < len(expected_validation) < len(TRAIN)
  assert sorted(pairs[artifacts.TRAIN_SPLIT] + pairs[artifacts.VALIDATION_SPLIT]) == sorted(
      (u, m) for u, m, _ in TRAIN)
  assert pairs[artifacts.EVAL_SPLIT] == sorted((u, m) for u, m, _ in EVAL)
  # Written in the seeded hash order.
  keys = [context.write_order(u.encode(), m.encode(), SEED)
          for u, m in map(_pair, written[artifacts.TRAIN_SPLIT])]
  assert keys == sorted(keys)


def test_each_user_gets_its_whole_and_its_fitted_history(outputs):
  _, histories = outputs
  assert artifact_utils.decode_split_names(histories.split_names) == [artifacts.USERS_SPLIT]
  rows = {_value(e, features.USER_ID)[0].decode(): e for e in _read(histories,
                                                                    artifacts.USERS_SPLIT)}
  assert sorted(rows) == ["10", "7", "8"]  # 9 rated only in eval: no history.
  for user in rows:
    train = [(t, m.encode()) for u, m, t in TRAIN if u == user]
    fitted = [(t, m) for t, m in train
              if not context.is_validation(user.encode(), m, FRACTION, SEED)]
    assert _value(rows[user], features.HISTORY_MOVIE_IDS) == context.recent_first(
        train)[:MAX_CONTEXT]
    # One more than max_context: a rating's context drops its own movie.
    assert _value(rows[user], features.FITTED_HISTORY_MOVIE_IDS) == context.recent_first(
        fitted)[:MAX_CONTEXT + 1]
  # Ties in time: the larger id first.
  assert _value(rows["7"], features.HISTORY_MOVIE_IDS) == [b"4", b"3", b"2"]


def test_the_written_bytes_do_not_depend_on_the_input_order(outputs, tmp_path):
  reshuffled = _write_ratings(str(tmp_path), {artifacts.TRAIN_SPLIT: TRAIN,
                                              artifacts.EVAL_SPLIT: EVAL}, shards=3, seed=5)
  again = _run(str(tmp_path), reshuffled)
  for first, second, splits in zip(outputs, again, (executor.SPLITS, [artifacts.USERS_SPLIT])):
    for split in splits:
      contents = lambda artifact: [open(f, "rb").read() for f in _files(artifact, split)]
      assert contents(first) == contents(second), split


def test_no_validation_leaves_an_empty_validation_split(tmp_path):
  ratings = _write_ratings(str(tmp_path), {artifacts.TRAIN_SPLIT: TRAIN,
                                           artifacts.EVAL_SPLIT: EVAL})
  split, _ = _run(str(tmp_path), ratings, fraction=0.0)
  assert _files(split, artifacts.VALIDATION_SPLIT)  # Readers find the split,
  assert not _read(split, artifacts.VALIDATION_SPLIT)  # and it is empty.
  assert len(_read(split, artifacts.TRAIN_SPLIT)) == len(TRAIN)


def test_executor_rejects_bad_inputs(tmp_path):
  only_train = _write_ratings(str(tmp_path / "a"), {artifacts.TRAIN_SPLIT: TRAIN})
  with pytest.raises(ValueError, match="missing"):
    _run(str(tmp_path / "a"), only_train)
  with pytest.raises(ValueError, match="max_context"):
    _run(str(tmp_path / "b"), only_train, max_context=0)
  with_context = standard_artifacts.Examples()
  with_context.uri = str(tmp_path / "c")
  with_context.split_names = artifact_utils.encode_split_names(list(executor.INPUT_SPLITS))
  for split in executor.INPUT_SPLITS:
    split_dir = artifact_utils.get_split_uri([with_context], split)
    os.makedirs(split_dir)
    example = _example("1", "2", 3)
    example.features.feature[features.CONTEXT_MOVIE_IDS].bytes_list.value.append(b"4")
    with tf.io.TFRecordWriter(os.path.join(split_dir, "data.gz"), options="GZIP") as writer:
      writer.write(example.SerializeToString())
  with pytest.raises(Exception, match="already have"):
    _run(str(tmp_path / "d"), with_context)
