"""Every metric name the RetrievalEvaluator writes, spelled in this one place.

A metric of a family measured at a cutoff is named `<family>@<k>` (e.g. hit_rate@10).
metrics.json, the text and HTML reports, the slices and the blessing gate all build their
names with the functions below, so a renamed or added metric is a change here only.
"""
from typing import Iterable, Tuple

# Families measured at every evaluated cutoff k.
HIT_RATE = "hit_rate"
RECALL = "recall"
TOP_K_ACCURACY = "top_k_accuracy"
# Families measured at one fixed depth.
NDCG = "ndcg"
COVERAGE = "coverage"
TAIL_SHARE = "tail_share"  # Share of recommended slots that go to long-tail movies.
MEAN_POPULARITY = "mean_popularity"  # Mean train-rating count of recommended movies.
# Counts.
NUM_EVAL_USERS = "num_eval_users"
NUM_EVAL_PAIRS = "num_eval_pairs"
TOTAL_EVAL_USERS = "total_eval_users"  # Eval users before sampling.
SAMPLED_EVAL_USERS = "sampled_eval_users"  # 0: every eval user was evaluated.

# The ranking stage's section of metrics.json (only with a ranking model): the rating
# model's errors on every eval rating, and under RATING_BASELINES the same errors of each
# rating baseline, fitted on the train ratings.
RMSE = "rmse"
MAE = "mae"
NUM_RATINGS = "count"
RATING_BASELINES = "baselines"
GLOBAL_MEAN = "global_mean"  # Predicts the mean train rating.
MOVIE_MEAN = "movie_mean"  # Predicts the movie's mean train rating, shrunk (ranking.py).
# Under RANKED_ORDER, the retrieval metrics of the list serving_ranked returns: each eval
# user's RANKING_CANDIDATES best retrieved movies (train movies excluded) re-ordered by
# their retrieval score and predicted rating (ranking_core.scores.ranked_order_key).
RANKED_ORDER = "ranked_order"
RANKING_CANDIDATES = "candidates"
RANKING_WEIGHT = "weight"  # The predicted rating's share of the order (ranked_order_key).
# The entries of RANKED_ORDER that are settings, not metrics.
RANKED_ORDER_SETTINGS = (RANKING_CANDIDATES, RANKING_WEIGHT)

NDCG_K = 10
# Recommended slots per user that coverage, tail share and mean popularity look at.
SLOTS_K = 10
# The hit_rate@k and recall@k curves run over k = 1..CURVE_MAX_K.
CURVE_MAX_K = 100

# Families the blessing can gate on; each is measured at blessing_k.
GATE_FAMILIES = (HIT_RATE, RECALL, TOP_K_ACCURACY)
# Families of the curves, in metrics.json's "curves" section.
CURVE_FAMILIES = (HIT_RATE, RECALL)


def at(family: str, k: int) -> str:
  """The name of `family` at cutoff k, e.g. at(HIT_RATE, 10) == 'hit_rate@10'."""
  return f"{family}@{int(k)}"


def validate_ks(ks: Iterable[int]) -> Tuple[int, ...]:
  """Distinct positive cutoffs, sorted; ValueError for anything else."""
  ks = tuple(ks)
  if not ks or any(int(k) != k or k < 1 for k in ks):
    raise ValueError(f"ks must be positive integers, got {list(ks)}.")
  return tuple(sorted({int(k) for k in ks}))


def retrieval_names(ks: Iterable[int]) -> Tuple[str, ...]:
  """Names `metrics.summarize` returns, in its order."""
  ks = validate_ks(ks)
  return (tuple(at(HIT_RATE, k) for k in ks) + tuple(at(RECALL, k) for k in ks)
          + (at(NDCG, NDCG_K),) + tuple(at(TOP_K_ACCURACY, k) for k in ks)
          + (at(COVERAGE, SLOTS_K), NUM_EVAL_USERS, NUM_EVAL_PAIRS))


def popularity_bias_names() -> Tuple[str, ...]:
  """Names `slices.popularity_bias` returns: how popular the recommended movies are."""
  return at(TAIL_SHARE, SLOTS_K), at(MEAN_POPULARITY, SLOTS_K)


def section_names(ks: Iterable[int]) -> Tuple[str, ...]:
  """Keys of one model's section of metrics.json (model or a baseline), in order."""
  return (retrieval_names(ks) + popularity_bias_names()
          + (TOTAL_EVAL_USERS, SAMPLED_EVAL_USERS))


def user_slice_names(ks: Iterable[int]) -> Tuple[str, ...]:
  """Keys of a user slice (an activity bucket): every metric on those users only."""
  return retrieval_names(ks) + popularity_bias_names()


def long_tail_names(ks: Iterable[int]) -> Tuple[str, ...]:
  """Keys of the long-tail slice: eval pairs whose movie is a long-tail movie."""
  ks = validate_ks(ks)
  return (tuple(at(HIT_RATE, k) for k in ks) + tuple(at(TOP_K_ACCURACY, k) for k in ks)
          + (NUM_EVAL_PAIRS,))


def gate_name(family: str, blessing_k: int) -> str:
  """The metric the blessing compares; ValueError for a family it cannot gate on."""
  if family not in GATE_FAMILIES:
    raise ValueError(f"The blessing can gate on {', '.join(GATE_FAMILIES)}, not {family!r}.")
  return at(family, blessing_k)
