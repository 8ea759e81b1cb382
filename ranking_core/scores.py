"""How query embeddings score movies, and the key the ranking stage orders by."""
from typing import Callable

import numpy as np

# User rows (int [B]) -> float [B, M] scores of every movie column: how the Evaluator,
# its baselines and the Trainer's validation hand scores to `rankings.rank`.
ScoreFn = Callable[[np.ndarray], np.ndarray]

# Added to a standard deviation before dividing by it: a row of equal values stays finite.
STD_EPSILON = 1e-6


def query_scores(queries: np.ndarray, candidates_t: np.ndarray) -> np.ndarray:
  """Scores of query embeddings against candidate embeddings, as the serving index ranks.

  A query is one vector or several (a multi-vector query); a movie's score is the dot
  product with its best-matching query vector.

  Args:
    queries: float32 [U, d] or [U, H, d], the query model's "embedding" output.
    candidates_t: float32 [d, M], the candidate embeddings transposed.

  Returns:
    float32 [U, M].
  """
  if queries.ndim == 2:
    return queries @ candidates_t
  users, heads, dim = queries.shape
  per_vector = queries.reshape(users * heads, dim) @ candidates_t
  return per_vector.reshape(users, heads, -1).max(axis=1)


def ranked_order_key(scores: np.ndarray, ratings: np.ndarray, weight: float) -> np.ndarray:
  """The key serving_ranked orders each row's retrieved movies by, highest first.

  (1 - weight) x standardized retrieval score + weight x standardized predicted rating,
  both standardized over the row (mean 0, std 1, `STD_EPSILON` added to the std). The
  serving model computes the same in TensorFlow; tests check the two agree.

  Args:
    scores: float [U, N], the retrieval scores of each row's N retrieved movies.
    ratings: float [U, N], their predicted ratings.
    weight: In [0, 1]: 1 orders by predicted rating alone, 0 keeps retrieval's order.
  """
  def standardized(values):
    values = np.asarray(values, np.float64)
    mean = values.mean(axis=-1, keepdims=True)
    return (values - mean) / (values.std(axis=-1, keepdims=True) + STD_EPSILON)

  return ((1 - weight) * standardized(scores) + weight * standardized(ratings)).astype(
      np.float32)
