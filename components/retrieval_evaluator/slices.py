"""Slices of an evaluation: users by activity, the long tail, and popularity bias.

They say whether a model is more than a copy of the popularity ranking:
  * user activity: every metric on the eval users with few, some and many train ratings
    (tertiles of the eval users' train-rating counts, so each bucket holds about a third);
  * long tail: hit rate on the eval pairs whose movie is outside the head, the most rated
    HEAD_FRACTION of the catalog by train ratings;
  * popularity bias: the share of recommended slots (top 10, seen movies excluded) that
    go to long-tail movies, and the mean train-rating count of the recommended movies;
  * a histogram of that popularity, recommended slots against the catalog.
"""
import dataclasses
import math
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from components.retrieval_evaluator import metric_names as names
from components.retrieval_evaluator import metrics
from ranking_core import rankings as rankings_lib

ACTIVITY_SLICES = ("few_ratings", "some_ratings", "many_ratings")
LONG_TAIL_SLICE = "long_tail"
SLICES = ACTIVITY_SLICES + (LONG_TAIL_SLICE,)
# The head is the most rated 20% of the catalog (ties at the cut included).
HEAD_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class UserActivity:
  """Buckets of users by their number of train ratings.

  Attributes:
    boundaries: (b1, b2): few <= b1 < some <= b2 < many train ratings.
    bucket_of_user: Bucket index (into ACTIVITY_SLICES) of each user row [U].
    counts: Train ratings of each user row [U].
  """
  boundaries: Sequence[int]
  bucket_of_user: np.ndarray
  counts: np.ndarray

  def mask(self, bucket: int, users: np.ndarray) -> np.ndarray:
    """Bool mask over `users` (user rows) of those in the bucket."""
    return self.bucket_of_user[users] == bucket

  def describe(self) -> Dict[str, object]:
    """metrics.json's slice definition: boundaries and, per bucket, its range and size."""
    low, high = (int(b) for b in self.boundaries)
    ranges = ((0, low), (low + 1, high), (high + 1, int(self.counts.max(initial=0))))
    return {"boundaries": [low, high], "buckets": {
        name: {"min_train_ratings": lo, "max_train_ratings": hi,
               "num_users": int((self.bucket_of_user == i).sum())}
        for i, (name, (lo, hi)) in enumerate(zip(ACTIVITY_SLICES, ranges))}}


def user_activity(train_ratings_per_user: np.ndarray) -> UserActivity:
  """Buckets at the tertiles of the users' train-rating counts (chosen from the data).

  b1 and b2 are the lower 1/3 and 2/3 quantiles, so the "few" bucket holds at least a
  third of the users; when many users share a count, "some" can be empty (b1 == b2).
  """
  counts = np.asarray(train_ratings_per_user, np.int64)
  if counts.ndim != 1 or not len(counts):
    raise ValueError(f"Need the train-rating count of at least one user, got shape "
                     f"{counts.shape}.")
  low, high = (int(q) for q in np.quantile(counts, [1 / 3, 2 / 3], method="lower"))
  bucket = np.digitize(counts, [low + 1, high + 1])  # <= low: 0, <= high: 1, else 2.
  return UserActivity(boundaries=(low, high), bucket_of_user=bucket, counts=counts)


@dataclasses.dataclass(frozen=True)
class LongTail:
  """Catalog movies outside the head.

  Attributes:
    is_tail: Bool [M].
    min_head_ratings: A movie is in the head iff it has at least this many train ratings.
  """
  is_tail: np.ndarray
  min_head_ratings: int

  def describe(self) -> Dict[str, object]:
    return {"head_fraction": HEAD_FRACTION, "min_head_train_ratings": self.min_head_ratings,
            "num_head_movies": int((~self.is_tail).sum()),
            "num_tail_movies": int(self.is_tail.sum())}


def long_tail(train_counts: np.ndarray, head_fraction: float = HEAD_FRACTION) -> LongTail:
  """The head: movies with at least as many train ratings as the ceil(fraction*M)-th most
  rated one (so ties at the cut are all in the head), and never a movie without ratings."""
  train_counts = np.asarray(train_counts)
  if not 0 < head_fraction < 1:
    raise ValueError(f"head_fraction must be in (0, 1), got {head_fraction}.")
  num_head = max(1, math.ceil(head_fraction * len(train_counts)))
  threshold = max(1, int(np.sort(train_counts)[::-1][num_head - 1]))
  return LongTail(is_tail=train_counts < threshold, min_head_ratings=threshold)


def popularity_bias(rankings: rankings_lib.Rankings, train_counts: np.ndarray,
                    is_tail: np.ndarray,
                    user_mask: Optional[np.ndarray] = None) -> Dict[str, Optional[float]]:
  """tail_share@10 and mean_popularity@10 of the filled top-10 slots of the users."""
  top = rankings.top_movies if user_mask is None else rankings.top_movies[user_mask]
  slots = top[top != rankings_lib.EMPTY_SLOT]
  tail_share, mean_popularity = names.popularity_bias_names()
  if not len(slots):
    return {tail_share: None, mean_popularity: None}
  return {tail_share: float(is_tail[slots].mean()),
          mean_popularity: float(np.asarray(train_counts)[slots].mean())}


def slice_metrics(rankings: rankings_lib.Rankings, ks: Sequence[int], activity: UserActivity,
                  tail: LongTail, train_counts: np.ndarray) -> Dict[str, Dict]:
  """{slice name: metrics} for one model: every metric per activity bucket, and the
  long tail's hit_rate@k and top_k_accuracy@k (names from metric_names)."""
  result = {}
  for bucket, name in enumerate(ACTIVITY_SLICES):
    mask = activity.mask(bucket, rankings.users)
    result[name] = {**metrics.summarize(rankings, ks, user_mask=mask),
                    **popularity_bias(rankings, train_counts, tail.is_tail, mask)}
  result[LONG_TAIL_SLICE] = _long_tail_metrics(rankings, ks, tail.is_tail)
  return result


def _long_tail_metrics(rankings: rankings_lib.Rankings, ks: Sequence[int],
                       is_tail: np.ndarray) -> Dict[str, Optional[float]]:
  in_tail = is_tail[rankings.pair_movies]
  num_pairs = int(in_tail.sum())
  values: Dict[str, Optional[float]] = dict.fromkeys(names.long_tail_names(ks))
  values[names.NUM_EVAL_PAIRS] = num_pairs
  if num_pairs:
    for k in names.validate_ks(ks):
      values[names.at(names.HIT_RATE, k)] = float(
          (rankings.ranks[in_tail] < k).sum() / num_pairs)
      values[names.at(names.TOP_K_ACCURACY, k)] = float(
          (rankings.unexcluded_ranks[in_tail] < k).sum() / num_pairs)
  return values


def popularity_histogram(top_movies: Mapping[str, np.ndarray],
                         train_counts: np.ndarray) -> Dict[str, List]:
  """Share of the catalog, and of each model's filled recommended slots, per popularity bin.

  Args:
    top_movies: {section: top slots [U, 10] of `rankings_lib.Rankings`}.
    train_counts: Train ratings per catalog column [M].

  Returns:
    {"bin_edges": [0, 1, 2, 5, 10, 20, 50, ...] (bin i holds counts in
    [edge i, edge i+1)), "catalog": [shares], section: [shares], ...}.
  """
  train_counts = np.asarray(train_counts)
  edges = _one_two_five_edges(int(train_counts.max(initial=0)))
  result = {"bin_edges": edges, "catalog": _shares(train_counts, edges)}
  for section, top in top_movies.items():
    slots = top[top != rankings_lib.EMPTY_SLOT]
    result[section] = _shares(train_counts[slots], edges)
  return result


def _one_two_five_edges(max_count: int) -> List[int]:
  """0, 1, 2, 5, 10, 20, 50, ... up to the first edge above max_count."""
  edges, scale = [0, 1], 1
  while edges[-1] <= max_count:
    for step in (2, 5, 10):
      edges.append(step * scale)
      if edges[-1] > max_count:
        break
    scale *= 10
  return edges


def _shares(counts: np.ndarray, edges: List[int]) -> List[float]:
  histogram, _ = np.histogram(counts, bins=edges)
  return (histogram / max(len(counts), 1)).tolist()
