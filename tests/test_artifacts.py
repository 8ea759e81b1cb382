"""contracts/artifacts.py: the query-time rule the Trainer's validation and the Evaluator share."""
import numpy as np
import pytest

from contracts import artifacts


def test_query_time_row_is_each_users_lower_median_time():
  users = np.array([0, 0, 0, 1, 1, 2, 1, 1])
  times = np.array([30, 10, 20, 7, 5, 9, 8, 6])
  rows = artifacts.query_time_rows(users, times)
  # User 0: times 10, 20, 30 -> 20 (row 2). User 1: 5, 6, 7, 8 -> the lower middle, 6
  # (row 7). User 2: its only row.
  np.testing.assert_array_equal(rows, [2, 7, 5])


def test_query_time_ties_are_ordered_by_row():
  # User 1's three rows share a time: the middle one by row order (row 2) is chosen.
  rows = artifacts.query_time_rows(np.array([1, 0, 1, 1]), np.array([4, 3, 4, 4]))
  np.testing.assert_array_equal(rows, [1, 2])


def test_a_user_position_without_ratings_is_an_error():
  with pytest.raises(ValueError, match=r"User positions \[1\] have no held-out ratings"):
    artifacts.query_time_rows(np.array([0, 2]), np.array([1, 2]))
