"""Full-catalog retrieval metrics on hand-computed examples and a brute-force reference."""
import math

import numpy as np
import pytest

from components.retrieval_evaluator import metric_names
from components.retrieval_evaluator import metrics
from components.retrieval_evaluator import scoring
from ranking_core import rankings as rankings_lib

# 3 users x 6 movies. User 2 has a three-way tie at the top.
SCORES = np.array([
    [6, 5, 4, 3, 2, 1],
    [1, 2, 3, 4, 5, 6],
    [3, 3, 3, 1, 1, 1],
], np.float32)
TRAIN = ([0, 1, 1], [0, 5, 4])  # (users, movies)
EVAL = ([0, 0, 1, 2, 2], [1, 4, 3, 2, 5])


def _score_fn(scores):
  return lambda rows: scores[rows]


def _evaluate(scores=SCORES, train=TRAIN, eval_=EVAL, **kwargs):
  return metrics.evaluate_retrieval(
      _score_fn(np.asarray(scores)), np.asarray(scores).shape[1],
      np.asarray(eval_[0]), np.asarray(eval_[1]), np.asarray(train[0]),
      np.asarray(train[1]), **kwargs)


def _dcg(ranks):
  return sum(1 / math.log2(rank + 1) for rank in ranks)


def test_hand_computed_example_every_metric():
  # With exclusion, user 0 ranks 1,2,3,4,5 (0 excluded), eval {1, 4} at ranks 1 and 4;
  # user 1 ranks 3,2,1,0 (5, 4 excluded), eval {3} at rank 1; user 2 ranks 0,1,2 (tie,
  # lower column first) then 3,4,5, eval {2, 5} at ranks 3 and 6.
  # Without exclusion: user 0 has 1 at rank 2, 4 at rank 5; user 1 has 3 at rank 3.
  result = _evaluate(ks=(1, 2, 3))
  expected = {
      "hit_rate@1": 2 / 5, "hit_rate@2": 2 / 5, "hit_rate@3": 3 / 5,
      "recall@1": (1 / 2 + 1 + 0) / 3, "recall@2": (1 / 2 + 1 + 0) / 3,
      "recall@3": (1 / 2 + 1 + 1 / 2) / 3,
      "ndcg@10": (_dcg([1, 4]) / _dcg([1, 2]) + 1 + _dcg([3, 6]) / _dcg([1, 2])) / 3,
      "top_k_accuracy@1": 0.0, "top_k_accuracy@2": 1 / 5, "top_k_accuracy@3": 3 / 5,
      # Every user's whole valid ranking fits in its top 10; together they cover all.
      "coverage@10": 1.0,
      "num_eval_users": 3, "num_eval_pairs": 5,
  }
  assert list(result) == list(expected)
  assert result == pytest.approx(expected, abs=1e-12)


def test_metric_names_match_evaluate_retrieval_keys():
  assert metric_names.retrieval_names((3, 1, 2)) == tuple(_evaluate(ks=(3, 1, 2)))


def test_exclusion_only_changes_excluded_metrics():
  no_train = _evaluate(train=([], []), ks=(1, 2, 3))
  # Without train movies both rankings are the unexcluded one.
  for k in (1, 2, 3):
    assert no_train[f"hit_rate@{k}"] == no_train[f"top_k_accuracy@{k}"]
  assert no_train["hit_rate@1"] == 0.0
  assert no_train["hit_rate@3"] == pytest.approx(3 / 5)
  assert no_train["ndcg@10"] == pytest.approx(
      (_dcg([2, 5]) / _dcg([1, 2]) + 1 / math.log2(4) + _dcg([3, 6]) / _dcg([1, 2])) / 3)


def test_eval_movie_also_rated_in_train_is_never_a_hit_with_exclusion():
  # User 0 rated movie 1 in train and again in eval: excluded from the ranking, it can
  # only count without exclusion, even with k larger than the catalog.
  result = _evaluate(train=([0], [1]), eval_=([0], [1]), ks=(100,))
  assert result["hit_rate@100"] == 0.0
  assert result["recall@100"] == 0.0
  assert result["ndcg@10"] == 0.0
  assert result["top_k_accuracy@100"] == 1.0
  # -inf movies are not "retrieved": user 0's top 10 holds the 5 other movies only.
  assert result["coverage@10"] == pytest.approx(5 / 6)


def test_ties_rank_lower_movie_first():
  scores = np.zeros([1, 5], np.float32)
  assert _evaluate(scores, ([], []), ([0], [2]), ks=(2, 3))["hit_rate@2"] == 0.0
  assert _evaluate(scores, ([], []), ([0], [2]), ks=(2, 3))["hit_rate@3"] == 1.0
  # Excluding movie 0 moves movie 2 up into the top 2.
  assert _evaluate(scores, ([0], [0]), ([0], [2]), ks=(2,))["hit_rate@2"] == 1.0


def test_ties_at_the_cutoff_of_a_large_catalog_keep_the_lowest_columns():
  # 30 movies (so the partial-sort path runs): movie 29 is best, 20 movies tie second.
  scores = np.zeros([1, 30], np.float32)
  scores[0, 29] = 2.0
  scores[0, 5:25] = 1.0
  def hit(movie, k):
    return _evaluate(scores, ([], []), ([0], [movie]), ks=(k,))[f"hit_rate@{k}"]
  assert hit(29, 1) == 1.0
  assert hit(5, 2) == 1.0 and hit(6, 2) == 0.0
  assert hit(13, 10) == 1.0 and hit(14, 10) == 0.0
  assert hit(24, 21) == 1.0 and hit(0, 21) == 0.0 and hit(0, 22) == 1.0


def test_coverage_counts_distinct_movies_in_any_top_10():
  # 12 movies, both users rank them 0..11; user 1 rated movie 0 in train, so its top 10
  # is 1..10: together 0..10 = 11 of 12 movies.
  scores = np.tile(np.arange(12, 0, -1, dtype=np.float32), (2, 1))
  result = _evaluate(scores, ([1], [0]), ([0, 1], [3, 3]), ks=(10,))
  assert result["coverage@10"] == pytest.approx(11 / 12)
  assert _evaluate(scores, ([], []), ([0, 1], [3, 3]), ks=(10,))["coverage@10"] == (
      pytest.approx(10 / 12))


def test_duplicate_eval_pairs_count_once():
  result = _evaluate(eval_=([0, 0, 0], [1, 1, 4]), ks=(1,))
  assert result["num_eval_pairs"] == 2 and result["num_eval_users"] == 1
  assert result["hit_rate@1"] == 0.5
  assert result["recall@1"] == 0.5


def test_k_above_catalog_size_ranks_everything():
  result = _evaluate(ks=(100,))
  assert result["hit_rate@100"] == 1.0 and result["top_k_accuracy@100"] == 1.0
  assert result["recall@100"] == 1.0


def _reference(scores, eval_users, eval_movies, train_users, train_movies, ks):
  """Brute force: a full Python sort per user by (-score, movie)."""
  num_movies = scores.shape[1]
  eval_sets, train_sets = {}, {}
  for u, m in zip(eval_users, eval_movies):
    eval_sets.setdefault(u, set()).add(m)
  for u, m in zip(train_users, train_movies):
    train_sets.setdefault(u, set()).add(m)
  num_pairs = sum(len(s) for s in eval_sets.values())
  out = {f"hit_rate@{k}": 0.0 for k in ks}
  out.update({f"recall@{k}": 0.0 for k in ks})
  out["ndcg@10"] = 0.0
  out.update({f"top_k_accuracy@{k}": 0.0 for k in ks})
  covered = set()
  for u, relevant in eval_sets.items():
    seen = train_sets.get(u, set())
    full = sorted(range(num_movies), key=lambda m: (-scores[u, m], m))
    ranked = [m for m in full if m not in seen]
    for k in ks:
      hits = len(relevant & set(ranked[:k]))
      out[f"hit_rate@{k}"] += hits / num_pairs
      out[f"recall@{k}"] += hits / len(relevant) / len(eval_sets)
      out[f"top_k_accuracy@{k}"] += len(relevant & set(full[:k])) / num_pairs
    dcg = _dcg([r + 1 for r, m in enumerate(ranked[:10]) if m in relevant])
    out["ndcg@10"] += dcg / _dcg(range(1, min(len(relevant), 10) + 1)) / len(eval_sets)
    covered |= set(ranked[:10])
  out["coverage@10"] = len(covered) / num_movies
  out["num_eval_users"] = len(eval_sets)
  out["num_eval_pairs"] = num_pairs
  return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_and_is_batch_invariant(seed):
  rng = np.random.default_rng(seed)
  num_users, num_movies = 37, 60
  # Few distinct values: many ties, also across the top-k cutoffs.
  scores = rng.integers(0, 4, size=[num_users, num_movies]).astype(np.float32)
  eval_users = rng.integers(0, num_users, 150)
  eval_movies = rng.integers(0, num_movies, 150)
  train_users = rng.integers(0, num_users, 600)
  train_movies = rng.integers(0, num_movies, 600)
  ks = (1, 5, 10, 20)
  args = (_score_fn(scores), num_movies, eval_users, eval_movies, train_users, train_movies)
  one = metrics.evaluate_retrieval(*args, ks=ks, batch_size=1)
  seven = metrics.evaluate_retrieval(*args, ks=ks, batch_size=7)
  everything = metrics.evaluate_retrieval(*args, ks=ks, batch_size=1000)
  assert one == pytest.approx(everything, abs=1e-12)
  assert seven == pytest.approx(everything, abs=1e-12)
  expected = _reference(scores, eval_users, eval_movies, train_users, train_movies, ks)
  assert everything == pytest.approx(expected, abs=1e-12)
  assert 0 < everything["hit_rate@10"] < everything["top_k_accuracy@20"] <= 1


def test_popularity_scores_are_train_counts():
  score_fn = scoring.popularity_score_fn(np.array([1, 0, 3, 0, 0, 1, 0]))
  scores = score_fn(np.array([0, 1]))
  np.testing.assert_array_equal(scores, [[1, 0, 3, 0, 0, 1, 0]] * 2)
  assert scores.dtype.kind == "f"
  result = metrics.evaluate_retrieval(
      score_fn, 7, np.array([0, 1]),
      np.array([2, 5]), np.array([0]), np.array([2]), ks=(1,))
  # User 0 rated movie 2 (the most popular) in train, so its top 1 is movie 0.
  assert result["hit_rate@1"] == 0.0
  assert result["top_k_accuracy@1"] == 0.5


@pytest.mark.parametrize("change,message", [
    (dict(eval_=([0], [6])), "eval_movies has columns outside"),
    (dict(eval_=([0, 1], [1])), "differ in length"),
    (dict(eval_=([], [])), "no eval pairs"),
    (dict(train=([-1], [0])), "negative user rows"),
    (dict(ks=(0, 10)), "ks must be positive"),
    (dict(batch_size=0), "batch_size"),
    (dict(scores=np.full([3, 6], np.nan)), "NaN"),
])
def test_bad_inputs_are_rejected(change, message):
  with pytest.raises(ValueError, match=message):
    _evaluate(**change)


def test_wrong_score_shape_is_rejected():
  with pytest.raises(ValueError, match="shape"):
    metrics.evaluate_retrieval(lambda rows: np.zeros([len(rows), 5]), 6, np.array([0]),
                               np.array([1]), np.array([], int), np.array([], int))


def _random_problem(seed, num_users=37, num_movies=60):
  rng = np.random.default_rng(seed)
  scores = rng.integers(0, 4, size=[num_users, num_movies]).astype(np.float32)
  return (_score_fn(scores), num_movies, rng.integers(0, num_users, 150),
          rng.integers(0, num_movies, 150), rng.integers(0, num_users, 600),
          rng.integers(0, num_movies, 600))


@pytest.mark.parametrize("seed", [0, 1])
def test_curves_equal_the_metrics_at_every_k(seed):
  rankings = metrics.rank(*_random_problem(seed), depth=100, batch_size=8)
  curves = metrics.curves(rankings, max_k=100)
  assert len(curves["hit_rate"]) == len(curves["recall"]) == 100
  every_k = metrics.summarize(rankings, range(1, 101))
  for k in range(1, 101):
    assert curves["hit_rate"][k - 1] == every_k[f"hit_rate@{k}"]
    assert curves["recall"][k - 1] == pytest.approx(every_k[f"recall@{k}"], abs=1e-12)
  assert np.all(np.diff(curves["hit_rate"]) >= 0)
  # 60 movies: from k = 60 on everything rankable is ranked; flat afterwards.
  assert curves["hit_rate"][59] == curves["hit_rate"][99] > curves["hit_rate"][9]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_user_slice_equals_evaluating_those_users_alone(seed):
  score_fn, num_movies, eval_users, eval_movies, train_users, train_movies = (
      _random_problem(seed))
  rankings = metrics.rank(score_fn, num_movies, eval_users, eval_movies, train_users,
                          train_movies, depth=20)
  chosen = rankings.users[rankings.users % 3 == 0]
  keep = np.isin(eval_users, chosen)
  alone = metrics.evaluate_retrieval(score_fn, num_movies, eval_users[keep],
                                     eval_movies[keep], train_users, train_movies,
                                     ks=(1, 5, 20))
  sliced = metrics.summarize(rankings, (1, 5, 20), user_mask=rankings.users % 3 == 0)
  assert sliced == pytest.approx(alone, abs=1e-12)
  assert sliced["num_eval_users"] == len(chosen)


def test_rank_keeps_each_pairs_rank_and_each_users_top_slots():
  rankings = metrics.rank(_score_fn(SCORES), 6, np.asarray(EVAL[0]), np.asarray(EVAL[1]),
                          np.asarray(TRAIN[0]), np.asarray(TRAIN[1]), depth=6)
  # Pairs sorted by user then movie: (0,1) (0,4) (1,3) (2,2) (2,5); see the hand example.
  np.testing.assert_array_equal(rankings.pair_movies, [1, 4, 3, 2, 5])
  np.testing.assert_array_equal(rankings.ranks, [0, 3, 0, 2, 5])
  np.testing.assert_array_equal(rankings.unexcluded_ranks, [1, 4, 2, 2, 5])
  # Slots beyond the movies left after exclusion are empty.
  np.testing.assert_array_equal(rankings.top_movies[1], [3, 2, 1, 0] + [-1] * 6)
  np.testing.assert_array_equal(rankings.top_movies[0], [1, 2, 3, 4, 5] + [-1] * 5)


def test_pairs_beyond_the_ranked_depth_are_not_ranked():
  rankings = metrics.rank(_score_fn(SCORES), 6, np.asarray(EVAL[0]), np.asarray(EVAL[1]),
                          np.asarray(TRAIN[0]), np.asarray(TRAIN[1]), depth=1)
  # The depth is raised to 10 (the top slots); with 6 movies all of them are ranked.
  assert rankings.depth == 6
  big = metrics.rank(*_random_problem(0, num_movies=60), depth=10)
  assert big.depth == 10 and big.ranks.max() == rankings_lib.NOT_RANKED
  assert big.ranks[big.ranks != rankings_lib.NOT_RANKED].max() <= 9
  with pytest.raises(ValueError, match="deeper than the ranking"):
    metrics.summarize(big, (20,))


def test_an_empty_user_slice_has_counts_and_no_rates():
  rankings = metrics.rank(_score_fn(SCORES), 6, np.asarray(EVAL[0]), np.asarray(EVAL[1]),
                          np.asarray(TRAIN[0]), np.asarray(TRAIN[1]), depth=6)
  empty = metrics.summarize(rankings, (1,), user_mask=np.zeros(3, bool))
  assert empty["num_eval_users"] == 0 and empty["num_eval_pairs"] == 0
  assert empty["hit_rate@1"] is None and empty["ndcg@10"] is None
  with pytest.raises(ValueError, match="user_mask"):
    metrics.summarize(rankings, (1,), user_mask=np.ones(4, bool))
