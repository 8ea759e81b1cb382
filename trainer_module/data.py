"""Training inputs: transformed ratings, the validation slice, users' stored histories,
the raw movie catalog and sampling probabilities."""
import dataclasses
from typing import Dict, List, Mapping, Optional, Union

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from contracts import features
from ranking_core import query_time
from trainer_module import model

_PARSE_BATCH = 65536
# Caps on padded list features (longer ones are cut); genres in MovieLens have <= 10.
_MAX_GENRES = 10
# List features are held in memory as int32 (vocabulary indices fit easily): half the
# bytes of the parsed int64, and the context is most of what the trainer holds.
LIST_FEATURES = (features.TITLE_TOKENS, features.GENRE_INDICES, features.CONTEXT_MOVIE_INDICES)
LIST_DTYPE = tf.int32
# Rows cleaned at a time in split_validation, which bounds its temporaries.
_CLEAN_CHUNK = 1 << 15


def _record_files(file_patterns: List[str]) -> List[str]:
  files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
  if not files:
    raise FileNotFoundError(f"No example files match {file_patterns}.")
  return files


def pad_lists(inputs: Mapping[str, tf.Tensor], max_title_tokens: int,
              max_context: int = 1 << 30) -> Dict[str, tf.Tensor]:
  """Turns sparse id lists into dense [batch, n] tensors padded with -1.

  Args:
    inputs: Transformed features; TITLE_TOKENS, GENRE_INDICES and CONTEXT_MOVIE_INDICES
      may be SparseTensors.
    max_title_tokens: Title tokens kept per movie.
    max_context: Context movies kept (the most recent ones; the rest are cut).

  Returns:
    The same features, list features dense and capped, the others unchanged.
  """
  outputs = dict(inputs)
  for name, cap in ((features.TITLE_TOKENS, max_title_tokens),
                    (features.GENRE_INDICES, _MAX_GENRES),
                    (features.CONTEXT_MOVIE_INDICES, max_context)):
    if name in inputs:
      value = inputs[name]
      if isinstance(value, tf.SparseTensor):
        value = tf.sparse.to_dense(value, default_value=model.PADDING)
      outputs[name] = value[:, :cap]
  return outputs


def load_transformed(file_patterns: List[str], tft_output: tft.TFTransformOutput,
                     max_title_tokens: int,
                     max_context: int = 1 << 30) -> Dict[str, tf.Tensor]:
  """Reads every transformed example into memory, as dense tensors.

  Parsed once and held in memory so that each epoch costs only the model's compute. A
  rating takes about 4 bytes per list entry (title tokens, genres, context movies, as
  `LIST_DTYPE`) plus ~40 for its other features; `python benchmarks/trainer_memory.py`
  measures the total and the peak.

  Returns:
    Transformed feature name -> tensor with one row per example; the list features
    (`LIST_FEATURES`) are `LIST_DTYPE`.
  """
  dataset = tf.data.TFRecordDataset(_record_files(file_patterns), compression_type="GZIP")
  spec = tft_output.transformed_feature_spec()
  columns: Dict[str, List[tf.Tensor]] = {}
  for serialized in dataset.batch(_PARSE_BATCH):
    for name, value in pad_lists(tf.io.parse_example(serialized, spec),
                                 max_title_tokens, max_context).items():
      if name in LIST_FEATURES:
        value = tf.cast(value, LIST_DTYPE)
      columns.setdefault(name, []).append(value)
  # Each feature's parts are let go as soon as they are joined: the peak is the parts plus
  # the largest feature joined, not two copies of everything.
  joined = {name: _concat_padded(columns.pop(name)) for name in list(columns)}
  return in_canonical_order(joined)


# The features that order the rows, most significant first (those present are used).
_ORDER_KEYS = (features.USER_ID_INDEX, features.TIMESTAMP_SECONDS, features.MOVIE_ID_INDEX,
               features.RATING_LABEL)


def _first_column(values: np.ndarray) -> np.ndarray:
  return values[:, 0] if values.ndim > 1 else values


def in_canonical_order(tensors: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """The rows sorted by user index, time, movie index and rating.

  Beam writes a split's examples in an order that changes from run to run (the
  UserContext component groups by user), and the seeded shuffle, the validation slice and
  hence the trained model follow the order they are given: the same pipeline on the same
  data would train a different model from run to run. Sorted, the Trainer sees the same
  rows in the same order every run. Rows equal in every key are equal in every feature
  the pipeline derives, so the order among them does not matter.

  `tensors` is emptied as the features are reordered, one at a time, so the peak is one
  feature's copy beyond the input.
  """
  keys = [_first_column(np.asarray(tensors[name])) for name in _ORDER_KEYS if name in tensors]
  if not keys:
    return tensors
  order = tf.constant(np.lexsort(keys[::-1]))  # lexsort's last key is the primary one.
  return {name: tf.gather(tensors.pop(name), order) for name in list(tensors)}


def _concat_padded(parts: List[tf.Tensor]) -> tf.Tensor:
  """Concatenates along rows; 2-D parts are padded to the widest first."""
  if parts[0].shape.rank == 2:
    width = max(int(p.shape[1]) for p in parts)
    parts = [tf.pad(p, [[0, 0], [0, width - int(p.shape[1])]], constant_values=model.PADDING)
             for p in parts]
  return tf.concat(parts, axis=0)


def num_examples(tensors: Mapping[str, tf.Tensor]) -> int:
  return int(tensors[features.MOVIE_ID_INDEX].shape[0])


def without_lists(tensors: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """Every feature but the list features (`LIST_FEATURES`)."""
  return {name: value for name, value in tensors.items() if name not in LIST_FEATURES}


def select_rows(tensors: Mapping[str, tf.Tensor], rows: np.ndarray) -> Dict[str, tf.Tensor]:
  """The given rows (int indices) of every feature."""
  return {name: tf.gather(value, rows) for name, value in tensors.items()}


def remove_from_contexts(contexts: tf.Tensor, users: tf.Tensor, removed: tf.Tensor,
                         num_movies: int) -> tf.Tensor:
  """Drops from each row's context the movies its user has in `removed` pair keys.

  Args:
    contexts: int [rows, n] movie indices, padded with -1, most recent first.
    users: int [rows] or [rows, 1], each row's user index.
    removed: int64 [k], sorted keys user * num_movies + movie of the pairs to drop.
    num_movies: The key's stride.

  Returns:
    The contexts without those movies, still in order, padding moved to the end.
  """
  if removed.shape[0] == 0:
    return contexts
  users = tf.cast(tf.reshape(users, [-1, 1]), tf.int64)
  keys = tf.reshape(users * num_movies + tf.cast(contexts, tf.int64), [-1])
  found_at = tf.minimum(tf.searchsorted(removed, keys), tf.size(removed) - 1)
  # Padding is dropped whatever its key is.
  drop = (contexts == model.PADDING) | tf.reshape(tf.gather(removed, found_at) == keys,
                                                  tf.shape(contexts))
  order = tf.argsort(tf.cast(drop, tf.int32), axis=1, stable=True)  # Kept entries first.
  return tf.gather(tf.where(drop, tf.constant(model.PADDING, contexts.dtype), contexts),
                   order, batch_dims=1)


def to_tensor(array: np.ndarray) -> tf.Tensor:
  """`array` as a tensor holding one copy of it.

  A tensor made by `tf.constant` from a numpy array keeps two buffers as long as it
  lives; a tensor computed from it by an op has one.
  """
  return tf.identity(tf.constant(array))


@dataclasses.dataclass(frozen=True)
class Rows:
  """Some rows of in-memory examples, gathered a batch at a time as they are read.

  Why not a copy of the rows: the validation slice leaves most of the train split to fit,
  and a copy of those rows would add about the whole split to the Trainer's peak memory
  (`benchmarks/trainer_memory.py`).

  Attributes:
    examples: Feature name -> tensor with one row per example (all of them).
    rows: int64 [n], the rows that belong, in order; None for every row.
  """
  examples: Mapping[str, tf.Tensor]
  rows: Optional[tf.Tensor] = None

  def __len__(self) -> int:
    return num_examples(self.examples) if self.rows is None else int(self.rows.shape[0])

  def gather(self, positions: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Features of the rows at `positions` (int64 [b]) of this selection.

    Traceable: training_dataset maps it over batches of positions.
    """
    rows = positions if self.rows is None else tf.gather(self.rows, positions)
    return {name: tf.gather(value, rows) for name, value in self.examples.items()}

  def read(self) -> Dict[str, tf.Tensor]:
    """Every row, as tensors of their own."""
    return self.gather(tf.range(len(self), dtype=tf.int64))


@dataclasses.dataclass(frozen=True)
class ValidationSlice:
  """Train-split ratings held out to choose the epoch, never the eval split.

  Attributes:
    train: The training examples left (rows of the whole train split, read without a
      copy of them); their contexts no longer mention held-out pairs.
    validation: The held-out examples, contexts likewise cleaned.
    query_rows: One row of `validation` per validation user, whose context (the user's
      remaining train movies, most recent first) and time (the lower median of the
      user's held-out times, `ranking_core.query_time.query_time_rows`) are that user's query.
    users, movies: Held-out (user index, movie index) pairs; `users` are positions in
      `query_rows`.
    query_users: The user index (vocabulary) of each position.
    train_users, train_movies: Pairs the users rated in `train` (excluded from rankings,
      as the Evaluator excludes train movies); `train_users` are positions likewise.
  """
  train: Rows
  validation: Dict[str, tf.Tensor]
  query_rows: np.ndarray
  users: np.ndarray
  movies: np.ndarray
  train_users: np.ndarray
  train_movies: np.ndarray
  query_users: np.ndarray


def _pair_hash(users: np.ndarray, movies: np.ndarray, seed: int) -> np.ndarray:
  """A uniform float in [0, 1) per (user, movie) pair, reproducible from the seed."""
  with np.errstate(over="ignore"):
    x = (users.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
         ^ movies.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
         ^ np.uint64(seed & 0xFFFFFFFF) * np.uint64(0x94D049BB133111EB))
    x ^= x >> np.uint64(31)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(29)
  return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _cleaned_contexts(contexts: tf.Tensor, users: tf.Tensor, removed: tf.Tensor,
                      num_movies: int) -> tf.Variable:
  """`remove_from_contexts` of every row: a copy of `contexts`, cleaned in place
  `_CLEAN_CHUNK` rows at a time.

  A variable, because it is the one container TensorFlow writes into: chunks cleaned
  into new tensors and joined would hold two copies at once
  (`benchmarks/trainer_memory.py` measures the peak).
  """
  cleaned = tf.Variable(contexts, trainable=False)
  count = int(contexts.shape[0])
  for start in range(0, count, _CLEAN_CHUNK):
    rows = slice(start, start + _CLEAN_CHUNK)
    # A scatter writes in place; a sliced assign would first read (and so copy) the whole.
    cleaned.scatter_update(tf.IndexedSlices(
        remove_from_contexts(contexts[rows], users[rows], removed, num_movies),
        tf.range(start, min(start + _CLEAN_CHUNK, count))))
  return cleaned


def split_validation(tensors: Mapping[str, tf.Tensor], fraction: float, seed: int,
                     num_movies: int) -> ValidationSlice:
  """Holds out `fraction` of the (train split) ratings, chosen by a hash of user and movie.

  The held-out movies are removed from every context, so no training example's context
  and no validation query reveals a validation target, as no eval target is in a context.
  The slice holds a cleaned copy of the contexts and shares every other feature with
  `tensors`: a caller that drops its own contexts afterwards frees the uncleaned ones.
  Raises ValueError when the slice or the rest would be empty.
  """
  users = tensors[features.USER_ID_INDEX].numpy().reshape(-1).astype(np.int64)
  movies = tensors[features.MOVIE_ID_INDEX].numpy().reshape(-1).astype(np.int64)
  held_out = _pair_hash(users, movies, seed) < fraction
  if not held_out.any() or held_out.all():
    raise ValueError(f"validation_fraction {fraction} leaves {held_out.sum()} of "
                     f"{len(held_out)} training examples for validation; choose a fraction "
                     "that leaves some on both sides, or 0 for no validation.")
  train_rows, validation_rows = np.flatnonzero(~held_out), np.flatnonzero(held_out)
  cleaned = dict(tensors)
  if features.CONTEXT_MOVIE_INDICES in tensors:
    removed = to_tensor(np.unique(users[held_out] * num_movies + movies[held_out]))
    cleaned[features.CONTEXT_MOVIE_INDICES] = _cleaned_contexts(
        tensors[features.CONTEXT_MOVIE_INDICES], tensors[features.USER_ID_INDEX], removed,
        num_movies)
  validation_users, user_positions = np.unique(users[validation_rows], return_inverse=True)
  user_positions = user_positions.reshape(-1)
  # Each user is queried at the time the Evaluator would use (its contexts are alike).
  times = tensors[features.TIMESTAMP_SECONDS].numpy().reshape(-1)[validation_rows]
  query_rows = query_time.query_time_rows(user_positions, times)
  # Train pairs of the validation users, as positions in validation_users.
  position = np.searchsorted(validation_users, users[train_rows])
  position = np.minimum(position, len(validation_users) - 1)
  is_validation_user = validation_users[position] == users[train_rows]
  return ValidationSlice(
      train=Rows(cleaned, to_tensor(train_rows)),
      validation=select_rows(cleaned, validation_rows),
      query_rows=query_rows, users=user_positions,
      movies=movies[validation_rows],
      train_users=position[is_validation_user],
      train_movies=movies[train_rows][is_validation_user],
      query_users=validation_users)


def user_histories(tensors: Mapping[str, tf.Tensor], movie_vocabulary: List[bytes],
                   num_users: int, max_context: int) -> np.ndarray:
  """Each user's most recent `max_context` train movies: int64 [num_users, max_context].

  Row u holds user index u's movie indices, most recent first, padded with -1; ties in
  time are broken by raw movie id, larger first, the order of the UserContext component
  (components/user_context/context.py), so a stored history is exactly the context an
  eval rating of that user gets. Rows of users without ratings (the OOV buckets) are
  all padding.
  """
  users = tensors[features.USER_ID_INDEX].numpy().reshape(-1).astype(np.int64)
  movies = tensors[features.MOVIE_ID_INDEX].numpy().reshape(-1).astype(np.int64)
  times = tensors[features.TIMESTAMP_SECONDS].numpy().reshape(-1).astype(np.int64)
  # Rank of each movie index by raw id bytes (OOV indices, never in training, rank last).
  by_id = np.argsort(np.array(movie_vocabulary, dtype=object), kind="stable")
  id_rank = np.empty(len(movie_vocabulary), np.int64)
  id_rank[by_id] = np.arange(len(movie_vocabulary))
  rank = np.where(movies < len(movie_vocabulary),
                  id_rank[np.minimum(movies, len(movie_vocabulary) - 1)], len(movie_vocabulary))
  # Ascending by user, then descending by (time, id): the most recent first.
  order = np.lexsort((-rank, -times, users))
  users, movies = users[order], movies[order]
  starts = np.searchsorted(users, np.arange(num_users), "left")
  position = np.arange(len(users)) - starts[users]
  keep = position < max_context
  histories = np.full([num_users, max_context], model.PADDING, np.int64)
  histories[users[keep], position[keep]] = movies[keep]
  return histories


def training_dataset(examples: Union[Mapping[str, tf.Tensor], Rows], batch_size: int,
                     seed: int, shuffle: bool = True) -> tf.data.Dataset:
  """Batches of in-memory examples, reshuffled every epoch (fresh in-batch negatives).

  Gathers whole batches of rows: one tf.gather per feature per batch instead of
  per-example dataset elements, which keeps the input pipeline far from being the
  bottleneck on two cores.

  tf.data's default static optimizations are off: rewriting the pipeline serializes its
  graph with every captured tensor inside, a copy of all the examples
  (`benchmarks/trainer_memory.py`). The one that matters here, parallel map calls, is
  asked for directly.
  """
  if not isinstance(examples, Rows):
    examples = Rows(examples)
  options = tf.data.Options()
  options.experimental_optimization.apply_default_optimizations = False
  return (positions_in_batches(len(examples), batch_size, seed, shuffle)
          .map(examples.gather, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE).with_options(options))


def positions_in_batches(count: int, batch_size: int, seed: int,
                         shuffle: bool = True) -> tf.data.Dataset:
  """Batches of the positions 0..count-1: in order, or in a new random order each epoch.

  The order of an epoch is one permuted tensor (8 bytes a row), where a shuffle buffer of
  `count` single positions, the usual way, holds each position as a dataset element of
  its own and costs far more memory and CPU. Each iteration of the dataset (each Keras
  epoch) draws a new order; the sequence repeats with the seed.
  """
  if not shuffle:
    return tf.data.Dataset.range(count).batch(batch_size)
  num_batches = -(-count // batch_size)
  def batches(order: tf.Tensor) -> tf.data.Dataset:
    return tf.data.Dataset.range(num_batches).map(
        lambda i: order[i * batch_size:(i + 1) * batch_size])
  orders = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1).map(
      lambda epoch_seed: tf.random.experimental.stateless_shuffle(
          tf.range(count, dtype=tf.int64), seed=tf.stack([epoch_seed, 0])))
  return orders.flat_map(batches).apply(tf.data.experimental.assert_cardinality(num_batches))


def movie_sampling_probability(tft_output: tft.TFTransformOutput,
                               num_oov_buckets: int) -> np.ndarray:
  """P(a training example's movie is movie index i), from the frequency vocabulary.

  The frequency vocabulary lists the same tokens in the same order as the applied movie id
  vocabulary, each prefixed by its training count. OOV buckets never occur in training;
  they get the smallest probability so that log(p) stays finite.
  """
  path = tft_output.vocabulary_file_by_name(features.MOVIE_ID_FREQUENCY_VOCAB)
  with tf.io.gfile.GFile(path, "rb") as f:
    rows = [line.rstrip(b"\n").split(b" ", 1) for line in f if line.strip()]
  ids = tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB)
  if [token for _, token in rows] != ids:
    raise ValueError(f"{path} does not list the movie id vocabulary in its order.")
  counts = np.array([float(count) for count, _ in rows], np.float64)
  counts = np.concatenate([counts, np.full(num_oov_buckets, counts.min())])
  return (counts / counts.sum()).astype(np.float32)


def read_raw_catalog(file_patterns: List[str]) -> Dict[str, tf.Tensor]:
  """Reads the movie catalog examples (raw movie features), every movie in one batch."""
  dataset = tf.data.TFRecordDataset(_record_files(file_patterns), compression_type="GZIP")
  serialized = tf.concat(list(dataset.batch(_PARSE_BATCH)), axis=0)
  return tf.io.parse_example(serialized, features.raw_feature_spec(features.CANDIDATE_FEATURES))
