"""Ranking the whole catalog for a set of users, train movies excluded.

Users are rows of a query table and movies are columns 0..M-1 of the catalog. A score
function (`scores.ScoreFn`) gives each user a score for every movie; `rank` ranks the
whole catalog for every user that has held-out pairs, in batches of users, so memory
stays at a few [batch, M] arrays even for 162k users x 62k movies (ml-25m). It keeps,
for each held-out (user, movie) pair, the rank its movie got, and optionally each user's
top slots: every metric is then a cheap reduction of those. The Evaluator's metrics
(components/retrieval_evaluator/metrics.py) and the Trainer's validation hit rate
(trainer_module/validation.py) both reduce these rankings.

Ranking rules:
  * Higher score ranks first; equal scores rank the lower movie column first, so results
    never depend on batching or on numpy's partition algorithm.
  * Movies a user rated in train score -inf ("with exclusion"): recommending an
    already-seen movie is not retrieval. A -inf movie never counts as retrieved, even
    when fewer than k movies are left to rank.
  * Held-out (user, movie) pairs are de-duplicated. A pair whose movie the user also
    rated in train stays in the denominators but cannot be a hit with exclusion.
"""
import dataclasses
from typing import Optional, Tuple

import numpy as np

from ranking_core import scores as scores_lib

# Rank of a pair whose movie is not among the ranked top `depth` (or was excluded).
NOT_RANKED = np.iinfo(np.int32).max
# Marks an empty recommended slot (every remaining movie scored -inf).
EMPTY_SLOT = -1


@dataclasses.dataclass(frozen=True)
class Rankings:
  """Where each held-out pair's movie ranked for its user, and every user's top slots.

  Attributes:
    num_movies: Catalog size M.
    users: User rows with held-out pairs [U], ascending.
    pair_users: Position in `users` of each distinct pair's user [N], ascending.
    pair_movies: Movie column of each pair [N].
    ranks: 0-based rank of the pair's movie with train movies excluded [N];
      NOT_RANKED when it is beyond the ranked depth or excluded.
    unexcluded_ranks: The same without the exclusion [N] (all NOT_RANKED when `rank`
      was asked not to compute them).
    top_movies: Each user's best movies with exclusion, best first [U, slots];
      EMPTY_SLOT where fewer movies could be ranked.
    depth: How many movies were ranked per user; ranks below it are exact.
  """
  num_movies: int
  users: np.ndarray
  pair_users: np.ndarray
  pair_movies: np.ndarray
  ranks: np.ndarray
  unexcluded_ranks: np.ndarray
  top_movies: np.ndarray
  depth: int

  def pairs_of(self, user_mask: Optional[np.ndarray]) -> np.ndarray:
    """Bool [N]: the pairs of the users selected by a bool [U] mask (None: all)."""
    if user_mask is None:
      return np.ones(len(self.ranks), bool)
    return np.asarray(user_mask, bool)[self.pair_users]

  def hits(self, k: int) -> np.ndarray:
    """Bool [N]: whether each pair's movie ranked in its user's top k, train movies
    excluded."""
    if k > self.depth and self.depth < self.num_movies:
      raise ValueError(f"k = {k} is deeper than the ranking ({self.depth} movies per "
                       "user); rank with a larger depth.")
    return self.ranks < k


def rank(score_fn: scores_lib.ScoreFn, num_movies: int, eval_users: np.ndarray,
         eval_movies: np.ndarray, train_users: np.ndarray, train_movies: np.ndarray,
         depth: int, slots: int = 0, batch_size: int = 1024,
         unexcluded: bool = True) -> Rankings:
  """Ranks the whole catalog for every user with held-out pairs, with and without train
  exclusion.

  Args:
    score_fn: Maps user rows (int array [B]) to scores (float array [B, num_movies]).
    num_movies: Catalog size M; movie columns are 0..M-1.
    eval_users: User row of each held-out pair (int array [N]).
    eval_movies: Movie column of each held-out pair (int array [N]).
    train_users: User row of each train pair; only the held-out users' rows matter.
    train_movies: Movie column of each train pair.
    depth: Rank exactly the top `depth` movies per user (at least `slots`; at most the
      catalog). Metrics at k <= depth are exact.
    slots: How many of each user's best movies to keep in `Rankings.top_movies`.
    batch_size: Users scored and ranked at once; the results do not depend on it.
    unexcluded: Also rank without the exclusion (`Rankings.unexcluded_ranks`).

  Returns:
    The ranks of every distinct held-out pair and each user's top slots.

  Raises:
    ValueError: Misaligned or out-of-range inputs, no held-out pairs, a bad `depth` or
      `batch_size`, or `score_fn` returning a wrong shape or NaN.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
  if depth < 1:
    raise ValueError(f"depth must be >= 1, got {depth}.")
  eval_pairs = _Pairs(*_pair_arrays(eval_users, eval_movies, num_movies, "eval"))
  train_pairs = _Pairs(*_pair_arrays(train_users, train_movies, num_movies, "train"))
  if not len(eval_pairs):
    raise ValueError("There are no eval pairs to evaluate.")
  depth = min(num_movies, max(depth, slots))
  users = eval_pairs.unique_users
  ranks = np.full(len(eval_pairs), NOT_RANKED, np.int32)
  unexcluded_ranks = np.full(len(eval_pairs), NOT_RANKED, np.int32)
  top_movies = np.full([len(users), slots], EMPTY_SLOT, np.int64)
  for start in range(0, len(users), batch_size):
    batch = users[start:start + batch_size]
    scores = _checked_scores(score_fn, batch, num_movies)
    pairs = eval_pairs.range_of(batch)
    keys = eval_pairs.keys_in(pairs, start, num_movies)
    if unexcluded:
      _record_ranks(unexcluded_ranks, pairs, keys, *top_k(scores, depth), num_movies)
    train_rows = train_pairs.rows_of(batch)
    if len(train_rows[0]):
      scores[train_rows] = -np.inf
    columns, valid = top_k(scores, depth)
    _record_ranks(ranks, pairs, keys, columns, valid, num_movies)
    kept = columns[:, :slots]
    top_movies[start:start + len(batch), :kept.shape[1]] = np.where(
        valid[:, :slots], kept, EMPTY_SLOT)
  return Rankings(num_movies=num_movies, users=users,
                  pair_users=np.searchsorted(users, eval_pairs.users),
                  pair_movies=eval_pairs.movies, ranks=ranks,
                  unexcluded_ranks=unexcluded_ranks, top_movies=top_movies, depth=depth)


def _record_ranks(ranks: np.ndarray, pairs: slice, keys: np.ndarray, columns: np.ndarray,
                  valid: np.ndarray, num_movies: int) -> None:
  """Writes the rank of every batch pair found in the ranked columns into `ranks`.

  `keys` are the batch's pairs as (position in batch) * M + movie, ascending; a ranked
  slot (b, r) holding movie m is pair key b * M + m, found by binary search.
  """
  if not len(keys):
    return
  slot_keys = np.arange(len(columns))[:, None] * num_movies + columns
  found = np.minimum(np.searchsorted(keys, slot_keys), len(keys) - 1)
  is_pair = (keys[found] == slot_keys) & valid
  rows, slot_ranks = np.nonzero(is_pair)
  ranks[pairs.start + found[rows, slot_ranks]] = slot_ranks


class _Pairs:
  """(user, movie) pairs sorted by user then movie, to fetch a batch's pairs quickly."""

  def __init__(self, users: np.ndarray, movies: np.ndarray):
    order = np.lexsort((movies, users))
    self.users = users[order]
    self.movies = movies[order]
    self.unique_users = np.unique(self.users)

  def __len__(self) -> int:
    return len(self.users)

  def range_of(self, batch_users: np.ndarray) -> slice:
    """The pairs of a run of consecutive `unique_users`, as a slice of the sorted pairs."""
    return slice(int(np.searchsorted(self.users, batch_users[0], "left")),
                 int(np.searchsorted(self.users, batch_users[-1], "right")))

  def keys_in(self, pairs: slice, start: int, num_movies: int) -> np.ndarray:
    """Keys (user's position in its batch) * M + movie of `pairs`, ascending."""
    positions = np.searchsorted(self.unique_users, self.users[pairs]) - start
    return positions * num_movies + self.movies[pairs]

  def rows_of(self, batch_users: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(position in `batch_users`, movie) of every pair of those users; for fancy indexing."""
    starts = np.searchsorted(self.users, batch_users, "left")
    lengths = np.searchsorted(self.users, batch_users, "right") - starts
    positions = np.repeat(np.arange(len(batch_users)), lengths)
    # Index of the j-th output element: its group's start + its offset inside the group.
    group_offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return positions, self.movies[group_offsets + np.arange(lengths.sum())]


def top_k(scores: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
  """The k best columns of each row, best first; equal scores: lower column first.

  Args:
    scores: Float [B, M], no NaN; -inf marks movies that cannot be retrieved.
    k: 1 <= k <= M.

  Returns:
    (columns, valid): int [B, k] and bool [B, k]; valid is False for -inf scores.
  """
  num_rows, num_movies = scores.shape
  cost = -scores  # Ascending order of cost = descending score.
  if k < num_movies:
    kth = np.partition(cost, k - 1, axis=1)[:, k - 1]
    chosen = cost <= kth[:, None]
    # Rows with more ties at the k-th score than places left keep the lowest columns;
    # argpartition alone would pick an arbitrary subset of those ties. A loop over rows:
    # only rows with such ties pay, one pass over their cost each.
    excess = chosen.sum(axis=1) - k
    for row in np.flatnonzero(excess > 0):
      tied = np.flatnonzero(cost[row] == kth[row])
      chosen[row, tied[len(tied) - excess[row]:]] = False
    columns = np.nonzero(chosen)[1].reshape(num_rows, k)  # Ascending columns per row.
  else:
    columns = np.tile(np.arange(num_movies), (num_rows, 1))
  # A stable sort of ascending columns by cost puts equal scores in column order.
  order = np.argsort(np.take_along_axis(cost, columns, axis=1), axis=1, kind="stable")
  columns = np.take_along_axis(columns, order, axis=1)
  valid = np.take_along_axis(cost, columns, axis=1) != np.inf
  return columns, valid


def _checked_scores(score_fn: scores_lib.ScoreFn, users: np.ndarray, num_movies: int) -> np.ndarray:
  """score_fn(users) as a writable float array, after checking its shape and values."""
  scores = np.asarray(score_fn(users))
  if scores.shape != (len(users), num_movies):
    raise ValueError(f"score_fn returned shape {scores.shape} for {len(users)} users; "
                     f"expected {(len(users), num_movies)}.")
  # A copy: the exclusion writes -inf into it, and score_fn may return a view.
  scores = np.array(scores, dtype=np.result_type(scores.dtype, np.float32))
  if np.isnan(scores).any():
    bad_users = users[np.isnan(scores).any(axis=1)]
    raise ValueError(f"score_fn returned NaN scores for user rows {bad_users[:10].tolist()}.")
  return scores


def _pair_arrays(users: np.ndarray, movies: np.ndarray, num_movies: int,
                 name: str) -> Tuple[np.ndarray, np.ndarray]:
  """Validated, de-duplicated (users, movies) int64 arrays."""
  users = _as_index_array(users, f"{name}_users")
  movies = _as_index_array(movies, f"{name}_movies")
  if users.shape != movies.shape:
    raise ValueError(f"{name}_users and {name}_movies differ in length: "
                     f"{len(users)} vs {len(movies)}.")
  if len(users) and users.min() < 0:
    raise ValueError(f"{name}_users has negative user rows.")
  _check_range(movies, num_movies, f"{name}_movies")
  keys = np.unique(users * num_movies + movies)
  return keys // num_movies, keys % num_movies


def _as_index_array(values: np.ndarray, name: str) -> np.ndarray:
  values = np.asarray(values)
  if values.ndim != 1 or not (values.size == 0 or np.issubdtype(values.dtype, np.integer)):
    raise ValueError(f"{name} must be a 1-D integer array, got {values.dtype} "
                     f"shape {values.shape}.")
  return values.astype(np.int64)


def _check_range(movies: np.ndarray, num_movies: int, name: str) -> None:
  if num_movies < 1:
    raise ValueError(f"num_movies must be >= 1, got {num_movies}.")
  if len(movies) and (movies.min() < 0 or movies.max() >= num_movies):
    raise ValueError(f"{name} has columns outside [0, {num_movies}).")
