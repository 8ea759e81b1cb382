"""Which movies make up a rating's context: the pure rule, shared by the Beam executor.

A user's train history is ordered most recent first: by timestamp, descending; ratings
with the same timestamp by movie id, descending byte order (so the order never depends
on file order or sharding). A rating's context is the first `max_context` movies of that
history other than the rating's own movie. The same rule serves both splits:

  * a train rating: its user's other train movies, earlier and later ones; never itself.
  * an eval rating: its user's train movies (never eval ones, never its own movie).

This is also the history the trained model stores for each user (the first
`max_context` movies of the whole train history), so the Evaluator's query (user id and
time, context filled from the stored history) sees what training examples saw.

Why not only earlier movies (a causal context)? With the random split the eval ratings are
spread over the whole history, and the query at serving uses everything the user rated:
causal contexts would train the towers on queries unlike the ones they serve.
"""
import itertools
from typing import Iterable, List, Sequence, Tuple

# Context padding: the raw feature always holds exactly max_context values.
PADDING = b""


def recent_first(history: Iterable[Tuple[int, bytes]]) -> List[bytes]:
  """Movie ids of (timestamp, movie_id) pairs, most recent first (ties: larger id first)."""
  return [movie_id for _, movie_id in sorted(history, reverse=True)]


def context_of(ordered_history: Sequence[bytes], own_movie: bytes,
               max_context: int) -> List[bytes]:
  """The first `max_context` movies of `ordered_history` other than `own_movie`, padded.

  Args:
    ordered_history: The user's train movie ids, most recent first (`recent_first`).
    own_movie: The rating's movie id; every occurrence is left out.
    max_context: Length of the result.

  Returns:
    Exactly `max_context` movie ids, padded at the end with `PADDING`.
  """
  if max_context < 1:
    raise ValueError(f"max_context must be >= 1, got {max_context}.")
  movies = list(itertools.islice((m for m in ordered_history if m != own_movie), max_context))
  return movies + [PADDING] * (max_context - len(movies))
