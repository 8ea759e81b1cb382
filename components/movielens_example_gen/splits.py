"""Reproducible train/eval split assignment for MovieLens ratings.

Both methods are pure functions of the data (and a seed), so a re-run of ExampleGen on the
same files writes identical splits, whatever runner executes it.
"""
from typing import Sequence

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
  """The splitmix64 finalizer: a fast, well-mixed, platform-independent uint64 hash."""
  x = x.astype(np.uint64, copy=True)
  with np.errstate(over="ignore"):
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
  return x & _MASK64


def random_eval_mask(user_ids: Sequence[str], movie_ids: Sequence[str],
                     eval_fraction: float, seed: int) -> np.ndarray:
  """Marks ratings for the eval split by a deterministic hash of (user, movie, seed).

  The hash, not a random generator, decides, so the assignment of a rating does not depend
  on file order, batching or sharding: the same (user, movie) pair always lands in the same
  split for a given seed. About `eval_fraction` of ratings go to eval, as in the TFRS
  tutorials' random 80/20 protocol.

  Args:
    user_ids: Decimal user ids (MovieLens ids are integers).
    movie_ids: Decimal movie ids, same length.
    eval_fraction: Fraction of ratings for eval, in (0, 1).
    seed: Changes the assignment.

  Returns:
    Boolean array, True where the rating belongs to eval.
  """
  users = np.asarray(user_ids, dtype=np.int64).astype(np.uint64)
  movies = np.asarray(movie_ids, dtype=np.int64).astype(np.uint64)
  with np.errstate(over="ignore"):
    key = _splitmix64(users ^ _splitmix64(np.full_like(users, seed)))
    key = _splitmix64(key ^ movies)
  # The top 53 bits as a uniform double in [0, 1).
  unit = (key >> np.uint64(11)).astype(np.float64) / float(1 << 53)
  return unit < eval_fraction


def temporal_cutoff(timestamps: np.ndarray, eval_fraction: float) -> int:
  """Global time cutoff: ratings at or after it (the latest `eval_fraction`) go to eval.

  Args:
    timestamps: Every rating's timestamp (seconds).
    eval_fraction: Fraction of ratings, by time quantile, for eval.

  Returns:
    The cutoff timestamp, the (1 - eval_fraction) quantile. Ties at the cutoff go to eval,
    so no rating in eval is older than any rating in train.
  """
  if len(timestamps) == 0:
    raise ValueError("No ratings to split.")
  return int(np.quantile(timestamps, 1.0 - eval_fraction, method="higher"))


def temporal_eval_mask(timestamps: np.ndarray, cutoff: int) -> np.ndarray:
  """True where a rating is at or after the temporal `cutoff`."""
  return np.asarray(timestamps) >= cutoff
