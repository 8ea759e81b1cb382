"""Columnar conversion of parsed MovieLens rows to serialized tf.Examples.

Rows are assembled as Arrow list arrays and serialized by tfx_bsl's C++ encoder, which
serializes a whole batch in C++ instead of building one tf.train.Example proto per rating
in Python: what matters at ml-25m's 25 million ratings.
"""
from typing import List, Mapping, Sequence

import numpy as np
import pyarrow as pa
from tfx_bsl.coders import example_coder

from contracts import features
from movielens import formats


def _single_values(values: pa.Array) -> pa.ListArray:
  """Wraps each value in a one-element list (a feature with exactly one value)."""
  offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32))
  return pa.ListArray.from_arrays(offsets, values)


def _genre_lists(movies: Sequence[formats.Movie]) -> pa.ListArray:
  lengths = np.fromiter((len(m.genres) for m in movies), dtype=np.int32, count=len(movies))
  offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int32)])
  values = pa.array([g.encode() for m in movies for g in m.genres], pa.binary())
  return pa.ListArray.from_arrays(pa.array(offsets), values)


def _movie_columns(movies: Sequence[formats.Movie]) -> Mapping[str, pa.Array]:
  return {
      features.MOVIE_ID: _single_values(
          pa.array([m.movie_id.encode() for m in movies], pa.binary())),
      features.MOVIE_TITLE: _single_values(
          pa.array([m.title.encode() for m in movies], pa.binary())),
      features.MOVIE_GENRES: _genre_lists(movies),
  }


def _encode(columns: Mapping[str, pa.Array]) -> List[bytes]:
  record_batch = pa.RecordBatch.from_arrays(list(columns.values()), list(columns.keys()))
  return example_coder.RecordBatchToExamplesEncoder().encode(record_batch)


def movies_to_examples(movies: Sequence[formats.Movie]) -> List[bytes]:
  """Serialized catalog examples: movie_id, movie_title, movie_genres."""
  return _encode(_movie_columns(movies))


def ratings_to_examples(user_ids: Sequence[str], movie_ids: Sequence[str],
                        ratings: np.ndarray, timestamps: np.ndarray,
                        catalog: Mapping[str, formats.Movie]) -> List[bytes]:
  """Serialized rating examples, each joined with its movie's title and genres.

  Args:
    user_ids: Decimal user ids.
    movie_ids: Decimal movie ids; every one must be in `catalog`.
    ratings: float32 ratings.
    timestamps: int64 Unix seconds.
    catalog: movie_id -> Movie.

  Returns:
    One serialized tf.Example per rating, in input order, with the features of
    `features.RATING_FEATURES`.
  """
  movies = [catalog[movie_id] for movie_id in movie_ids]
  columns = {
      features.USER_ID: _single_values(
          pa.array([u.encode() for u in user_ids], pa.binary())),
      **_movie_columns(movies),
      features.TIMESTAMP: _single_values(pa.array(timestamps, pa.int64())),
      features.USER_RATING: _single_values(pa.array(ratings, pa.float32())),
  }
  return _encode(columns)
