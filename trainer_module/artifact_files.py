"""The plain files the Trainer writes beside its SavedModels: each training user's seen movies
(serving.SEEN_MOVIES_FILE), the candidate ids and vectors and the training history
(contracts.artifacts' layout).

Light on purpose: `recommend` and the benchmarks read these without loading the Transform
library or the model code.
"""
import gzip
import json
import os
from typing import Dict, List, Mapping, Sequence

import numpy as np
import tensorflow as tf

from contracts import artifacts
from contracts import serving


def write_seen_movies(serving_model_dir: str, seen_movies: Mapping[str, Sequence[str]]) -> None:
  """Writes `user_id<TAB>movie_id,movie_id,...` lines, gzipped, under assets.extra/."""
  path = os.path.join(serving_model_dir, serving.SEEN_MOVIES_FILE)
  tf.io.gfile.makedirs(os.path.dirname(path))
  lines = "".join(f"{user}\t{','.join(movies)}\n" for user, movies in sorted(seen_movies.items()))
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(gzip.compress(lines.encode(), mtime=0))


def read_seen_movies(serving_model_dir: str) -> Dict[str, List[str]]:
  """Inverse of `write_seen_movies`; {} if the model has no history file."""
  path = os.path.join(serving_model_dir, serving.SEEN_MOVIES_FILE)
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path, "rb") as f:
    text = gzip.decompress(f.read()).decode()
  return {user: movies.split(",") if movies else []
          for user, movies in (line.split("\t", 1) for line in text.splitlines())}


def write_candidates(model_uri: str, movie_ids: List[bytes], embeddings: np.ndarray) -> None:
  """Candidate ids and vectors, the form an ANN service (ScaNN, Vertex Vector Search) loads."""
  tf.io.gfile.makedirs(os.path.dirname(artifacts.embeddings_path(model_uri)))
  with tf.io.gfile.GFile(artifacts.movie_ids_path(model_uri), "w") as f:
    f.write("".join(movie_id.decode() + "\n" for movie_id in movie_ids))
  with tf.io.gfile.GFile(artifacts.embeddings_path(model_uri), "wb") as f:
    np.save(f, embeddings.astype(np.float32))


def write_history(model_uri: str, history: Mapping[str, Sequence[float]]) -> None:
  """Per-epoch training history as JSON, where `artifacts.training_history_path` says."""
  path = artifacts.training_history_path(model_uri)
  tf.io.gfile.makedirs(model_uri)
  with tf.io.gfile.GFile(path, "w") as f:
    json.dump({name: [float(value) for value in values] for name, values in history.items()},
              f, indent=1)
