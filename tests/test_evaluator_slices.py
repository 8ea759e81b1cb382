"""Slices on a hand-made case: activity buckets, long tail, popularity bias, histogram."""
import numpy as np
import pytest

from components.retrieval_evaluator import metrics
from components.retrieval_evaluator import report
from components.retrieval_evaluator import results as results_lib
from components.retrieval_evaluator import slices

# 3 users, 6 movies. Everyone gets the same scores, movie 0 best. Train ratings over all
# users give the movies' popularity; the head is the top 20% (2 of 6 movies: >= 7).
TRAIN_COUNTS = np.array([9, 7, 3, 1, 0, 0])
SCORES = np.tile(np.array([6, 5, 4, 3, 2, 1], np.float32), (3, 1))
TRAIN = (np.array([0, 2, 2]), np.array([0, 0, 1]))  # User 0 saw movie 0; user 2 saw 0 and 1.
EVAL = (np.array([0, 0, 1, 2]), np.array([2, 5, 1, 3]))
# Train ratings per user row (tertiles of [1, 0, 2]: few <= 0 < some <= 1 < many).
USER_TRAIN_RATINGS = np.array([1, 0, 2])


@pytest.fixture(name="rankings")
def _rankings():
  # With exclusion: user 0 ranks 1,2,3,4,5; user 1 ranks 0..5; user 2 ranks 2,3,4,5.
  return metrics.rank(lambda rows: SCORES[rows], 6, *EVAL, *TRAIN, depth=6)


def test_activity_buckets_at_the_tertiles():
  activity = slices.user_activity(USER_TRAIN_RATINGS)
  assert tuple(activity.boundaries) == (0, 1)
  np.testing.assert_array_equal(activity.bucket_of_user, [1, 0, 2])
  assert activity.describe() == {"boundaries": [0, 1], "buckets": {
      "few_ratings": {"min_train_ratings": 0, "max_train_ratings": 0, "num_users": 1},
      "some_ratings": {"min_train_ratings": 1, "max_train_ratings": 1, "num_users": 1},
      "many_ratings": {"min_train_ratings": 2, "max_train_ratings": 2, "num_users": 1}}}
  # Counts 1..6: the lower tertiles are 2 and 4, so each bucket holds two users.
  six = slices.user_activity(np.arange(1, 7))
  assert tuple(six.boundaries) == (2, 4)
  np.testing.assert_array_equal(six.bucket_of_user, [0, 0, 1, 1, 2, 2])
  with pytest.raises(ValueError, match="at least one user"):
    slices.user_activity(np.array([], int))


def test_the_report_calls_a_bucket_empty_when_its_tertiles_coincide():
  # Most eval users without train ratings, as after a temporal cutoff: both tertiles are 0.
  activity = slices.user_activity(np.array([0, 0, 0, 0, 5]))
  assert tuple(activity.boundaries) == (0, 0)
  sentence = report._activity_sentence({results_lib.SLICES_FIELD: {  # pylint: disable=protected-access
      results_lib.SLICE_DEFINITIONS: {"user_activity": activity.describe()}}})
  assert sentence == ("User activity (train ratings per eval user; boundaries at the "
                      "tertiles): few_ratings = 0-0 (4 users), some_ratings empty (the "
                      "tertiles coincide), many_ratings = 1-5 (1 users).")


def test_long_tail_is_outside_the_most_rated_fifth_ties_included():
  tail = slices.long_tail(TRAIN_COUNTS)
  np.testing.assert_array_equal(tail.is_tail, [False, False, True, True, True, True])
  assert tail.min_head_ratings == 7
  # A tie at the cut joins the head: 10 movies, head of 2, but 3 movies have 8 ratings.
  tied = slices.long_tail(np.array([10, 8, 8, 5, 3, 2, 1, 0, 0, 0]))
  assert tied.min_head_ratings == 8 and int((~tied.is_tail).sum()) == 3
  # Movies without train ratings are never in the head.
  assert slices.long_tail(np.zeros(4, int)).is_tail.all()


def test_slice_metrics_by_hand(rankings):
  result = slices.slice_metrics(rankings, (1, 2, 5), slices.user_activity(USER_TRAIN_RATINGS),
                                slices.long_tail(TRAIN_COUNTS), TRAIN_COUNTS)
  assert list(result) == ["few_ratings", "some_ratings", "many_ratings", "long_tail"]
  # Few ratings = user 1: eval movie 1 at rank 2 of 0,1,...; 6 slots, 4 of them tail.
  few = result["few_ratings"]
  assert few["num_eval_users"] == 1 and few["num_eval_pairs"] == 1
  assert few["hit_rate@1"] == 0.0 and few["hit_rate@2"] == 1.0
  assert few["tail_share@10"] == pytest.approx(4 / 6)
  assert few["mean_popularity@10"] == pytest.approx((9 + 7 + 3 + 1) / 6)
  # Some ratings = user 0: eval movies 2 (rank 2) and 5 (rank 5) after excluding 0.
  some = result["some_ratings"]
  assert some["hit_rate@2"] == 0.5 and some["hit_rate@5"] == 1.0
  assert some["recall@2"] == 0.5 and some["coverage@10"] == pytest.approx(5 / 6)
  assert some["tail_share@10"] == pytest.approx(4 / 5)
  # Long tail: pairs (0, 2), (0, 5), (2, 3) at ranks 2, 5, 2; (1, 1) is a head movie.
  assert result["long_tail"] == pytest.approx({
      "hit_rate@1": 0.0, "hit_rate@2": 2 / 3, "hit_rate@5": 1.0,
      # Without exclusion: movies 2, 5, 3 rank 3rd, 6th and 4th.
      "top_k_accuracy@1": 0.0, "top_k_accuracy@2": 0.0, "top_k_accuracy@5": 2 / 3,
      "num_eval_pairs": 3})


def test_popularity_bias_of_all_recommended_slots(rankings):
  bias = slices.popularity_bias(rankings, TRAIN_COUNTS, slices.long_tail(TRAIN_COUNTS).is_tail)
  # 15 filled slots: 5 + 6 + 4; tail movies in 4 + 4 + 4 of them.
  assert bias["tail_share@10"] == pytest.approx(12 / 15)
  assert bias["mean_popularity@10"] == pytest.approx((11 + 20 + 4) / 15)
  empty = slices.popularity_bias(rankings, TRAIN_COUNTS, np.ones(6, bool),
                                 user_mask=np.zeros(3, bool))
  assert empty == {"tail_share@10": None, "mean_popularity@10": None}


def test_popularity_histogram_by_hand(rankings):
  histogram = slices.popularity_histogram({"model": rankings.top_movies}, TRAIN_COUNTS)
  assert histogram["bin_edges"] == [0, 1, 2, 5, 10]
  assert histogram["catalog"] == pytest.approx([2 / 6, 1 / 6, 1 / 6, 2 / 6])
  # Slot popularities: 7,3,1,0,0 | 9,7,3,1,0,0 | 3,1,0,0.
  assert histogram["model"] == pytest.approx([6 / 15, 3 / 15, 3 / 15, 3 / 15])
