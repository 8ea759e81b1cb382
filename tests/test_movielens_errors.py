"""Tests of movielens.errors: line errors and the bad-line tolerance."""
from typing import List

import pytest

from movielens import errors


def _errors(n: int) -> List[errors.LineError]:
  return [errors.LineError("/d/ml-1m/ratings.dat", i + 1, f"reason {i}") for i in range(n)]


def test_line_error_str():
  error = errors.LineError("/d/ml-1m.zip!ml-1m/ratings.dat", 7,
                            "rating 7.0 outside 0.5..5")
  assert str(error) == "/d/ml-1m.zip!ml-1m/ratings.dat:7: rating 7.0 outside 0.5..5"


def test_line_error_log_counts_all_and_keeps_the_first():
  log = errors.LineErrorLog(keep=3)
  log.extend(_errors(4))
  log.add(errors.LineError("/x", 9, "late"))

  assert log.count == 5
  assert log.examples == _errors(3)
  log.examples.clear()  # A copy: callers cannot change the log.
  assert len(log.examples) == 3


def test_line_error_log_default_keeps_20():
  log = errors.LineErrorLog()
  log.extend(_errors(25))
  assert (log.count, len(log.examples)) == (25, 20)


@pytest.mark.parametrize("count, tolerance", [(0, 0), (3, 3), (3, 10)])
def test_raise_if_over_accepts_up_to_the_tolerance(count, tolerance):
  log = errors.LineErrorLog()
  log.extend(_errors(count))
  log.raise_if_over(tolerance, "ratings")  # Does not raise.


def test_raise_if_over_message():
  log = errors.LineErrorLog(keep=2)
  log.extend(_errors(3))

  with pytest.raises(errors.MalformedDataError) as error:
    log.raise_if_over(2, "ratings")

  assert str(error.value) == (
      "3 malformed lines in ratings, more than the tolerance of 2 (--max_bad_lines). "
      "The first 2:\n"
      "  /d/ml-1m/ratings.dat:1: reason 0\n"
      "  /d/ml-1m/ratings.dat:2: reason 1\n"
      "Fix the data, or accept and skip these lines with --max_bad_lines=3 or more.")


def test_raise_if_over_lists_all_when_all_are_kept():
  log = errors.LineErrorLog()
  log.extend(_errors(1))
  with pytest.raises(errors.MalformedDataError,
                     match=r"1 malformed lines in movies, more than the tolerance of 0 "
                     r"\(--max_bad_lines\)\. All of them:\n  /d/ml-1m/ratings.dat:1: "):
    log.raise_if_over(0, "movies")
