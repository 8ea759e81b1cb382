"""Inputs of the RetrievalEvaluator: eval/train pairs, the candidate catalog, queries.

Everything is turned into integer arrays once: users become rows of a query table (the
eval users, sorted by id, possibly sampled) and movies become columns in the order of the
current model's catalog (`candidate_embeddings/movie_ids.txt`). Only three raw features
are parsed (user_id, movie_id, timestamp), and the string lookups run inside tf.data, so
reading ml-25m's 25M ratings needs a few hundred MB of integer arrays, not the strings.
`read_ratings` streams any raw features of a split the same way (ranking.py reads the
ratings with it).
The movie titles (for the report) come from the small catalog, when it is given.
"""
import dataclasses
import json
import os
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, Tuple)

from absl import logging
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.types import artifact_utils

from contracts import artifacts
from contracts import features
from contracts import serving
from ranking_core import query_time

# The catalog column of each rating, in the batches `read_ratings` yields.
MOVIES = "movies"

_READ_BATCH_SIZE = 65_536
_QUERY_BATCH_SIZE = 4_096
_MISSING = -1
# Train users are told apart by a 62-bit hash of their id (computed inside tf.data): for
# ml-25m's 162k users the chance of any collision is about 1e-9.
_USER_HASH_BUCKETS = 2**62


@dataclasses.dataclass(frozen=True)
class EvalData:
  """The evaluation problem, in catalog column order.

  Attributes:
    user_ids: Eval user ids (bytes) [U]; query row i is user_ids[i]. Sorted by id.
    query_timestamps: int64 [U], the timestamp each user's query is made at.
    eval_users, eval_movies: Eval (row, column) pairs of these users.
    train_users, train_movies: Train (row, column) pairs of these users (exclusion).
    train_timestamps: Timestamp of each of those train pairs.
    train_counts: int64 [M], train ratings of each movie, over ALL train users.
    all_train_users, all_train_movies: Every train rating as (user index in
      [0, num_train_users), column), int32: what EASE is fitted on.
    num_train_users: Distinct users of the train split.
    total_eval_users: Eval users before sampling.
  """
  user_ids: np.ndarray
  query_timestamps: np.ndarray
  eval_users: np.ndarray
  eval_movies: np.ndarray
  train_users: np.ndarray
  train_movies: np.ndarray
  train_timestamps: np.ndarray
  train_counts: np.ndarray
  all_train_users: np.ndarray
  all_train_movies: np.ndarray
  num_train_users: int
  total_eval_users: int

  @property
  def sampled(self) -> bool:
    return len(self.user_ids) < self.total_eval_users

  @property
  def queries(self) -> Dict[str, np.ndarray]:
    """Raw query features of each eval user's query (row i: user_ids[i])."""
    return {features.USER_ID: self.user_ids, features.TIMESTAMP: self.query_timestamps}


@dataclasses.dataclass(frozen=True)
class Candidates:
  """A model's catalog: movie ids and their embeddings, row i for movie_ids[i]."""
  movie_ids: List[str]
  embeddings: np.ndarray

  @classmethod
  def load(cls, model_uri: str) -> "Candidates":
    """Reads `candidate_embeddings/` of a Model artifact; checks the two files agree."""
    ids_path = artifacts.movie_ids_path(model_uri)
    embeddings_path = artifacts.embeddings_path(model_uri)
    for path in (ids_path, embeddings_path):
      if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"The model has no {path}; is it a retrieval Trainer's "
                                "output (see contracts/artifacts.py)?")
    with tf.io.gfile.GFile(ids_path, "r") as f:
      movie_ids = f.read().splitlines()
    with tf.io.gfile.GFile(embeddings_path, "rb") as f:
      embeddings = np.load(f)
    _check_candidates(movie_ids, embeddings, ids_path, embeddings_path)
    return cls(movie_ids, embeddings.astype(np.float32, copy=False))

  def aligned_to(self, catalog: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Embeddings in the order of another `catalog`, and which of its movies we have.

    Returns:
      (embeddings [len(catalog), d], present bool [len(catalog)]); a movie absent from
      this model's catalog gets a zero row and present=False.
    """
    row_of = {movie_id: row for row, movie_id in enumerate(self.movie_ids)}
    rows = np.array([row_of.get(movie_id, _MISSING) for movie_id in catalog], np.int64)
    present = rows != _MISSING
    aligned = np.zeros([len(catalog), self.embeddings.shape[1]], np.float32)
    aligned[present] = self.embeddings[rows[present]]
    return aligned, present


def _check_candidates(movie_ids: List[str], embeddings: np.ndarray, ids_path: str,
                      embeddings_path: str) -> None:
  if not movie_ids:
    raise ValueError(f"{ids_path} lists no movies.")
  if any(not movie_id for movie_id in movie_ids):
    raise ValueError(f"{ids_path} has an empty line (line "
                     f"{movie_ids.index('') + 1}).")
  if len(set(movie_ids)) != len(movie_ids):
    duplicate = next(m for i, m in enumerate(movie_ids) if m in movie_ids[:i])
    raise ValueError(f"{ids_path} lists movie {duplicate!r} more than once.")
  if embeddings.ndim != 2 or embeddings.shape[0] != len(movie_ids):
    raise ValueError(f"{embeddings_path} has shape {embeddings.shape}; expected "
                     f"[{len(movie_ids)}, d], one row per line of {ids_path}.")
  if not np.isfinite(embeddings).all():
    raise ValueError(f"{embeddings_path} has NaN or infinite values.")


def load_signature(path: str, name: str, what: str,
                   available: Iterable[str]) -> Tuple[Any, Any, List[str]]:
  """Loads the SavedModel at `path` and its signature `name`, checking its inputs.

  Args:
    path: The SavedModel's directory.
    name: The signature the evaluator calls.
    what: How errors name the model, e.g. 'query model'.
    available: The input names the evaluator can feed.

  Returns:
    (loaded, signature, inputs): keep `loaded` referenced while calling `signature`
    (it owns the variables); `inputs` are the signature's input names, sorted.

  Raises:
    ValueError: No such signature, or an input the evaluator has no values for.
  """
  available = set(available)
  loaded = tf.saved_model.load(path)
  if name not in loaded.signatures:
    raise ValueError(f"The {what} {path} has no '{name}' signature; it has "
                     f"{sorted(loaded.signatures.keys())}.")
  signature = loaded.signatures[name]
  inputs = sorted(signature.structured_input_signature[1])
  missing = [input_name for input_name in inputs if input_name not in available]
  if missing:
    raise ValueError(f"The {what} {path} takes {inputs}; the evaluator has no values for "
                     f"{missing}.")
  return loaded, signature, inputs


def query_embeddings(model_uri: str, queries: Mapping[str, np.ndarray],
                     signature_name: str = serving.QUERY_SIGNATURE) -> np.ndarray:
  """Runs the query tower on every row of `queries`: float32 [U, d], or [U, H, d] for
  multi-vector queries.

  Args:
    model_uri: A Model artifact (layout in contracts/artifacts.py).
    queries: Raw query feature name -> values [U] ([U, n] for the context), covering
      every input of the query model's signature.
    signature_name: The query model's signature: the Evaluator's (user and time; the
      context is the stored history), or QUERY_WITH_CONTEXT_SIGNATURE.
  """
  path = artifacts.query_model_path(model_uri)
  loaded, signature, inputs = load_signature(path, signature_name, "query model", queries)
  num_users = len(next(iter(queries.values())))
  batches = []
  for start in range(0, num_users, _QUERY_BATCH_SIZE):
    end = start + _QUERY_BATCH_SIZE
    outputs = signature(**{name: tf.constant(queries[name][start:end],
                                             features.RAW_FEATURES[name].dtype)
                           for name in inputs})
    if serving.EMBEDDING_OUTPUT not in outputs:
      raise ValueError(f"The query model {path} returns {sorted(outputs)}, not "
                       f"'{serving.EMBEDDING_OUTPUT}'.")
    batches.append(outputs[serving.EMBEDDING_OUTPUT].numpy())
  del loaded  # Held until the last call of its signature.
  embeddings = np.concatenate(batches).astype(np.float32, copy=False)
  if embeddings.shape[:1] != (num_users,) or embeddings.ndim not in (2, 3):
    raise ValueError(f"The query model {path} returned shape {embeddings.shape} for "
                     f"{num_users} users; expected [{num_users}, d] or "
                     f"[{num_users}, vectors, d].")
  return embeddings


def read_eval_data(examples: types.Artifact, train_split: str, eval_split: str,
                   catalog: Sequence[str], max_eval_users: int, seed: int) -> EvalData:
  """Reads both splits into integer (user row, movie column) pairs.

  Users: the eval split's users, sorted by id; when there are more than
  `max_eval_users` (> 0), a seeded uniform sample of them, so runs are comparable.
  Each user's query is made at the median timestamp of its eval ratings (the lower of
  the two middle ones for an even count, so it is a real rating time): the query tower
  takes the time the user asks as a feature, and the eval ratings are what the user
  watched around then.

  Raises:
    ValueError: A split has no files or no ratings, or a movie is not in `catalog`.
  """
  movie_table = lookup_table(list(catalog))
  user_ids, eval_movies, timestamps = [], [], []
  for batch in _read_split(examples, eval_split, movie_table, user_table=None):
    user_ids.append(batch.user_ids)
    eval_movies.append(batch.movies)
    timestamps.append(batch.timestamps)
  all_ids, eval_users = np.unique(np.concatenate(user_ids).astype(np.bytes_),
                                  return_inverse=True)
  eval_movies, timestamps = np.concatenate(eval_movies), np.concatenate(timestamps)
  eval_users, eval_movies, timestamps, ids = _sample_users(
      all_ids, eval_users.reshape(-1), eval_movies, timestamps, max_eval_users, seed)
  train = _read_train(examples, train_split, movie_table, ids, len(catalog))
  return EvalData(user_ids=ids, query_timestamps=_median_per_user(eval_users, timestamps,
                                                                   len(ids)),
                  eval_users=eval_users, eval_movies=eval_movies, total_eval_users=len(all_ids),
                  **train)


def _read_train(examples: types.Artifact, split: str, movie_table: tf.lookup.StaticHashTable,
                user_ids: np.ndarray, num_movies: int) -> Dict[str, object]:
  """The eval users' train pairs, every movie's train count and every train rating."""
  user_table = lookup_table(user_ids)
  users, movies, timestamps, all_hashes, all_movies = [], [], [], [], []
  counts = np.zeros([num_movies], np.int64)
  for batch in _read_split(examples, split, movie_table, user_table):
    counts += np.bincount(batch.movies, minlength=num_movies)
    is_eval_user = batch.users != _MISSING
    users.append(batch.users[is_eval_user])
    movies.append(batch.movies[is_eval_user])
    timestamps.append(batch.timestamps[is_eval_user])
    all_hashes.append(batch.user_hashes)
    all_movies.append(batch.movies.astype(np.int32))
  hashes, all_users = np.unique(np.concatenate(all_hashes), return_inverse=True)
  return dict(train_users=np.concatenate(users), train_movies=np.concatenate(movies),
              train_timestamps=np.concatenate(timestamps), train_counts=counts,
              all_train_users=all_users.reshape(-1).astype(np.int32),
              all_train_movies=np.concatenate(all_movies), num_train_users=len(hashes))


def _sample_users(user_ids: np.ndarray, users: np.ndarray, movies: np.ndarray,
                  timestamps: np.ndarray, max_users: int, seed: int) -> Tuple[np.ndarray, ...]:
  """Keeps a seeded sample of `max_users` users (all if max_users <= 0), renumbered."""
  if max_users <= 0 or len(user_ids) <= max_users:
    return users, movies, timestamps, user_ids
  kept = np.sort(np.random.default_rng(seed).choice(len(user_ids), max_users, replace=False))
  new_row = np.full([len(user_ids)], _MISSING, np.int64)
  new_row[kept] = np.arange(max_users)
  keep = new_row[users] != _MISSING
  logging.info("Evaluating a sample of %d of %d eval users (seed %d).", max_users,
               len(user_ids), seed)
  return new_row[users[keep]], movies[keep], timestamps[keep], user_ids[kept]


def _median_per_user(users: np.ndarray, timestamps: np.ndarray, num_users: int) -> np.ndarray:
  """Lower median of each user's timestamps (every user row has at least one)."""
  rows = query_time.query_time_rows(users, timestamps)
  if len(rows) != num_users:
    raise ValueError(f"Expected the eval ratings of {num_users} users, found {len(rows)}.")
  return timestamps[rows].astype(np.int64)


@dataclasses.dataclass(frozen=True)
class _Batch:
  user_ids: np.ndarray  # bytes
  users: Optional[np.ndarray]  # Rows from the user table, or None without one.
  user_hashes: np.ndarray  # int64 hash of each user id.
  movies: np.ndarray  # Catalog columns.
  timestamps: np.ndarray


def _read_split(examples: types.Artifact, split: str,
                movie_table: tf.lookup.StaticHashTable,
                user_table: Optional[tf.lookup.StaticHashTable]) -> Iterator[_Batch]:
  """Streams a split of the raw ratings in batches, ids looked up inside tf.data."""

  def user_columns(parsed: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    columns = {"user_hashes": tf.strings.to_hash_bucket_fast(parsed[features.USER_ID],
                                                             _USER_HASH_BUCKETS)}
    if user_table is not None:
      columns["users"] = user_table.lookup(parsed[features.USER_ID])
    return columns

  for batch in read_ratings(examples, split,
                            (features.USER_ID, features.MOVIE_ID, features.TIMESTAMP),
                            movie_table, more_columns=user_columns):
    yield _Batch(batch[features.USER_ID], batch.get("users"), batch["user_hashes"],
                 batch[MOVIES], batch[features.TIMESTAMP])


def read_ratings(examples: types.Artifact, split: str, names: Sequence[str],
                 movie_table: tf.lookup.StaticHashTable,
                 batch_size: int = _READ_BATCH_SIZE,
                 more_columns: Optional[Callable[[Dict[str, tf.Tensor]],
                                                 Dict[str, tf.Tensor]]] = None,
                 ) -> Iterator[Dict[str, np.ndarray]]:
  """Streams a split of the raw ratings in batches of numpy columns.

  Each batch holds the raw features `names` as `parse_raw` returns them, MOVIES (each
  rating's catalog column, looked up inside tf.data) and whatever `more_columns` adds
  (also inside tf.data) from the parsed features.

  Args:
    examples: The Examples artifact (ExampleGen's layout: gzipped TFRecords per split).
    split: The split to read.
    names: Raw features to parse; must include features.MOVIE_ID.
    movie_table: The catalog's `lookup_table`.
    batch_size: Ratings a batch.
    more_columns: Optional parsed features -> more columns, each [batch, ...].

  Raises:
    ValueError: The split has no files or no ratings, or a movie is not in the catalog.
  """
  files = _split_files(examples, split, "examples")

  def parse(serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
    parsed = parse_raw(serialized, names)
    parsed[MOVIES] = movie_table.lookup(parsed[features.MOVIE_ID])
    if more_columns is not None:
      parsed.update(more_columns(parsed))
    return parsed

  dataset = (tf.data.TFRecordDataset(files, compression_type="GZIP",
                                     num_parallel_reads=tf.data.AUTOTUNE)
             .batch(batch_size)
             .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(tf.data.AUTOTUNE))
  num_ratings = 0
  for batch in dataset.as_numpy_iterator():
    _check_in_catalog(batch, split)
    num_ratings += len(batch[MOVIES])
    yield batch
  if not num_ratings:
    raise ValueError(f"The {split} split of the examples "
                     f"({artifact_utils.get_split_uri([examples], split)}) has no ratings.")


def parse_raw(serialized: tf.Tensor, names: Sequence[str]) -> Dict[str, tf.Tensor]:
  """Raw features `names` of serialized tf.Examples [batch], shaped as serving signatures
  take them: one value each -> [batch]; a list -> [batch, n], rows padded with the
  dtype's zero ("" for strings), n the longest list of the batch."""
  parsed = tf.io.parse_example(serialized, features.raw_feature_spec(names))
  return {name: (tf.sparse.to_dense(value) if isinstance(value, tf.sparse.SparseTensor)
                 else features.to_vector(value))
          for name, value in parsed.items()}


def _split_files(artifact: types.Artifact, split: str, what: str) -> List[str]:
  """The files of one split of an Examples artifact; ValueError when it has none."""
  split_dir = artifact_utils.get_split_uri([artifact], split)
  files = sorted(tf.io.gfile.glob(os.path.join(split_dir, "*")))
  if not files:
    raise ValueError(f"The {split} split of the {what} has no files in {split_dir}.")
  return files


def _check_in_catalog(batch, split: str) -> None:
  missing = batch[MOVIES] == _MISSING
  if missing.any():
    movie_ids = sorted({m.decode() for m in batch[features.MOVIE_ID][missing]})
    raise ValueError(
        f"Movie {movie_ids[0]!r} of the {split} split is not in the model's candidate "
        f"catalog ({artifacts.CANDIDATES_DIR}/{artifacts.MOVIE_IDS_FILE})"
        + (f", nor are {len(movie_ids) - 1} more in the same batch: {movie_ids[1:6]}"
           if len(movie_ids) > 1 else "")
        + ". The Trainer must export the whole catalog.")


def lookup_table(keys: Sequence) -> tf.lookup.StaticHashTable:
  """String key (str or bytes) -> its position in `keys`; unknown keys -> -1."""
  return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          tf.constant(np.asarray(keys), tf.string), tf.range(len(keys), dtype=tf.int64)),
      default_value=_MISSING)


def read_titles(movies: types.Artifact, split: str, catalog: Sequence[str]) -> List[str]:
  """The title of each catalog movie, from the catalog examples (MovieLensExampleGen's
  `movies`); a movie missing there keeps its id as title."""
  columns, present = read_catalog_features(movies, split, catalog, (features.MOVIE_TITLE,))
  titles = columns[features.MOVIE_TITLE]
  return [titles[i].decode() if present[i] else movie_id
          for i, movie_id in enumerate(catalog)]


def read_catalog_features(movies: types.Artifact, split: str, catalog: Sequence[str],
                          names: Sequence[str]) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
  """Raw features `names` of each catalog movie, from the catalog examples.

  Returns:
    ({name: values in catalog order, [M] or [M, n] for a list padded with the dtype's
    zero ("" for strings)}, bool [M]: whether the catalog examples hold that movie; a
    missing movie's row is all padding).
  """
  files = _split_files(movies, split, "movie catalog")
  table = lookup_table(list(catalog))
  names = tuple(name for name in names if name != features.MOVIE_ID)
  present = np.zeros(len(catalog), bool)
  rows, parts = [], {name: [] for name in names}
  dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(_READ_BATCH_SIZE)
  for serialized in dataset.as_numpy_iterator():
    parsed = parse_raw(serialized, (features.MOVIE_ID,) + names)
    columns = table.lookup(parsed[features.MOVIE_ID]).numpy()
    known = columns != _MISSING  # Catalog examples of movies the model lacks are unused.
    rows.append(columns[known])
    for name in names:
      parts[name].append(parsed[name].numpy()[known])
  order = np.concatenate(rows) if rows else np.zeros([0], np.int64)
  present[order] = True
  result = {features.MOVIE_ID: np.asarray(catalog, dtype=object).astype(bytes)}
  for name in names:
    result[name] = _scatter(parts[name], order, len(catalog))
  return result, present


def _scatter(parts: List[np.ndarray], rows: np.ndarray, num_rows: int) -> np.ndarray:
  """Batches of values (each [b] or [b, n_i]) placed at `rows` of a [num_rows(, max n)]
  array of the dtype's zero."""
  width = max((part.shape[1] for part in parts if part.ndim == 2), default=None)
  sample = parts[0] if parts else np.zeros([0], object)
  shape = [num_rows] if width is None else [num_rows, width]
  out = np.zeros(shape, sample.dtype) if sample.dtype != object else np.full(shape, b"", object)
  start = 0
  for part in parts:
    target = rows[start:start + len(part)]
    if width is None:
      out[target] = part
    else:
      out[target, :part.shape[1]] = part
    start += len(part)
  return out


def read_training_history(model_uri: str) -> Optional[Dict[str, List[float]]]:
  """The Trainer's per-epoch history in the Model artifact, or None when it has none."""
  path = artifacts.training_history_path(model_uri)
  if not tf.io.gfile.exists(path):
    logging.info("No training history at %s; the report says so.", path)
    return None
  with tf.io.gfile.GFile(path, "r") as f:
    history = json.load(f)
  if not isinstance(history, dict):
    raise ValueError(f"{path} must hold a JSON object of per-epoch lists, got "
                     f"{type(history).__name__}.")
  return history
