"""The EASE factor: low-rank EASE as an appendix to the towers' embeddings."""
import numpy as np
import pytest

from closed_form import ease
from trainer_module import ease_factor
from trainer_module import ease_factor_selection as selection

# 5 users x 6 movie indices; movie 5 is never rated (like an OOV bucket), user 4 rates
# nothing. User 0 rates movie 1 twice (one interaction).
USERS = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3])
MOVIES = np.array([0, 1, 1, 2, 0, 1, 3, 1, 2, 4, 3, 4])
NUM_USERS, NUM_MOVIES = 5, 6


def _ease(l2):
  return ease.fit(USERS, MOVIES, NUM_USERS, np.bincount(MOVIES, minlength=NUM_MOVIES), l2,
                  max_items=100)


def test_at_full_rank_a_fitted_users_dot_product_is_the_leave_user_out_ease_score():
  factor = ease_factor.fit(USERS, MOVIES, NUM_USERS, NUM_MOVIES, rank=5, l2=0.5, max_items=100,
                           seed=0)
  scores = factor.user_vectors(USERS, MOVIES, NUM_USERS) @ factor.candidate_rows.T
  expected = _ease(0.5).score_fn(USERS, MOVIES, NUM_USERS, leave_user_out=True)(
      np.arange(NUM_USERS))
  rated = np.isfinite(expected)
  np.testing.assert_allclose(scores[rated], expected[rated], atol=1e-4)
  # Not the in-sample scores, which rank a user's own movies from their own row.
  in_sample = _ease(0.5).score_fn(USERS, MOVIES, NUM_USERS)(np.arange(NUM_USERS))
  assert np.abs(scores[rated] - in_sample[rated]).max() > 0.1
  # The never-rated movie and the user without ratings get zero vectors.
  assert not factor.query_rows[5].any() and not factor.candidate_rows[5].any()
  assert not factor.user_vectors(USERS, MOVIES, NUM_USERS)[4].any()
  assert factor.weight == 0 and factor.rank == 5 and factor.info["rank"] == 5


def test_a_history_outside_the_fit_is_the_sum_of_its_movies_query_rows():
  # User 4 rated nothing in the fit: a history it brings is scored as EASE scores any
  # new row, x_u L, which is what a context given at serving gets.
  factor = ease_factor.fit(USERS, MOVIES, NUM_USERS, NUM_MOVIES, rank=4, l2=1.0,
                           max_items=100, seed=0)
  vectors = factor.user_vectors(np.array([4, 4]), np.array([0, 3]), NUM_USERS)
  np.testing.assert_allclose(vectors[4], factor.query_rows[[0, 3]].sum(axis=0), rtol=1e-4,
                             atol=1e-5)


def test_a_lower_rank_caps_the_vectors_and_items_beyond_max_items_get_no_factor():
  factor = ease_factor.fit(USERS, MOVIES, NUM_USERS, NUM_MOVIES, rank=2, l2=0.5, max_items=3,
                           seed=0)
  assert factor.query_rows.shape == factor.candidate_rows.shape == (NUM_MOVIES, 2)
  # Ratings per movie: 1 has 4 (user 0's two count in the counts), 0, 2, 3 and 4 have 2;
  # the 3 most rated keep the lower indices at the tie: 1, 0, 2. The rest get no factor.
  assert not factor.query_rows[[3, 4, 5]].any() and not factor.candidate_rows[[3, 4, 5]].any()
  assert factor.info["num_items"] == 3 and factor.info["truncated"]


def test_serving_form_folds_the_weight_into_the_query_side():
  factor = ease_factor.fit(USERS, MOVIES, NUM_USERS, NUM_MOVIES, rank=4, l2=1.0,
                           max_items=100, seed=0).with_weight(2.5)
  served = factor.for_serving(USERS, MOVIES, NUM_USERS)
  np.testing.assert_allclose(served.query_rows, 2.5 * factor.query_rows)
  np.testing.assert_allclose(served.candidate_rows, factor.candidate_rows)
  # The user vectors are the weighted leave-user-out ones, from every pair given: here
  # one more than the fit saw (user 4's movie 2), as serving has the validation slice's.
  users, movies = np.append(USERS, 4), np.append(MOVIES, 2)
  served = factor.for_serving(users, movies, NUM_USERS)
  np.testing.assert_allclose(served.user_vectors,
                             2.5 * factor.user_vectors(users, movies, NUM_USERS), rtol=1e-6)
  np.testing.assert_allclose(served.user_vectors[4], served.query_rows[2], rtol=1e-4,
                             atol=1e-5)
  assert factor.weight == 2.5


def _hits(rate: float, pairs: int = 1000, shift: int = 0) -> np.ndarray:
  """A hit pattern of `rate` over `pairs` pairs; `shift` moves which pairs are hits."""
  hits = np.zeros(pairs, bool)
  hits[np.arange(round(rate * pairs)) + shift] = True
  return hits


def test_level_with_best_keeps_those_within_one_paired_standard_error():
  best = _hits(0.30)  # Hits on pairs 0-299 of 1000.
  # 5 of the best's hits fewer: a gap of 0.005 against a standard error of the paired
  # difference of sqrt(5 / 999) / sqrt(1000) ~ 0.0022. Not level.
  fewer = _hits(0.295)
  # 3 fewer: 0.003 against ~0.0017. Not level: a small gap on few pairs is still clear.
  close = _hits(0.297)
  # 30 of the best's hits lost, 10 others gained: 0.02 against ~0.0063. Not level.
  elsewhere = _hits(0.28, shift=30)
  # 151 of the best's hits lost, 150 others gained: 0.001 against ~0.017. Level.
  spread = best.copy()
  spread[:151], spread[300:450] = False, True
  assert selection.level_with_best([best]) == [0]
  assert selection.level_with_best([fewer, best, spread]) == [1, 2]
  assert selection.level_with_best([best, elsewhere, close]) == [0]
  # Equal rates are level whatever their pairs; the first of them is the best.
  assert selection.level_with_best([best, _hits(0.30, shift=500)]) == [0, 1]


def test_choose_weight_keeps_the_middle_weight_level_with_the_best():
  factor = ease_factor.fit(USERS, MOVIES, NUM_USERS, NUM_MOVIES, rank=2, l2=1.0,
                           max_items=100, seed=0)
  seen = []
  # Weights 1, 2 and 4 are level (each differs from the best, 2, on a few hundred pairs
  # by a gap within the noise); 0 (the towers alone) and 8 are clearly below.
  noisy = {1.0: _hits(0.35, shift=100), 2.0: _hits(0.355), 4.0: _hits(0.352, shift=200)}
  hits = {None: _hits(0.20), 8.0: _hits(0.25), **noisy}

  def validation_hits(candidate):
    seen.append(None if candidate is None else candidate.weight)
    return hits[seen[-1]]

  chosen = selection.choose_weight(factor, [8.0, 0.0, 2.0, 1.0, 4.0], validation_hits)
  assert seen == [None, 1.0, 2.0, 4.0, 8.0]  # Ascending; weight 0 is the towers alone.
  assert chosen.weights == [0.0, 1.0, 2.0, 4.0, 8.0]
  assert chosen.hit_rates == pytest.approx([0.20, 0.35, 0.355, 0.352, 0.25])
  assert chosen.level_weights == [1.0, 2.0, 4.0]
  assert chosen.kept == 2.0
  # Of an even count, the larger middle one; a clear best is kept alone.
  del hits[1.0]
  assert selection.choose_weight(factor, [0.0, 2.0, 4.0, 8.0],
                                 lambda c: hits[None if c is None else c.weight]).kept == 4.0
  assert selection.choose_weight(factor, [0.0, 1.0],
                                 lambda c: _hits(0.5 if c is None else 0.4)).kept == 0.0


def test_history_entries_record_the_choice_even_when_the_factor_is_dropped():
  factor = ease_factor.fit(USERS, MOVIES, NUM_USERS, NUM_MOVIES, rank=2, l2=1.0,
                           max_items=100, seed=0)
  dropped = selection.choose_weight(factor, [0.0, 2.0],
                                    lambda c: _hits(0.5 if c is None else 0.4))
  assert selection.history_entries(selection.Selection(
      rank=factor.rank, weight=dropped.kept, session_weight=0.0,
      weight_choice=dropped)) == {
      "ease_factor_weight": [0.0], "ease_factor_rank": [2.0],
      "ease_factor_session_weight": [0.0],
      "ease_factor_weights": [0.0, 2.0], "ease_factor_validation_hit_rates": [0.5, 0.4],
      "ease_factor_level_weights": [0.0]}
  assert selection.history_entries(selection.Selection(
      rank=factor.rank, weight=3.0, session_weight=0.0)) == {
      "ease_factor_weight": [3.0], "ease_factor_rank": [2.0],
      "ease_factor_session_weight": [0.0]}
  assert selection.history_entries(None) == {"ease_factor_weight": [0.0]}
