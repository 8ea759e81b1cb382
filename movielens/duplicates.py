"""A (user, movie) pair rated more than once: the policy, and how to apply it in parts.

Policy: a pair's latest rating (the largest timestamp) is kept; on equal timestamps, the
one later in the file. Ids are text as written, as everywhere else (the catalog, the
vocabularies, serving): movie "0001" is not movie "1", nor user "005" user "5". Every other rating of the pair is dropped, and counted. A user who
re-rates a movie changed their mind; training on both ratings would count the pair twice.

The ratings arrive in batches that may be processed on different workers, so duplicates
can sit in different batches. The policy is applied in two passes, in memory that stays
small whatever the data size:

  1. `pair_keys` turns each rating's (user, movie) into one uint64; `repeated_keys` finds
     the keys seen more than once over all batches (8 bytes a rating, sorted in place:
     200 MB for ml-25m's 25M ratings, for a few seconds).
  2. `candidates` takes, from each batch, the few ratings whose key is repeated, with
     their exact ids, timestamp and position; `positions_to_drop` groups all of them by
     exact (user, movie), so that keys that collide (padded ids such as "1" and "0001"
     share one) cannot merge two pairs, and says which positions of which batch to drop.
     A decimal id's text is exactly its value and its number of digits, so the exact ids
     are held as those two numbers.

Positions are (batch index, row in batch), with batches numbered in file order, so "later
in the file" is "larger position".
"""
from typing import Dict, Iterable, Sequence

import numpy as np

# One candidate rating: its exact pair, its time and its position.
# An id is (value, digits): "0001" is (1, 4), "1" is (1, 1).
CANDIDATE_DTYPE = np.dtype([("user", np.int64), ("user_digits", np.int8),
                            ("movie", np.int64), ("movie_digits", np.int8),
                            ("timestamp", np.int64), ("batch", np.int64),
                            ("row", np.int64)])


def pair_keys(user_ids: Sequence[str], movie_ids: Sequence[str]) -> np.ndarray:
  """One uint64 key per (user, movie): equal pairs give equal keys.

  Keys read ids as integers, so "1" and "0001" share a key: `positions_to_drop`, which
  compares the ids as written, tells them apart.

  Args:
    user_ids: Decimal user ids (the readers guarantee at most 18 digits).
    movie_ids: Decimal movie ids, same length.

  Returns:
    `user << 32 ^ movie`: exactly the pair's values for ids below 2**32 (every
    GroupLens data set), a hash above, where `positions_to_drop` checks the exact ids.
  """
  users = np.asarray(user_ids, dtype=np.int64).astype(np.uint64)
  movies = np.asarray(movie_ids, dtype=np.int64).astype(np.uint64)
  return (users << np.uint64(32)) ^ movies


def repeated_keys(keys: Iterable[np.ndarray]) -> np.ndarray:
  """The keys that occur more than once over all of `keys`, sorted, each once."""
  arrays = list(keys)
  if not arrays:
    return np.zeros([0], np.uint64)
  every = np.concatenate(arrays)
  del arrays
  every.sort()
  repeated = every[1:][every[1:] == every[:-1]]
  return np.unique(repeated)


def candidates(keys: np.ndarray, repeated: np.ndarray, user_ids: Sequence[str],
               movie_ids: Sequence[str], timestamps: np.ndarray,
               batch_index: int) -> np.ndarray:
  """The ratings of one batch whose key is repeated, as CANDIDATE_DTYPE records.

  Args:
    keys: `pair_keys` of the batch.
    repeated: `repeated_keys` over every batch.
    user_ids: The batch's user ids.
    movie_ids: The batch's movie ids.
    timestamps: The batch's timestamps.
    batch_index: The batch's position in the file's batch order.
  """
  where = np.searchsorted(repeated, keys)
  hit = where < len(repeated)
  hit[hit] = repeated[where[hit]] == keys[hit]
  rows = np.flatnonzero(hit)
  found = np.empty(len(rows), CANDIDATE_DTYPE)
  found["user"] = np.asarray([user_ids[i] for i in rows], dtype=np.int64)
  found["user_digits"] = [len(user_ids[i]) for i in rows]
  found["movie"] = np.asarray([movie_ids[i] for i in rows], dtype=np.int64)
  found["movie_digits"] = [len(movie_ids[i]) for i in rows]
  found["timestamp"] = np.asarray(timestamps)[rows]
  found["batch"] = batch_index
  found["row"] = rows
  return found


def positions_to_drop(found: Iterable[np.ndarray]) -> Dict[int, np.ndarray]:
  """Applies the policy to every candidate of every batch.

  Args:
    found: `candidates` of the batches (any order, any grouping).

  Returns:
    Batch index -> sorted rows of that batch to drop; only batches with some. The number
    of rows in all is the number of duplicate ratings.
  """
  arrays = list(found)
  if not arrays:
    return {}
  every = np.concatenate(arrays)
  # By pair, then by time and file position: each pair's last record is the one kept.
  pair = ("user", "user_digits", "movie", "movie_digits")
  order = np.lexsort((every["row"], every["batch"], every["timestamp"])
                     + tuple(every[field] for field in reversed(pair)))
  every = every[order]
  same_pair_as_next = np.ones(max(len(every) - 1, 0), bool)
  for field in pair:
    same_pair_as_next &= every[field][:-1] == every[field][1:]
  dropped = every[:-1][same_pair_as_next]
  result = {}
  for batch in np.unique(dropped["batch"]):
    result[int(batch)] = np.sort(dropped["row"][dropped["batch"] == batch])
  return result


def count(to_drop: Dict[int, np.ndarray]) -> int:
  """Number of duplicate ratings in a `positions_to_drop` result."""
  return int(sum(len(rows) for rows in to_drop.values()))
