"""Full-catalog retrieval metrics, in numpy: reductions of `ranking_core` rankings.

`rank` ranks the whole catalog for every eval user (ranking_core/rankings.py says how:
ties, exclusion of train movies, de-duplicated pairs, batches of users); every metric, of
all users or of a slice of them, is then a cheap reduction of those ranks (`summarize`,
`curves`). The Trainer's validation hit rate is `summarize`'s hit_rate computed by the
same core on its validation slice.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from components.retrieval_evaluator import metric_names as names
from ranking_core import rankings as rankings_lib
from ranking_core import scores


def evaluate_retrieval(score_fn: scores.ScoreFn, num_movies: int,
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
    See `summarize`.

  Raises:
    ValueError: Misaligned or out-of-range inputs, no eval pairs, bad `ks` or
      `batch_size`, or `score_fn` returning a wrong shape or NaN.
  """
  ks = names.validate_ks(ks)
  rankings = rank(score_fn, num_movies, eval_users, eval_movies, train_users, train_movies,
                  depth=max(ks), batch_size=batch_size)
  return summarize(rankings, ks)


def rank(score_fn: scores.ScoreFn, num_movies: int, eval_users: np.ndarray,
         eval_movies: np.ndarray, train_users: np.ndarray, train_movies: np.ndarray,
         depth: int, batch_size: int = 1024) -> rankings_lib.Rankings:
  """`ranking_core.rankings.rank` for the Evaluator: at least NDCG_K movies ranked per
  user, and SLOTS_K top slots kept (coverage, the report's top lists).

  Args:
    score_fn, num_movies, eval_users, eval_movies, train_users, train_movies,
      batch_size: As in `evaluate_retrieval`.
    depth: Rank exactly the top `depth` movies per user (at least NDCG_K and SLOTS_K
      are always ranked; at most the catalog). Metrics at k <= depth are exact.

  Raises:
    ValueError: As in `evaluate_retrieval`.
  """
  return rankings_lib.rank(score_fn, num_movies, eval_users, eval_movies, train_users,
                           train_movies, depth=max(depth, names.NDCG_K, names.SLOTS_K),
                           slots=names.SLOTS_K, batch_size=batch_size)


def summarize(rankings: rankings_lib.Rankings, ks: Sequence[int],
              user_mask: Optional[np.ndarray] = None) -> Dict[str, float]:
  """The retrieval metrics of all users, or of the users in a bool [U] `user_mask`.

  Returns (names from metric_names.retrieval_names, in that order):
    `hit_rate@k`: fraction of eval pairs whose movie is in the user's top k, train
      movies excluded. `recall@k`: per user, eval movies in top k / eval movies, train
      movies excluded, averaged over eval users. `ndcg@10`: binary-relevance NDCG,
      IDCG over min(#eval movies, 10), train movies excluded, averaged over eval users.
    `top_k_accuracy@k`: hit_rate@k without the exclusion (what TFRS FactorizedTopK
      reports). `coverage@10`: fraction of the catalog in at least one eval user's
      top 10, train movies excluded. `num_eval_users`, `num_eval_pairs` (distinct).
    With no user selected, every rate is None and the counts are 0.

  Raises:
    ValueError: Bad `ks`, a k deeper than the ranking, or a mask of the wrong shape.
  """
  ks = _checked_ks(rankings, ks)
  users = _user_mask(rankings, user_mask)
  pairs = rankings.pairs_of(users)
  num_users, num_pairs = int(users.sum()), int(pairs.sum())
  values: Dict[str, Optional[float]] = dict.fromkeys(names.retrieval_names(ks))
  values[names.NUM_EVAL_USERS], values[names.NUM_EVAL_PAIRS] = num_users, num_pairs
  if not num_users:
    return values
  ranks, user_of = rankings.ranks[pairs], rankings.pair_users[pairs]
  relevant = np.bincount(rankings.pair_users, minlength=len(users))
  for k in ks:
    hits = ranks < k
    values[names.at(names.HIT_RATE, k)] = hits.sum() / num_pairs
    hits_per_user = np.bincount(user_of[hits], minlength=len(users))
    values[names.at(names.RECALL, k)] = float(
        (hits_per_user[users] / relevant[users]).sum() / num_users)
    values[names.at(names.TOP_K_ACCURACY, k)] = (
        (rankings.unexcluded_ranks[pairs] < k).sum() / num_pairs)
  values[names.at(names.NDCG, names.NDCG_K)] = _ndcg(ranks, user_of, relevant, users)
  top = rankings.top_movies[users]
  values[names.at(names.COVERAGE, names.SLOTS_K)] = (
      len(np.unique(top[top != rankings_lib.EMPTY_SLOT])) / rankings.num_movies)
  return {name: float(v) if isinstance(v, np.floating) else v for name, v in values.items()}


def curves(rankings: rankings_lib.Rankings, max_k: int = names.CURVE_MAX_K) -> Dict[str, list]:
  """hit_rate@k and recall@k for k = 1..max_k, over all users: {family: [max_k values]}.

  Entry k - 1 equals `summarize`'s value at k; the curves are cumulative counts of the
  ranks, so they cost one pass over the pairs.
  """
  _checked_ks(rankings, [max_k])
  ranked = rankings.ranks < max_k
  hits_at = np.cumsum(np.bincount(rankings.ranks[ranked], minlength=max_k))
  relevant = np.bincount(rankings.pair_users, minlength=len(rankings.users))
  # Each hit adds 1 / (its user's eval movies) to that user's recall.
  weights = 1.0 / relevant[rankings.pair_users[ranked]]
  recall_at = np.cumsum(np.bincount(rankings.ranks[ranked], weights, minlength=max_k))
  return {names.HIT_RATE: (hits_at / len(rankings.ranks)).tolist(),
          names.RECALL: (recall_at / len(rankings.users)).tolist()}


def _ndcg(ranks: np.ndarray, user_of: np.ndarray, relevant: np.ndarray,
          users: np.ndarray) -> float:
  """Mean binary-relevance NDCG@NDCG_K of the selected users."""
  in_top = ranks < names.NDCG_K
  gains = 1.0 / np.log2(ranks[in_top] + 2.0)  # Rank r (0-based): 1 / log2(r + 2).
  dcg = np.bincount(user_of[in_top], gains, minlength=len(users))
  ideal_dcg = np.cumsum(1.0 / np.log2(np.arange(names.NDCG_K) + 2.0))
  ideal = ideal_dcg[np.minimum(relevant[users], names.NDCG_K) - 1]
  return float((dcg[users] / ideal).sum() / users.sum())


def _checked_ks(rankings: rankings_lib.Rankings, ks: Sequence[int]) -> Tuple[int, ...]:
  ks = names.validate_ks(ks)
  # Below the catalog size, a k deeper than the ranking would silently undercount.
  if max(ks) > rankings.depth and rankings.depth < rankings.num_movies:
    raise ValueError(f"k = {max(ks)} is deeper than the ranking ({rankings.depth} "
                     "movies per user); rank with a larger depth.")
  return ks


def _user_mask(rankings: rankings_lib.Rankings, user_mask: Optional[np.ndarray]) -> np.ndarray:
  if user_mask is None:
    return np.ones(len(rankings.users), bool)
  user_mask = np.asarray(user_mask)
  if user_mask.dtype != bool or user_mask.shape != rankings.users.shape:
    raise ValueError(f"user_mask must be bool of shape {rankings.users.shape}, got "
                     f"{user_mask.dtype} {user_mask.shape}.")
  return user_mask
