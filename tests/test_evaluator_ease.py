"""EASE against hand-computed weights, and its score function inside the metrics."""
import numpy as np
import pytest

from closed_form import ease
from components.retrieval_evaluator import metrics

# 4 users x 3 items. Items 0 and 1 are rated together by users 0 and 1; user 2 rated
# item 0 twice (one interaction); user 3 rated only item 2.
USERS = np.array([0, 0, 1, 1, 2, 2, 3])
ITEMS = np.array([0, 1, 0, 1, 0, 0, 2])


def test_gram_matrix_of_the_binary_interactions():
  x = ease.binary_matrix(USERS, ITEMS, 4, 3)
  np.testing.assert_array_equal(x.toarray(), [[1, 1, 0], [1, 1, 0], [1, 0, 0], [0, 0, 1]])
  np.testing.assert_array_equal(ease.gram_matrix(x), [[3, 2, 0], [2, 2, 0], [0, 0, 1]])


def test_weights_match_the_hand_computed_closed_form():
  # XᵀX + λI with λ = 1: [[4, 2, 0], [2, 3, 0], [0, 0, 2]]. Its inverse P: the 2x2 block
  # [[4, 2], [2, 3]] has determinant 8, so P = [[3/8, -2/8, 0], [-2/8, 4/8, 0], [0, 0, 1/2]].
  # B[i, j] = -P[i, j] / P[j, j]: B[1, 0] = (2/8) / (3/8) = 2/3, B[0, 1] = (2/8) / (4/8)
  # = 1/2; item 2 shares no user with the others: zero weights; diagonal zero.
  gram = ease.gram_matrix(ease.binary_matrix(USERS, ITEMS, 4, 3))
  weights = ease.weights_from_gram(gram, l2=1.0)
  np.testing.assert_allclose(weights, [[0, 1 / 2, 0], [2 / 3, 0, 0], [0, 0, 0]], atol=1e-12)


def test_two_items_reduce_to_a_one_variable_ridge_regression():
  # With two items, B[0, 1] is the ridge coefficient of column 1 on column 0:
  # x0·x1 / (x0·x0 + λ) = 2 / (3 + 5).
  gram = ease.gram_matrix(ease.binary_matrix(USERS[:6], ITEMS[:6], 3, 2))
  weights = ease.weights_from_gram(gram, l2=5.0)
  assert weights[0, 1] == pytest.approx(2 / 8)
  assert weights[1, 0] == pytest.approx(2 / 7)  # x0·x1 / (x1·x1 + λ) = 2 / (2 + 5).


def test_weights_match_a_dense_reference_on_random_data():
  rng = np.random.default_rng(0)
  x = (rng.random([300, 80]) < 0.1).astype(np.float64)
  precision = np.linalg.inv(x.T @ x + 20 * np.eye(80))
  expected = np.eye(80) - precision / np.diag(precision)[None, :]
  np.fill_diagonal(expected, 0)
  users, items = np.nonzero(x)
  weights = ease.weights_from_gram(ease.gram_matrix(ease.binary_matrix(users, items, 300, 80)),
                                   l2=20.0)
  np.testing.assert_allclose(weights, expected, atol=1e-12)


def test_edlae_dropout_penalizes_each_item_by_its_own_count():
  # EDLAE (Steck 2020): Λ = λI + p/(1-p)·diag(XᵀX). p = 0 is EASE; the heavier penalty on
  # frequent items changes the weights, and p outside [0, 1) is refused.
  rng = np.random.default_rng(1)
  x = (rng.random([200, 40]) < 0.15).astype(np.float64)
  gram = x.T @ x
  precision = np.linalg.inv(gram + np.diag(10 + 0.25 / 0.75 * np.diag(gram)))
  expected = np.eye(40) - precision / np.diag(precision)[None, :]
  np.fill_diagonal(expected, 0)
  users, items = np.nonzero(x)
  sparse_x = ease.binary_matrix(users, items, 200, 40)
  weights = ease.weights_from_gram(ease.gram_matrix(sparse_x), l2=10.0, dropout=0.25)
  np.testing.assert_allclose(weights, expected, atol=1e-12)
  plain = ease.weights_from_gram(ease.gram_matrix(sparse_x), l2=10.0)
  assert np.abs(plain - weights).max() > 1e-3
  np.testing.assert_allclose(ease.weights_from_gram(ease.gram_matrix(sparse_x), 10.0, 0.0),
                             plain, atol=0)
  for dropout in (-0.1, 1.0):
    with pytest.raises(ValueError, match="dropout"):
      ease.weights_from_gram(ease.gram_matrix(sparse_x), l2=10.0, dropout=dropout)


def test_select_items_keeps_rated_movies_and_caps_at_the_most_rated():
  counts = np.array([5, 0, 9, 1, 5, 0])
  items, truncated = ease.select_items(counts, max_items=10)
  np.testing.assert_array_equal(items, [0, 2, 3, 4])
  assert not truncated
  items, truncated = ease.select_items(counts, max_items=2)
  # 9 ratings, then a tie at 5 between columns 0 and 4: the lower column stays.
  np.testing.assert_array_equal(items, [0, 2])
  assert truncated
  with pytest.raises(ValueError, match="max_items"):
    ease.select_items(counts, max_items=0)


def test_fit_and_score_rank_like_the_hand_computed_weights():
  # Catalog of 5 movies: columns 0, 1, 2 are the items above, 3 is never rated, 4 is
  # rated once by a user but cut by max_items = 3.
  users = np.append(USERS, 4)
  movies = np.append(ITEMS, 4)
  counts = np.bincount(movies, minlength=5)
  model = ease.fit(users, movies, num_users=5, train_counts=counts, l2=1.0, max_items=3)
  np.testing.assert_array_equal(model.items, [0, 1, 2])
  assert model.weights.dtype == np.float32
  assert model.info["truncated"] and model.info["num_items"] == 3
  assert model.info["rated_movies"] == 4 and model.info["num_movies"] == 5
  assert model.info["working_mib"] == round(12 * 9 / 2**20, 1) and model.info["fit_seconds"] >= 0
  # Score two eval users: row 0 rated item 0 only, row 1 rated items 0 and 2.
  score = model.score_fn(np.array([0, 1, 1]), np.array([0, 0, 2]), num_users=2)
  scores = score(np.array([0, 1]))
  np.testing.assert_allclose(scores[:, :3], [[0, 1 / 2, 0], [0, 1 / 2, 0]], atol=1e-6)
  assert np.all(np.isneginf(scores[:, 3:]))  # Not modelled: never recommended.
  # Through the metrics: with item 0 excluded, item 1 is row 0's top movie.
  result = metrics.evaluate_retrieval(score, 5, np.array([0, 1]), np.array([1, 4]),
                                      np.array([0, 1, 1]), np.array([0, 0, 2]), ks=(1, 5))
  assert result["hit_rate@1"] == 0.5
  assert result["hit_rate@5"] == 0.5  # Movie 4 is never retrieved, even at k = 5.


def test_session_rows_follow_each_users_time_order_and_stop_at_the_user():
  # User 0 rated items 3, 1, 2, 0 at times 10, 30, 20, 40 (time order 3, 2, 1, 0); user 1
  # rated item 4 and, at one time, items 2 and 1 (a tie: item 1 first). Item -1 (not
  # modelled) keeps its place in the order but is in no row.
  users = np.array([0, 0, 0, 0, 1, 1, 1, 1])
  items = np.array([3, 1, 2, 0, 4, 2, 1, -1])
  times = np.array([10, 30, 20, 40, 5, 7, 7, 6])
  rows = ease.session_matrix(users, items, times, num_items=5, window=2).toarray()
  # One row per rating, in (user, time, item) order: user 0: 3 2 1 0; user 1: 4 -1 1 2.
  np.testing.assert_array_equal(rows, [
      [0, 0, 1, 1, 0], [0, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0],
      [0, 0, 0, 0, 1], [0, 1, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 1, 0, 0]])
  wide = ease.session_matrix(users, items, times, num_items=5, window=3).toarray()
  np.testing.assert_array_equal(wide[0], [0, 1, 1, 1, 0])  # 3, 2, 1.
  np.testing.assert_array_equal(wide[3], [1, 0, 0, 0, 0])  # The last rating of user 0.
  with pytest.raises(ValueError, match="at least 2"):
    ease.session_matrix(users, items, times, num_items=5, window=1)


def test_session_rows_join_the_fit_as_weighted_rows():
  # EASE with session rows weighted γ is EASE fitted on X stacked over √γ·W.
  users, items, counts = _random_ratings(seed=7)
  times = np.random.default_rng(7).permutation(len(users))
  sessions = ease.Sessions(timestamps=times, window=3, weight=0.5)
  model = ease.fit(users, items, 40, counts, l2=5.0, max_items=100, sessions=sessions)
  x = ease.binary_matrix(users, items, 40, 15).toarray()
  w = ease.session_matrix(users, items, times, 15, window=3).toarray()
  gram = x.T @ x + 0.5 * w.T @ w
  rated = counts > 0
  precision = np.linalg.inv(gram[np.ix_(rated, rated)] + 5.0 * np.eye(rated.sum()))
  expected = np.eye(rated.sum()) - precision / np.diag(precision)[None, :]
  np.fill_diagonal(expected, 0)
  np.testing.assert_allclose(model.weights, expected, atol=1e-5)
  assert model.info["session_window"] == 3 and model.info["session_weight"] == 0.5
  # Weight 0 is plain EASE, and says nothing of sessions.
  plain = ease.fit(users, items, 40, counts, l2=5.0, max_items=100,
                   sessions=ease.Sessions(timestamps=times, window=3, weight=0.0))
  reference = ease.fit(users, items, 40, counts, l2=5.0, max_items=100)
  np.testing.assert_array_equal(plain.weights, reference.weights)
  assert "session_weight" not in plain.info
  assert not np.allclose(model.weights, reference.weights, atol=1e-3)


def _random_ratings(seed, num_users=40, num_items=15, density=0.3):
  rng = np.random.default_rng(seed)
  users, items = np.nonzero(rng.random([num_users, num_items]) < density)
  return users, items, np.bincount(items, minlength=num_items)


def test_leave_user_out_scores_equal_a_refit_without_the_user():
  users, items, counts = _random_ratings(0)
  model = ease.fit(users, items, 40, counts, l2=2.0, max_items=100)
  scores = model.score_fn(users, items, 40, leave_user_out=True)(np.arange(40))
  in_sample = model.score_fn(users, items, 40)(np.arange(40))
  for user in (0, 7, 39):
    refit = ease.fit(users[users != user], items[users != user], 40, counts, l2=2.0,
                     max_items=100)
    assert np.array_equal(refit.items, model.items)
    row = np.isin(model.items, items[users == user]).astype(np.float64)
    np.testing.assert_allclose(scores[user, model.items], row @ refit.weights, atol=1e-5)
    # The user's own row no longer lifts their own movies: they score lower than in-sample.
    own = model.items[row > 0]
    assert np.all(scores[user, own] < in_sample[user, own])


def test_leave_user_out_scores_a_longer_row_than_the_fitted_one():
  # Serving scores every train rating of a user, the fit only some of them: the refit
  # leaves out the fitted row and scores the whole one.
  users, items, counts = _random_ratings(1)
  fitted = np.arange(len(users)) % 5 != 0
  model = ease.fit(users[fitted], items[fitted], 40, counts, l2=3.0, max_items=100)
  whole = ease.binary_matrix(users, items, 40, counts.size, np.float64).toarray()[:, model.items]
  part = ease.binary_matrix(users[fitted], items[fitted], 40, counts.size,
                            np.float64).toarray()[:, model.items]
  scores = ease.leave_user_out_scores(whole, whole @ model.weights, part,
                                      part @ model.weights, model.precision_diagonal)
  user = 3
  keep = fitted & (users != user)
  refit = ease.fit(users[keep], items[keep], 40, counts, l2=3.0, max_items=100)
  np.testing.assert_allclose(scores[user], whole[user] @ refit.weights, atol=1e-5)
  # A row the fit never saw (all-zero fitted row) keeps its in-sample scores.
  unseen = ease.leave_user_out_scores(whole[:1], whole[:1] @ model.weights,
                                      np.zeros_like(whole[:1]), np.zeros_like(whole[:1]),
                                      model.precision_diagonal)
  np.testing.assert_allclose(unseen, whole[:1] @ model.weights, atol=1e-6)


def test_leave_user_out_needs_the_fits_precision_diagonal():
  model = ease.Ease(items=np.arange(3), weights=np.zeros([3, 3], np.float32), num_movies=3,
                    info={})
  with pytest.raises(ValueError, match="diag"):
    model.score_fn(USERS, ITEMS, 4, leave_user_out=True)


def test_fit_rejects_a_bad_penalty_and_empty_train():
  counts = np.bincount(ITEMS, minlength=3)
  with pytest.raises(ValueError, match="l2"):
    ease.fit(USERS, ITEMS, 4, counts, l2=0.0, max_items=10)
  with pytest.raises(ValueError, match="needs train ratings"):
    ease.fit(np.array([], int), np.array([], int), 0, np.zeros(3, int), l2=1.0, max_items=10)


def test_factorize_reproduces_the_weights_at_full_rank_and_truncates_like_the_svd():
  weights = np.random.default_rng(3).normal(size=(12, 12))
  left, right = ease.factorize(weights, 12, seed=0)
  np.testing.assert_allclose(left @ right.T, weights, atol=1e-4)
  left, right = ease.factorize(weights, 3, seed=0)
  assert left.shape == right.shape == (12, 3)
  u, s, vt = np.linalg.svd(weights)
  best = (u[:, :3] * s[:3]) @ vt[:3]
  np.testing.assert_allclose(left @ right.T, best, atol=1e-3)
  # The singular values are split evenly: both sides have the same column norms.
  np.testing.assert_allclose(np.linalg.norm(left, axis=0), np.linalg.norm(right, axis=0),
                             rtol=1e-4)
  with pytest.raises(ValueError, match="rank must be >= 1"):
    ease.factorize(weights, 0, seed=0)
