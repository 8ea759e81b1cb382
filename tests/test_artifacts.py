"""contracts/artifacts.py: the query-time rule the Trainer's validation and the Evaluator share."""
import numpy as np
import pytest

from ranking_core import query_time
from ranking_core import scores as scores_lib


def test_query_time_row_is_each_users_lower_median_time():
  users = np.array([0, 0, 0, 1, 1, 2, 1, 1])
  times = np.array([30, 10, 20, 7, 5, 9, 8, 6])
  rows = query_time.query_time_rows(users, times)
  # User 0: times 10, 20, 30 -> 20 (row 2). User 1: 5, 6, 7, 8 -> the lower middle, 6
  # (row 7). User 2: its only row.
  np.testing.assert_array_equal(rows, [2, 7, 5])


def test_query_time_ties_are_ordered_by_row():
  # User 1's three rows share a time: the middle one by row order (row 2) is chosen.
  rows = query_time.query_time_rows(np.array([1, 0, 1, 1]), np.array([4, 3, 4, 4]))
  np.testing.assert_array_equal(rows, [1, 2])


def test_a_user_position_without_ratings_is_an_error():
  with pytest.raises(ValueError, match=r"User positions \[1\] have no held-out ratings"):
    query_time.query_time_rows(np.array([0, 2]), np.array([1, 2]))


def test_ranked_order_key_blends_the_standardized_score_and_rating():
  scores = np.array([[3.0, 2.0, 1.0], [5.0, 5.0, 5.0]])
  ratings = np.array([[1.0, 2.0, 4.0], [1.0, 3.0, 2.0]])
  # Weight 1: by rating alone; 0: by retrieval score alone.
  assert np.argsort(-scores_lib.ranked_order_key(scores, ratings, 1.0)[0]).tolist() == [2, 1, 0]
  assert np.argsort(-scores_lib.ranked_order_key(scores, ratings, 0.0)[0]).tolist() == [0, 1, 2]
  # Each part standardized over its row: z(scores) = (1.22, 0, -1.22), z(ratings) =
  # (-1.07, -0.27, 1.34) -> at 0.25: (0.65, -0.07, -0.58).
  key = scores_lib.ranked_order_key(scores, ratings, 0.25)
  z = lambda x: (x - x.mean()) / x.std()
  np.testing.assert_allclose(key[0], 0.75 * z(scores[0]) + 0.25 * z(ratings[0]), rtol=1e-5)
  assert np.argsort(-key[0]).tolist() == [0, 1, 2]
  # Equal retrieval scores stay finite and leave the order to the rating.
  assert np.isfinite(key[1]).all()
  assert np.argsort(-key[1]).tolist() == [1, 2, 0]
