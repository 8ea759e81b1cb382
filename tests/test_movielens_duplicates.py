"""Tests of movielens.duplicates: the latest rating of a (user, movie) pair is kept."""
import numpy as np

from movielens import duplicates
from movielens import readers
from movielens import sources
from tests import movielens_fixtures as fixtures


def _batch(index, rows):
  """(user, movie, timestamp) rows of one batch -> what the two passes need."""
  users = [str(user) for user, _, _ in rows]
  movies = [str(movie) for _, movie, _ in rows]
  timestamps = np.array([timestamp for _, _, timestamp in rows], np.int64)
  return index, users, movies, timestamps


def _positions_to_drop(batches):
  """Both passes, as the ExampleGen executor runs them over batches."""
  keys = [duplicates.pair_keys(users, movies) for _, users, movies, _ in batches]
  repeated = duplicates.repeated_keys(keys)
  found = [duplicates.candidates(batch_keys, repeated, users, movies, timestamps, index)
           for batch_keys, (index, users, movies, timestamps) in zip(keys, batches)]
  return {batch: rows.tolist()
          for batch, rows in duplicates.positions_to_drop(found).items()}


def test_no_duplicates_nothing_to_drop():
  batches = [_batch(0, [(1, 1, 5), (1, 2, 5)]), _batch(1, [(2, 1, 5), (2, 2, 5)])]
  assert _positions_to_drop(batches) == {}
  assert duplicates.count({}) == 0


def test_the_latest_rating_is_kept_across_batches():
  batches = [_batch(0, [(1, 1, 100), (1, 2, 500), (2, 1, 7)]),
             _batch(1, [(3, 3, 1), (1, 1, 200)]),
             _batch(2, [(1, 2, 400), (1, 1, 150)])]
  # (1, 1): 200 (batch 1) is the latest; (1, 2): 500 (batch 0) is.
  to_drop = _positions_to_drop(batches)
  assert to_drop == {0: [0], 2: [0, 1]}
  assert duplicates.count(duplicates.positions_to_drop([])) == 0


def test_equal_timestamps_keep_the_later_line():
  batches = [_batch(0, [(1, 1, 100), (1, 1, 100)]), _batch(1, [(2, 2, 9), (1, 1, 100)])]
  assert _positions_to_drop(batches) == {0: [0, 1]}


def test_colliding_keys_of_different_pairs_are_not_duplicates():
  # Keys are exact below 2**32; above, two pairs may share a key.
  big = 1 << 32
  assert (duplicates.pair_keys(["0"], [str(big)])
          == duplicates.pair_keys(["1"], ["0"])).all()
  batches = [_batch(0, [(0, big, 1)]), _batch(1, [(1, 0, 2)])]
  assert _positions_to_drop(batches) == {}


def test_repeated_keys():
  keys = [np.array([5, 1, 9], np.uint64), np.array([9, 3, 9], np.uint64)]
  assert duplicates.repeated_keys(keys).tolist() == [9]
  assert duplicates.repeated_keys([]).tolist() == []


def test_zero_padded_ids_are_other_ids_as_in_the_catalog():
  # Ids are text as written: movie "0001" is not movie "1", user "005" not user "5".
  batches = [_batch(0, [("5", "1", 100), ("005", "1", 200), ("5", "0001", 300)]),
             _batch(1, [("5", "01", 400), ("5", "1", 50)])]
  # Only ("5", "1") is rated twice: its earlier rating (batch 1, row 1) goes.
  assert _positions_to_drop(batches) == {1: [1]}


def test_padded_ids_read_from_a_file_keep_every_rating(tmp_path):
  folder = fixtures.write_ml100k(tmp_path)
  items = (folder / "u.item").read_bytes()
  first = items.split(b"\n")[0]
  fixtures.write_file(folder / "u.item", items.rstrip(b"\n") + b"\n"
                      + first.replace(b"1|", b"0001|", 1) + b"\n")
  fixtures.write_file(folder / "u.data", b"5\t1\t3\t100\n005\t1\t4\t200\n"
                      b"5\t0001\t5\t300\n5\t1\t2\t400\n")
  source = sources.detect_source(str(folder))
  catalog, log = readers.read_movies(source)
  assert log.count == 0 and {"1", "0001"} <= set(catalog)
  [batch] = readers.iter_rating_batches(source, catalog)
  assert list(zip(batch.user_ids, batch.movie_ids)) == [
      ("5", "1"), ("005", "1"), ("5", "0001"), ("5", "1")]
  keys = duplicates.pair_keys(batch.user_ids, batch.movie_ids)
  found = duplicates.candidates(keys, duplicates.repeated_keys([keys]), batch.user_ids,
                                batch.movie_ids, batch.timestamps, 0)
  # The one true duplicate, ("5", "1"): its earlier rating (row 0) is dropped.
  assert {b: rows.tolist() for b, rows in duplicates.positions_to_drop([found]).items()} == {
      0: [0]}
