"""Full-catalog retrieval metrics, in numpy.

Users are rows of a query table and movies are columns 0..M-1 of the catalog. A scoring
function gives each user a score for every movie; these metrics rank the whole catalog
for every eval user, in batches of users, so memory stays at a few [batch, M] arrays
even for 162k users x 62k movies (ml-25m).

Ranking rules, the same for every metric:
  * Higher score ranks first; equal scores rank the lower movie column first, so results
    never depend on batching or on numpy's partition algorithm.
  * "With exclusion" metrics score the movies a user rated in TRAIN as -inf: recommending
    an already-seen movie is not retrieval. A -inf movie never counts as retrieved, even
    when fewer than k movies are left to rank.
  * Eval (user, movie) pairs are de-duplicated. An eval pair whose movie the user also
    rated in train stays in the denominators but cannot be a hit with exclusion.
"""
from typing import Callable, Dict, Sequence, Tuple

import numpy as np

# Fixed depths of the ranking-quality and diversity metrics.
NDCG_K = 10
COVERAGE_K = 10

ScoreFn = Callable[[np.ndarray], np.ndarray]


def popularity_scores(train_movies: np.ndarray, num_movies: int) -> np.ndarray:
  """Number of train ratings of each movie column, as float32 scores [num_movies].

  float32 holds counts exactly up to 2**24 ratings of one movie, far above MovieLens
  (ml-25m's most rated movie has ~80k), and halves the ranking's memory traffic.
  """
  train_movies = _as_index_array(train_movies, "train_movies")
  _check_range(train_movies, num_movies, "train_movies")
  return np.bincount(train_movies, minlength=num_movies).astype(np.float32)


def metric_names(ks: Sequence[int]) -> Tuple[str, ...]:
  """Names of the metrics `evaluate_retrieval` returns, in its order."""
  ks = _validate_ks(ks)
  return (tuple(f"hit_rate@{k}" for k in ks) + tuple(f"recall@{k}" for k in ks)
          + (f"ndcg@{NDCG_K}",) + tuple(f"top_k_accuracy@{k}" for k in ks)
          + (f"coverage@{COVERAGE_K}", "num_eval_users", "num_eval_pairs"))


def evaluate_retrieval(score_fn: ScoreFn, num_movies: int,
                       eval_users: np.ndarray, eval_movies: np.ndarray,
                       train_users: np.ndarray, train_movies: np.ndarray,
                       ks: Sequence[int] = (10, 50, 100),
                       batch_size: int = 1024) -> Dict[str, float]:
  """Ranks the whole catalog for every eval user and scores the ranking.

  Args:
    score_fn: Maps user rows (int array [B]) to scores (float array [B, num_movies]).
    num_movies: Catalog size M; movie columns are 0..M-1.
    eval_users: User row of each eval pair (int array [N]).
    eval_movies: Movie column of each eval pair (int array [N]).
    train_users: User row of each train pair; only eval users' rows matter.
    train_movies: Movie column of each train pair.
    ks: Cutoffs of hit_rate, recall and top_k_accuracy (a k above M ranks all movies).
    batch_size: Users scored and ranked at once; the results do not depend on it.

  Returns:
    `hit_rate@k`: fraction of eval pairs whose movie is in the user's top k, train
      movies excluded. `recall@k`: per user, eval movies in top k / eval movies, train
      movies excluded, averaged over eval users. `ndcg@10`: binary-relevance NDCG,
      IDCG over min(#eval movies, 10), train movies excluded, averaged over eval users.
    `top_k_accuracy@k`: hit_rate@k without the exclusion (what TFRS FactorizedTopK
      reports). `coverage@10`: fraction of the catalog in at least one eval user's
      top 10, train movies excluded. `num_eval_users`, `num_eval_pairs` (distinct).

  Raises:
    ValueError: Misaligned or out-of-range inputs, no eval pairs, bad `ks` or
      `batch_size`, or `score_fn` returning a wrong shape or NaN.
  """
  ks = _validate_ks(ks)
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
  eval_pairs = _Pairs(*_pair_arrays(eval_users, eval_movies, num_movies, "eval"))
  train_pairs = _Pairs(*_pair_arrays(train_users, train_movies, num_movies, "train"))
  if not len(eval_pairs):
    raise ValueError("There are no eval pairs to evaluate.")
  depth = min(num_movies, max(max(ks), NDCG_K, COVERAGE_K))
  totals = _Totals(ks, num_movies)
  users = eval_pairs.unique_users
  for start in range(0, len(users), batch_size):
    batch = users[start:start + batch_size]
    scores = _checked_scores(score_fn, batch, num_movies)
    relevant = np.zeros(scores.shape, bool)
    relevant[eval_pairs.rows_of(batch)] = True
    totals.add_unexcluded(relevant, *_top_k(scores, depth))
    train_rows = train_pairs.rows_of(batch)
    if len(train_rows[0]):
      scores[train_rows] = -np.inf
    totals.add_excluded(relevant, *_top_k(scores, depth))
  return totals.result(num_users=len(users), num_pairs=len(eval_pairs))


class _Pairs:
  """(user, movie) pairs sorted by user, to fetch a batch of users' pairs quickly."""

  def __init__(self, users: np.ndarray, movies: np.ndarray):
    order = np.lexsort((movies, users))
    self._users = users[order]
    self._movies = movies[order]
    self.unique_users = np.unique(self._users)

  def __len__(self) -> int:
    return len(self._users)

  def rows_of(self, batch_users: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(position in `batch_users`, movie) of every pair of those users; for fancy indexing."""
    starts = np.searchsorted(self._users, batch_users, "left")
    lengths = np.searchsorted(self._users, batch_users, "right") - starts
    positions = np.repeat(np.arange(len(batch_users)), lengths)
    # Index of the j-th output element: its group's start + its offset inside the group.
    group_offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return positions, self._movies[group_offsets + np.arange(lengths.sum())]


class _Totals:
  """Running sums of the per-user metric terms over batches."""

  def __init__(self, ks: Sequence[int], num_movies: int):
    self._ks = ks
    self._hits = {k: 0 for k in ks}  # Eval pairs retrieved, with exclusion.
    self._recall = {k: 0.0 for k in ks}
    self._unexcluded_hits = {k: 0 for k in ks}
    self._ndcg = 0.0
    self._covered = np.zeros([num_movies], bool)
    self._discounts = 1.0 / np.log2(np.arange(2, NDCG_K + 2))  # Rank r: 1/log2(r + 1).
    self._ideal_dcg = np.cumsum(self._discounts)  # [n - 1]: n relevant movies on top.

  def add_unexcluded(self, relevant: np.ndarray, columns: np.ndarray,
                     valid: np.ndarray) -> None:
    hits_at = _cumulative_hits(relevant, columns, valid)
    for k in self._ks:
      self._unexcluded_hits[k] += int(hits_at(k).sum())

  def add_excluded(self, relevant: np.ndarray, columns: np.ndarray,
                   valid: np.ndarray) -> None:
    num_relevant = relevant.sum(axis=1)
    hits_at = _cumulative_hits(relevant, columns, valid)
    for k in self._ks:
      self._hits[k] += int(hits_at(k).sum())
      self._recall[k] += float((hits_at(k) / num_relevant).sum())
    is_hit = relevant[np.arange(len(columns))[:, None], columns[:, :NDCG_K]] & valid[:, :NDCG_K]
    dcg = is_hit.astype(np.float64) @ self._discounts[:is_hit.shape[1]]
    ideal = self._ideal_dcg[np.minimum(num_relevant, NDCG_K) - 1]
    self._ndcg += float((dcg / ideal).sum())
    self._covered[columns[:, :COVERAGE_K][valid[:, :COVERAGE_K]]] = True

  def result(self, num_users: int, num_pairs: int) -> Dict[str, float]:
    values = {}
    values.update({f"hit_rate@{k}": self._hits[k] / num_pairs for k in self._ks})
    values.update({f"recall@{k}": self._recall[k] / num_users for k in self._ks})
    values[f"ndcg@{NDCG_K}"] = self._ndcg / num_users
    values.update({f"top_k_accuracy@{k}": self._unexcluded_hits[k] / num_pairs
                   for k in self._ks})
    values[f"coverage@{COVERAGE_K}"] = float(self._covered.mean())
    values["num_eval_users"] = num_users
    values["num_eval_pairs"] = num_pairs
    return values


def _cumulative_hits(relevant: np.ndarray, columns: np.ndarray,
                     valid: np.ndarray) -> Callable[[int], np.ndarray]:
  """Returns k -> relevant movies per user among the top k ([B] ints)."""
  is_hit = relevant[np.arange(len(columns))[:, None], columns] & valid
  cumulative = np.cumsum(is_hit, axis=1)
  return lambda k: cumulative[:, min(k, cumulative.shape[1]) - 1]


def _top_k(scores: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
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


def _checked_scores(score_fn: ScoreFn, users: np.ndarray, num_movies: int) -> np.ndarray:
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


def _validate_ks(ks: Sequence[int]) -> Tuple[int, ...]:
  if not ks or any(int(k) != k or k < 1 for k in ks):
    raise ValueError(f"ks must be positive integers, got {list(ks)}.")
  return tuple(sorted({int(k) for k in ks}))
