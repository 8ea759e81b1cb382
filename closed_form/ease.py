"""EASE (Steck 2019), the closed-form item-item baseline that the Evaluator fits on train.

    B = I - P·diag(1/diag(P)),   P = (XᵀX + λI)⁻¹,   diag(B) = 0,

with X the binary user x item matrix of the train split: B[i, j] = -P[i, j] / P[j, j], the
weights of a ridge regression of item j's column on every other item's column. A user's
score of item j is x_u · B[:, j]. On MovieLens it is a strong baseline for little cost (one
matrix inversion), so a trained retrieval model that does not beat it is not yet worth its
training; docs/model_quality.md has how the default model compares.

Cost: the Gram matrix and its inverse are dense [n, n] float64 (8 n² bytes, inverted in
place) plus the float32 weights (4 n²): 12 n² bytes, 4.8 GB at n = 20,000, and the
inversion's time grows as n³. Items are therefore capped at `max_items`, the most rated
ones (`select_items`); the others, like movies with no train rating (which EASE cannot
score), are never recommended.

Leave-user-out scores (`leave_user_out_scores`): x_u · B scores a user's own train movies
as the fit learned them, from that user's own row, so they outrank the held-out movies
in any metric that counts train movies (top_k_accuracy). Removing the user's row from the
fit is a rank-one update of P (Sherman-Morrison), computed per user from B and diag(P)
without refitting; it scores the user's train movies as EASE would for a user it never
saw, and leaves the order of the other movies as it was, so the seen-excluded metrics
(hit_rate) do not change.

Session rows (`Sessions`, used by the Trainer's EASE factor, not by the Evaluator's
baseline): MovieLens users rate in sittings, and the movies rated in one sitting go
together more than the rest of a long history says. Each run of `window` consecutive
ratings of a user's time-ordered train history is added to the fit as one more binary
row, weighted γ: the Gram matrix becomes XᵀX + γ·WᵀW, still positive semi-definite, so
the closed form is unchanged. What the rows add is the sittings' co-occurrence, which the
set of a user's movies cannot show. Whether they help depends on the data, so the
Trainer's validation slice chooses γ, 0 (plain EASE) included (docs/model_quality.md,
"How w, γ and the epoch are chosen"); the synthetic data has no sittings. The order only
shapes the fit: scoring still reads the set x_u. A leave-user-out score (below) removes
the user's row of X, not their session rows.

`dropout` p > 0 gives the full-rank EDLAE of Steck 2020 ("Autoencoders that don't overfit
towards the identity"): the penalty of item i becomes λ + p/(1-p)·(XᵀX)[i, i], as if
training dropped each input with probability p. The Evaluator fits plain EASE (p = 0);
benchmarks/ease_headroom.py measures EDLAE beside it.
"""
import dataclasses
import resource
import time
from typing import Dict, Optional, Tuple

from absl import logging
import numpy as np
from scipy import sparse
from scipy.linalg import lapack
from sklearn.utils import extmath

from ranking_core import scores as scores_lib


# Train ratings per chunk of users when accumulating XᵀX: bounds the sparse product's size.
_GRAM_CHUNK_RATINGS = 2_000_000
# Rows per block when mirroring the inverse's lower triangle onto its upper one.
_MIRROR_BLOCK = 2048


@dataclasses.dataclass(frozen=True)
class Ease:
  """Fitted EASE weights over a subset of the catalog.

  Attributes:
    items: Catalog columns the weights cover, ascending [n].
    weights: float32 [n, n], B restricted to `items`; zero diagonal.
    num_movies: Catalog size M.
    info: How it was fitted (metrics.json's "ease" section), see `fit`.
    precision_diagonal: float64 [n], diag(P) of the fit, which leave-user-out scores
      need; None for weights that did not come from `fit`.
  """
  items: np.ndarray
  weights: np.ndarray
  num_movies: int
  info: Dict[str, object]
  precision_diagonal: Optional[np.ndarray] = None

  def item_columns(self, movies: np.ndarray) -> np.ndarray:
    """The position in `items` of each catalog column, -1 where EASE has no weights."""
    item_of = np.full(self.num_movies, -1, np.int64)
    item_of[self.items] = np.arange(len(self.items))
    return item_of[np.asarray(movies, np.int64)]

  def score_fn(self, users: np.ndarray, movies: np.ndarray, num_users: int,
               leave_user_out: bool = False) -> scores_lib.ScoreFn:
    """Scores of user rows from their train (row, movie column) pairs.

    Args:
      users, movies: The rows' train pairs.
      num_users: Number of rows.
      leave_user_out: The pairs are exactly the rows' users' rows of the fit: score as if
        each user had been left out of it (`leave_user_out_scores`).

    Returns:
      rows [B] -> float32 [B, M]: x_u · B over `items` (leave-user-out if asked), -inf for
      every other movie.
    """
    if leave_user_out and self.precision_diagonal is None:
      raise ValueError("Leave-user-out scores need the fit's diag(P): use ease.fit.")
    x = binary_matrix(users, self.item_columns(movies), num_users, len(self.items),
                      np.float32)
    covers_catalog = len(self.items) == self.num_movies

    def score(rows: np.ndarray) -> np.ndarray:
      x_rows = x[rows]
      item_scores = np.asarray(x_rows @ self.weights)
      if leave_user_out:
        dense = x_rows.toarray()
        item_scores = leave_user_out_scores(dense, item_scores, dense, item_scores,
                                            self.precision_diagonal).astype(np.float32)
      if covers_catalog:
        return item_scores
      scores = np.full([len(rows), self.num_movies], -np.inf, np.float32)
      scores[:, self.items] = item_scores
      return scores

    return score


def select_items(train_counts: np.ndarray, max_items: int) -> Tuple[np.ndarray, bool]:
  """The catalog columns EASE models: rated in train, the `max_items` most rated.

  Returns:
    (items ascending, truncated): truncated is True when more movies were rated than
    `max_items`; ties at the cut keep the lower columns.
  """
  if max_items < 1:
    raise ValueError(f"max_items must be >= 1, got {max_items}.")
  rated = np.flatnonzero(np.asarray(train_counts) > 0)
  if len(rated) <= max_items:
    return rated, False
  most_rated = np.argsort(-np.asarray(train_counts), kind="stable")[:max_items]
  return np.sort(most_rated), True


def binary_matrix(users: np.ndarray, items: np.ndarray, num_users: int, num_items: int,
                  dtype=np.float64) -> sparse.csr_matrix:
  """The 0/1 user x item matrix of (user, item) pairs; items < 0 are left out."""
  keep = np.asarray(items) >= 0
  users, items = np.asarray(users)[keep], np.asarray(items)[keep]
  x = sparse.csr_matrix((np.ones(len(users), dtype), (users, items)),
                        shape=(num_users, num_items))
  x.sum_duplicates()
  x.data[:] = 1  # A movie rated twice by a user is still one interaction.
  return x


def gram_matrix(x: sparse.csr_matrix, out: Optional[np.ndarray] = None,
                weight: float = 1.0) -> np.ndarray:
  """Dense XᵀX (float64), accumulated over chunks of rows to bound the sparse product.

  Args:
    x: Sparse [rows, items].
    out: float64 [items, items] to add weight·XᵀX to (no second dense matrix); None: a
      new zero matrix.
    weight: Scale of every row's outer product.
  """
  num_items = x.shape[1]
  gram = np.zeros([num_items, num_items], np.float64) if out is None else out
  row_ends = np.searchsorted(x.indptr, np.arange(_GRAM_CHUNK_RATINGS, x.nnz,
                                                 _GRAM_CHUNK_RATINGS))
  bounds = [0, *row_ends.tolist(), x.shape[0]]
  for start, end in zip(bounds[:-1], bounds[1:]):
    if end > start:
      chunk = x[start:end]
      product = (chunk.T @ chunk).tocoo()  # No duplicate (row, col): += is exact.
      gram[product.row, product.col] += weight * product.data
  return gram


@dataclasses.dataclass(frozen=True)
class Sessions:
  """Session rows for `fit`: runs of consecutive ratings of a user, as extra rows.

  Attributes:
    timestamps: Time of each train rating, aligned with `fit`'s users and movies.
    window: Ratings per session row (>= 2).
    weight: γ, each session row's weight in the Gram matrix (0: plain EASE).
  """
  timestamps: np.ndarray
  window: int
  weight: float


def session_matrix(users: np.ndarray, items: np.ndarray, timestamps: np.ndarray,
                   num_items: int, window: int) -> sparse.csr_matrix:
  """Binary rows of `window` consecutive ratings of each user's time-ordered history.

  Each rating starts one row: it and the user's next `window` - 1 ratings in time (fewer
  at the end of the history); ties in time are ordered by item. Items < 0 are left out
  (they still count as places in the order). Rows never span two users.

  Returns:
    csr [ratings, num_items].
  """
  if window < 2:
    raise ValueError(f"A session row needs a window of at least 2 ratings, got {window}.")
  users = np.asarray(users, np.int64).reshape(-1)
  items = np.asarray(items, np.int64).reshape(-1)
  order = np.lexsort((items, np.asarray(timestamps).reshape(-1), users))
  users, items = users[order], items[order]
  rows, columns = [], []
  for offset in range(window):
    starts = np.arange(len(users) - offset)
    same_user = users[starts + offset] == users[starts]
    rows.append(starts[same_user])
    columns.append(items[starts[same_user] + offset])
  rows, columns = np.concatenate(rows), np.concatenate(columns)
  return binary_matrix(rows, columns, len(users), num_items)


def weights_from_gram(gram: np.ndarray, l2: float, dropout: float = 0.0) -> np.ndarray:
  """B = I - P·diag(1/diag(P)), P = (gram + Λ)⁻¹, zero diagonal; overwrites `gram`.

  `weights_and_precision_diagonal` also returns diag(P).
  """
  return weights_and_precision_diagonal(gram, l2, dropout)[0]


def weights_and_precision_diagonal(gram: np.ndarray, l2: float, dropout: float = 0.0
                                   ) -> Tuple[np.ndarray, np.ndarray]:
  """(B, diag(P)) of `weights_from_gram`; overwrites `gram`.

  Λ is diagonal: l2 + dropout/(1-dropout)·gram[i, i] (l2·I for EASE, dropout 0). The
  inverse is a Cholesky factorization and inversion (LAPACK potrf/potri), in place:
  gram + Λ is symmetric positive definite for l2 > 0.
  """
  if not l2 > 0:
    raise ValueError(f"The EASE l2 penalty must be > 0, got {l2}.")
  if not 0 <= dropout < 1:
    raise ValueError(f"The EDLAE dropout must be in [0, 1), got {dropout}.")
  diagonal = np.diag_indices_from(gram)
  gram[diagonal] += l2 + dropout / (1 - dropout) * gram[diagonal]
  # gram is symmetric, so its transpose is the same matrix in Fortran order, which LAPACK
  # can overwrite without a copy; its "upper" triangle is gram's lower one.
  factor, info = lapack.dpotrf(gram.T, lower=0, clean=0, overwrite_a=1)
  _check_lapack(info, "factorize")
  inverse, info = lapack.dpotri(factor, lower=0, overwrite_c=1)
  _check_lapack(info, "invert")
  precision = inverse.T  # C order again; its lower triangle holds P.
  _mirror_lower_triangle(precision)
  diagonal = np.diag(precision).copy()
  precision /= -diagonal[None, :]
  np.fill_diagonal(precision, 0.0)
  return precision, diagonal


def leave_user_out_scores(x: np.ndarray, xb: np.ndarray, fitted: np.ndarray,
                          fitted_b: np.ndarray, precision_diagonal: np.ndarray) -> np.ndarray:
  """EASE scores of rows `x` with weights refitted without each row's user.

  Removing user u's row f (binary [n]) from XᵀX + Λ is a rank-one update of its inverse:

      a = P f,   c = f · a (< 1),   P₋ᵤ = P + a aᵀ / (1 - c),

  and the user's scores with the refitted B₋ᵤ = I - P₋ᵤ diag(1/diag(P₋ᵤ)) are

      x B₋ᵤ = x - (x P + (x · a) a / (1 - c)) / (diag(P) + a² / (1 - c)),

  where x P = (x - x B) ∘ diag(P), since P = (I - B) diag(diag(P)). No [n, n] matrix is
  formed per user: each row costs the x B products its caller already has.

  Args:
    x: float [B, n], the binary rows to score.
    xb: float [B, n], x @ B.
    fitted: float [B, n], each row's user's row in the fit (all zeros for a user the
      fit never saw, whose scores are then x @ B unchanged); often `x` itself.
    fitted_b: float [B, n], fitted @ B.
    precision_diagonal: float [n], diag(P) of the fit.

  Returns:
    float64 [B, n], the leave-user-out scores.
  """
  d = np.asarray(precision_diagonal, np.float64)[None, :]
  x = np.asarray(x, np.float64)
  fitted = np.asarray(fitted, np.float64)
  a = (fitted - fitted_b) * d
  c = np.sum(a * fitted, axis=1, keepdims=True)
  t = 1.0 / (1.0 - c)
  x_p = (x - xb) * d
  return x - (x_p + np.sum(x * a, axis=1, keepdims=True) * t * a) / (d + t * a * a)


def fit(users: np.ndarray, movies: np.ndarray, num_users: int,
        train_counts: np.ndarray, l2: float, max_items: int, dropout: float = 0.0,
        sessions: Optional[Sessions] = None) -> Ease:
  """Fits EASE on train (user, movie column) pairs of every train user.

  Args:
    users: User index of each train rating, in [0, num_users).
    movies: Catalog column of each train rating.
    num_users: Number of train users.
    train_counts: Train ratings per catalog column [M] (decides which items are modelled).
    l2: The ridge penalty λ (> 0).
    max_items: At most this many items, the most rated.
    dropout: EDLAE's input dropout p (module docstring); 0, the default, is EASE.
    sessions: Session rows added to the fit (module docstring), or None.

  Returns:
    The weights, and `info`: l2, num_items, num_movies, rated_movies, max_items,
    truncated, fit_seconds, working_mib (the dense matrices' size, MiB) and
    peak_rss_mib (the process's peak resident memory after the fit, MiB).
  """
  started = time.perf_counter()
  items, truncated = select_items(train_counts, max_items)
  if not len(items):
    raise ValueError("EASE needs train ratings; the train split has none.")
  item_of = np.full(len(train_counts), -1, np.int64)
  item_of[items] = np.arange(len(items))
  gram = gram_matrix(binary_matrix(users, item_of[movies], num_users, len(items)))
  if sessions is not None and sessions.weight:
    gram_matrix(session_matrix(users, item_of[movies], sessions.timestamps, len(items),
                               sessions.window), out=gram, weight=sessions.weight)
  weights, precision_diagonal = weights_and_precision_diagonal(gram, l2, dropout)
  weights = weights.astype(np.float32)
  del gram
  info = {
      "l2": float(l2), **_session_info(sessions), "num_items": int(len(items)),
      "num_movies": int(len(train_counts)),
      "rated_movies": int((np.asarray(train_counts) > 0).sum()), "max_items": int(max_items),
      "truncated": bool(truncated), "fit_seconds": round(time.perf_counter() - started, 2),
      "working_mib": round(12 * len(items) ** 2 / 2**20, 1),
      # ru_maxrss is in KiB on Linux.
      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
  }
  logging.info("EASE: fitted %d items (%s) with l2 %g in %.1f s; dense matrices %.0f MiB, "
               "process peak RSS %.0f MiB.", len(items),
               f"the {max_items} most rated of {info['rated_movies']} rated movies"
               if truncated else "every movie rated in train", l2, info["fit_seconds"],
               info["working_mib"], info["peak_rss_mib"])
  return Ease(items=items, weights=weights, num_movies=len(train_counts), info=info,
              precision_diagonal=precision_diagonal)


def _session_info(sessions: Optional[Sessions]) -> Dict[str, object]:
  if sessions is None or not sessions.weight:
    return {}
  return {"session_window": int(sessions.window), "session_weight": float(sessions.weight)}


def _mirror_lower_triangle(matrix: np.ndarray) -> None:
  """Copies the lower triangle onto the upper one, in blocks of rows (little extra memory)."""
  n = len(matrix)
  for start in range(0, n, _MIRROR_BLOCK):
    end = min(start + _MIRROR_BLOCK, n)
    block = matrix[start:end, start:end]
    block[...] = np.tril(block) + np.tril(block, -1).T
    matrix[start:end, end:] = matrix[end:, start:end].T


def _check_lapack(info: int, what: str) -> None:
  if info != 0:
    raise np.linalg.LinAlgError(
        f"EASE could not {what} XᵀX + λI (LAPACK info {info}); is the l2 penalty > 0?")


def factorize(weights: np.ndarray, rank: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
  """Rank-`rank` factors of EASE's weights: (left, right), each float32 [n, rank], with
  left @ right.T the best rank-`rank` approximation of `weights` (a truncated SVD, the
  singular values split evenly between the two sides).

  A user's EASE score of item j, x_u · B[:, j], is then approximately (x_u @ left) ·
  right[j]: a dot product of a user vector and an item vector, which a two-tower index
  serves. The rank trades the index's vector size against how much of EASE's ranking
  survives truncation (docs/model_quality.md).
  """
  if not 1 <= rank:
    raise ValueError(f"The EASE factor's rank must be >= 1, got {rank}.")
  rank = min(rank, len(weights))
  u, s, vt = extmath.randomized_svd(weights, rank, random_state=seed)
  root = np.sqrt(s)
  return (u * root).astype(np.float32), (vt.T * root).astype(np.float32)
