"""The validation slice: the validation split UserContext carved from train, in the form
the validation hit rate ranks (one query per user, the pairs held out and excluded, the
candidate movies).

Only the validation split's examples are read whole (a small share of train); the
train split contributes its (user, movie) pairs (`data.Interactions`).
"""
import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from contracts import features
from ranking_core import query_time
from trainer_module import data
from trainer_module import inputs


@dataclasses.dataclass(frozen=True)
class ValidationSlice:
  """Train-split ratings held out to choose the epoch, never the eval split.

  Attributes:
    files: The validation split's transformed files (the validation loss reads them).
    num_examples: Ratings in the validation split.
    queries: One row per validation user: the query features of the user's rating at
      the query time (the lower median of the user's held-out times,
      `ranking_core.query_time.query_time_rows`), the context (with histories) the
      user's fitted train movies, most recent first.
    query_users: The user index of each query row.
    users, movies: Held-out (user, movie index) pairs; `users` are query row positions.
    train_users, train_movies: The pairs the validation users rated in the fitted train
      split (excluded from rankings, as the Evaluator excludes train movies); users as
      positions likewise.
    candidate_movies: int [c], sorted: every movie of the train split (fitted and held
      out), the movies ranked.
    candidates: The candidate tower's input for `candidate_movies`, in that order.
  """
  files: Sequence[str]
  num_examples: int
  queries: Dict[str, tf.Tensor]
  query_users: np.ndarray
  users: np.ndarray
  movies: np.ndarray
  train_users: np.ndarray
  train_movies: np.ndarray
  candidate_movies: np.ndarray
  candidates: Dict[str, tf.Tensor]


def build(files: Sequence[str], tft_output: tft.TFTransformOutput,
          fitted: data.Interactions, catalog: List[Dict[str, tf.Tensor]],
          max_title_tokens: int, histories: Optional[np.ndarray] = None,
          max_context: int = 0) -> ValidationSlice:
  """The slice of the validation split `files`.

  Args:
    files: The transformed validation split.
    tft_output: The Transform output.
    fitted: The fitted train split's pairs.
    catalog: The transformed catalog (`data.transformed_catalog`).
    max_title_tokens: As in training.
    histories: `data.UserHistories.fitted`, or None when the towers read no context.
    max_context: Context width.

  Raises:
    ValueError: The validation split is empty.
  """
  rows = inputs.read_all(files, tft_output, max_title_tokens)
  count = int(rows[features.MOVIE_ID_INDEX].shape[0]) if rows else 0
  if not count:
    raise ValueError("The validation split is empty: raise --validation_fraction so that "
                     "some train ratings are held out, or set it to 0 for no validation.")
  users = rows[features.USER_ID_INDEX].numpy().reshape(-1).astype(np.int64)
  movies = rows[features.MOVIE_ID_INDEX].numpy().reshape(-1).astype(np.int64)
  validation_users, positions = np.unique(users, return_inverse=True)
  positions = positions.reshape(-1)
  query_rows = query_time.query_time_rows(
      positions, rows[features.TIMESTAMP_SECONDS].numpy().reshape(-1))
  queries = {name: tf.gather(value, query_rows) for name, value in rows.items()}
  if histories is not None:
    queries[features.CONTEXT_MOVIE_INDICES] = inputs.join_context(
        tf.constant(histories), queries[features.USER_ID_INDEX],
        queries[features.MOVIE_ID_INDEX], max_context)
  fitted_users = fitted.users.astype(np.int64)
  position = np.minimum(np.searchsorted(validation_users, fitted_users),
                        len(validation_users) - 1)
  is_validation_user = validation_users[position] == fitted_users
  candidate_movies = np.unique(np.concatenate([fitted.movies.astype(np.int64), movies]))
  return ValidationSlice(
      files=list(files), num_examples=count, queries=queries,
      query_users=validation_users, users=positions, movies=movies,
      train_users=position[is_validation_user],
      train_movies=fitted.movies[is_validation_user].astype(np.int64),
      candidate_movies=candidate_movies,
      candidates=catalog_rows(catalog, candidate_movies))


def catalog_rows(catalog: List[Dict[str, tf.Tensor]], movies: np.ndarray
                 ) -> Dict[str, tf.Tensor]:
  """The candidate tower's input of `movies` (sorted indices), from the transformed
  catalog. Raises ValueError when one of them is not in the catalog."""
  names = (features.MOVIE_ID_INDEX, features.TITLE_TOKENS, features.GENRE_INDICES)
  parts: Dict[str, List[tf.Tensor]] = {name: [] for name in names}
  found = []
  for batch in catalog:
    indices = features.to_vector(batch[features.MOVIE_ID_INDEX]).numpy()
    at = np.minimum(np.searchsorted(movies, indices), len(movies) - 1)
    keep = np.flatnonzero(movies[at] == indices)
    found.append(indices[keep])
    for name in names:
      if name in batch:
        parts[name].append(tf.gather(batch[name], keep))
  found = np.concatenate(found) if found else np.zeros([0], np.int64)
  unique, first = np.unique(found, return_index=True)
  if len(unique) != len(movies):
    missing = np.setdiff1d(movies, unique)[:5].tolist()
    raise ValueError(f"Movie indices {missing} are rated in training but missing from the "
                     "catalog.")
  return {name: tf.gather(inputs.concat_rows(values), first)
          for name, values in parts.items() if values}
