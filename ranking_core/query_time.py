"""Which held-out rating sets a user's query time."""
import numpy as np


def query_time_rows(users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
  """The row that sets each user's query time: the lower median of their held-out times.

  The Evaluator queries an eval user at the median time of their eval ratings (the lower
  of the two middle ones for an even count, so a real rating time), and the Trainer's
  validation queries a validation user the same way, so a tower that reads the time
  (`user_id`, `--history_time`) is chosen by validation as it is then evaluated.

  Args:
    users: int [N], the user position of each held-out rating; every position in
      [0, max + 1) has at least one.
    timestamps: int [N], each rating's time.

  Returns:
    int64 [num users], for each user position the index of a row in `users` whose time
    is that user's query time (rows with equal times count in row order, so the
    choice is deterministic).
  """
  order = np.lexsort((timestamps, users))  # A stable sort: equal times keep row order.
  counts = np.bincount(users)
  if not counts.all():
    raise ValueError(f"User positions {np.flatnonzero(counts == 0)[:5].tolist()} have no "
                     "held-out ratings; every position needs one to set a query time.")
  starts = np.cumsum(counts) - counts
  return order[starts + (counts - 1) // 2].astype(np.int64)
