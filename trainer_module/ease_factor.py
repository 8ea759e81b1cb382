"""The EASE factor: low-rank EASE appended to the towers' embeddings, served by one index.

EASE (closed_form/ease.py) scores movie j for user u as x_u · B[:, j], from the user's
whole train history x_u. Factorized to rank r (B ≈ L Rᵀ), that score is the dot product
(x_u L) · R[j]. Appending w·(x_u L) to the query embedding and R[j] to movie j's candidate
embedding makes the index's one dot product

    score(u, j) = cos(query tower(u), candidate tower(j)) + w · (x_u L) · R[j],

so the serving model, the query model and the exported candidate embeddings stay a plain
two-tower retrieval model (a BruteForce index, or any ANN service) while each query also
reads the user's whole train history, which the towers' `max_context` movies do not. A
multi-vector query gets the same factor on each of its vectors: the best vector is the
same, and its score gains the same term.

A user the fit saw gets, instead of x_u L, the projection onto R's columns of their
leave-user-out EASE scores (`ease.leave_user_out_scores`): in-sample, EASE scores a
user's own train movies from that user's own row, so they outrank every held-out movie,
and a factor built from them cost top_k_accuracy (which counts train movies) more than
the towers gained on the hit rates. Left out, the user's train movies are scored as a new
user's would be; the order of the other movies barely changes.

The EASE fitted here may carry session rows (closed_form/ease.py, `ease.Sessions`: runs of
consecutive ratings of a user as extra rows of the fit), whose weight the Trainer chooses
on the validation slice with w. They shape only B: the user vector is still read from the
set of the user's movies, so a given context needs no timestamps.

Why: the towers read a user's `max_context` most recent movies, EASE their whole train
history, and users with long histories are where EASE beats the towers. The weight w is
chosen on the Trainer's validation slice, never the eval split, 0 dropping the factor
(trainer_module/ease_factor_selection.py); docs/model_quality.md has the measurements.
"""
import dataclasses
from typing import Dict, Optional

import numpy as np
from scipy import sparse

from closed_form import ease


# Users per block when scoring the catalog for user vectors: bounds the dense [users,
# items] scores (float64) to about 1024 x 8 x items bytes.
_USER_BLOCK = 1024


@dataclasses.dataclass(frozen=True)
class EaseFactor:
  """A fitted factor, indexed by the Transform's movie indices.

  Attributes:
    query_rows: float32 [movies, r], L's row of each movie (zero for movies EASE does not
      model, OOV buckets included): the factor of a history EASE was not fitted on (a
      context given at serving) is the sum over its movies.
    candidate_rows: float32 [movies, r], R's row of each movie, likewise.
    weight: w, the factor's share of the score (0: not used).
    info: How EASE was fitted (`closed_form.ease.fit`'s info) and the rank.
    ease_model: The fitted EASE weights (columns are movie indices), which `user_vectors` scores
      with.
    fitted: Binary [users, items of `ease`], each user's row of the fit.
    singular_values: float64 [r], R's column norms squared (R = V·diag(s)^½).
  """
  query_rows: np.ndarray
  candidate_rows: np.ndarray
  weight: float
  info: Dict[str, object]
  ease_model: ease.Ease
  fitted: sparse.csr_matrix
  singular_values: np.ndarray

  @property
  def rank(self) -> int:
    return int(self.query_rows.shape[1])

  def user_vectors(self, users: np.ndarray, movies: np.ndarray, num_users: int) -> np.ndarray:
    """float32 [num_users, r]: each user index's factor from (user, movie) index pairs,
    each distinct pair counted once (EASE's binary x_u).

    The vector is the user's leave-user-out EASE scores (`ease.leave_user_out_scores`:
    EASE refitted without the user's row of the fit) projected onto R's columns, so that
    its dot product with R[j] is the rank-r part of those scores. A user outside the fit
    gets x_u L, the same as summing `query_rows`; a user in it no longer gets their own
    train movies scored from their own row, which in-sample EASE ranks above every
    held-out movie.
    """
    items = self.ease_model.item_columns(movies)
    x = ease.binary_matrix(np.asarray(users, np.int64).reshape(-1), items.reshape(-1),
                           num_users, len(self.ease_model.items), np.float32)
    fitted = _rows(self.fitted, num_users)
    basis = self.candidate_rows[self.ease_model.items].astype(np.float64) / self.singular_values
    vectors = np.zeros([num_users, self.rank], np.float32)
    has_rows = np.flatnonzero(np.diff(x.indptr) > 0)
    for start in range(0, len(has_rows), _USER_BLOCK):
      rows = has_rows[start:start + _USER_BLOCK]
      x_rows, fitted_rows = x[rows], fitted[rows]
      x_dense, xb = x_rows.toarray(), np.asarray(x_rows @ self.ease_model.weights)
      if (x_rows != fitted_rows).nnz == 0:  # The rows are the fit's: one product serves.
        fitted_dense, fitted_b = x_dense, xb
      else:
        fitted_dense = fitted_rows.toarray()
        fitted_b = np.asarray(fitted_rows @ self.ease_model.weights)
      scores = ease.leave_user_out_scores(x_dense, xb, fitted_dense, fitted_b,
                                          self.ease_model.precision_diagonal)
      vectors[rows] = scores @ basis
    return vectors

  def for_serving(self, users: np.ndarray, movies: np.ndarray,
                  num_users: int) -> "ServingFactor":
    """The exports' form, user vectors from every (user, movie) index pair given."""
    return ServingFactor(query_rows=self.weight * self.query_rows,
                         user_vectors=self.weight * self.user_vectors(users, movies, num_users),
                         candidate_rows=self.candidate_rows)

  def with_weight(self, weight: float) -> "EaseFactor":
    return dataclasses.replace(self, weight=float(weight))


def _rows(matrix: sparse.csr_matrix, num_rows: int) -> sparse.csr_matrix:
  """`matrix` with exactly `num_rows` rows: cut, or padded with empty rows."""
  if matrix.shape[0] >= num_rows:
    return matrix[:num_rows]
  return sparse.vstack([matrix, sparse.csr_matrix((num_rows - matrix.shape[0],
                                                   matrix.shape[1]))], format="csr")


@dataclasses.dataclass(frozen=True)
class ServingFactor:
  """The factor as the exports hold it, the weight folded into the query side.

  Attributes:
    query_rows: float32 [movies, r], w·L by movie index: a given context's factor is the
      sum of its movies' rows.
    user_vectors: float32 [users, r], w·x_u L by user index from the user's every train
      rating: the factor of a query that gives no context (zero for OOV users).
    candidate_rows: float32 [movies, r], R by movie index.
  """
  query_rows: np.ndarray
  user_vectors: np.ndarray
  candidate_rows: np.ndarray


def fit(users: np.ndarray, movies: np.ndarray, num_users: int, num_movies: int, rank: int,
        l2: float, max_items: int, seed: int,
        sessions: Optional[ease.Sessions] = None) -> EaseFactor:
  """Fits EASE on (user index, movie index) pairs and factorizes it to `rank`.

  `sessions` (timestamps aligned with the pairs) adds session rows to the fit
  (closed_form/ease.py). Returns the factor with weight 0 (`with_weight` sets
  it).
  """
  users = np.asarray(users, np.int64).reshape(-1)
  movies = np.asarray(movies, np.int64).reshape(-1)
  fitted = ease.fit(users, movies, num_users, np.bincount(movies, minlength=num_movies), l2,
                    max_items, sessions=sessions)
  left, right = ease.factorize(fitted.weights, rank, seed)
  query_rows = np.zeros([num_movies, left.shape[1]], np.float32)
  candidate_rows = np.zeros_like(query_rows)
  query_rows[fitted.items] = left
  candidate_rows[fitted.items] = right
  return EaseFactor(
      query_rows=query_rows, candidate_rows=candidate_rows, weight=0.0,
      info={**fitted.info, "rank": int(left.shape[1])}, ease_model=fitted,
      fitted=ease.binary_matrix(users, fitted.item_columns(movies), num_users,
                                len(fitted.items), np.float32),
      singular_values=np.sum(np.square(right.astype(np.float64)), axis=0))
