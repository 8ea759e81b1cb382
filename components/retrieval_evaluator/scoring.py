"""Score functions (`scores_lib.ScoreFn`) of a two-tower model and of the popularity baseline.

Each maps user rows [B] to scores over the whole catalog [B, M]; EASE has its own in
closed_form/ease.py. A movie a model cannot score gets -inf, which the metrics never count
as retrieved.
"""
import numpy as np

from ranking_core import scores as scores_lib


def embedding_score_fn(queries: np.ndarray, candidates: np.ndarray,
                       present: np.ndarray) -> scores_lib.ScoreFn:
  """Dot products of query rows [U, d] with candidate rows [M, d]; absent movies -inf.

  A multi-vector query [U, H, d] scores each movie by its best-matching vector
  (`ranking_core.scores.query_scores`, as the serving index does).

  Args:
    queries: Query embeddings, row i for user row i.
    candidates: Candidate embeddings in catalog column order.
    present: Bool [M]; False for catalog movies the model does not know (a baseline
      trained before they appeared).
  """
  candidates_t = np.ascontiguousarray(candidates.T)
  absent = np.flatnonzero(~present)

  def score(rows: np.ndarray) -> np.ndarray:
    scores = scores_lib.query_scores(queries[rows], candidates_t)
    scores[:, absent] = -np.inf
    return scores

  return score


def with_fallback(score_fn: scores_lib.ScoreFn, fallback: scores_lib.ScoreFn,
                  has_history: np.ndarray) -> scores_lib.ScoreFn:
  """`score_fn`'s scores, but `fallback`'s for the user rows without train ratings
  (`has_history` False, bool [U]): a model of the history, such as EASE, scores every
  movie 0 for them, a list in catalog order."""
  def score(rows: np.ndarray) -> np.ndarray:
    scores = score_fn(rows)
    cold = ~has_history[rows]
    if cold.any():
      scores = np.array(scores)  # A writable copy, whatever score_fn returned.
      scores[cold] = fallback(rows[cold])
    return scores

  return score


def popularity_score_fn(train_counts: np.ndarray) -> scores_lib.ScoreFn:
  """Every user gets the same scores: each movie's number of train ratings.

  float32 holds counts exactly up to 2**24 ratings of one movie, far above MovieLens
  (ml-25m's most rated movie has ~80k), and halves the ranking's memory traffic.
  """
  scores = np.asarray(train_counts).astype(np.float32)
  return lambda rows: np.broadcast_to(scores, (len(rows), len(scores)))
