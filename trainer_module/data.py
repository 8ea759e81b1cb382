"""The Trainer's view of its inputs, read in passes that hold what grows with users and
movies, never a copy of the examples: the columns of ratings, the user histories, the
raw catalog and the sampling probabilities. The training batches themselves stream
(trainer_module/inputs.py).
"""
import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from contracts import features
from trainer_module import model

_PARSE_BATCH = 65536
_HISTORY_BATCH = 4096
# Caps on padded list features (longer ones are cut); genres in MovieLens have <= 10.
_MAX_GENRES = 10
# List features reach the towers as int32 (vocabulary indices fit easily).
LIST_FEATURES = (features.TITLE_TOKENS, features.GENRE_INDICES, features.CONTEXT_MOVIE_INDICES)
LIST_DTYPE = tf.int32


def record_files(file_patterns: Sequence[str]) -> List[str]:
  """The files matching `file_patterns`, sorted by name (the order UserContext wrote)."""
  files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
  if not files:
    raise FileNotFoundError(f"No example files match {list(file_patterns)}.")
  return files


def records(file_patterns: Sequence[str]) -> tf.data.Dataset:
  """The serialized examples of gzipped TFRecord files, in file-name order."""
  return tf.data.TFRecordDataset(record_files(file_patterns), compression_type="GZIP")


def pad_lists(inputs: Mapping[str, tf.Tensor], max_title_tokens: int
              ) -> Dict[str, tf.Tensor]:
  """Turns the sparse id lists (title tokens, genres) into dense [batch, n] `LIST_DTYPE`
  tensors padded with -1 and capped; the other features are unchanged."""
  outputs = dict(inputs)
  for name, cap in ((features.TITLE_TOKENS, max_title_tokens),
                    (features.GENRE_INDICES, _MAX_GENRES)):
    if name in inputs:
      value = inputs[name]
      if isinstance(value, tf.SparseTensor):
        value = tf.sparse.to_dense(value, default_value=model.PADDING)
      outputs[name] = tf.cast(value[:, :cap], LIST_DTYPE)
  return outputs


@dataclasses.dataclass(frozen=True)
class Interactions:
  """The (user index, movie index, time) of each rating of some transformed split, and
  its rating when asked for: what the closed-form parts (the EASE factor, the seen-movies
  file, the validation exclusions) need, 16 bytes a rating instead of the example."""
  users: np.ndarray  # int32 [n]
  movies: np.ndarray  # int32 [n]
  times: np.ndarray  # int64 [n]
  ratings: Optional[np.ndarray] = None  # float32 [n]

  def __len__(self) -> int:
    return len(self.users)

  def head(self, count: int) -> "Interactions":
    """The first `count` ratings, as views (no copy)."""
    return Interactions(self.users[:count], self.movies[:count], self.times[:count],
                        None if self.ratings is None else self.ratings[:count])

  @classmethod
  def concat(cls, parts: Sequence["Interactions"]) -> "Interactions":
    has_ratings = all(part.ratings is not None for part in parts)
    return cls(*(np.concatenate([getattr(part, name) for part in parts])
                 for name in ("users", "movies", "times")),
               ratings=(np.concatenate([part.ratings for part in parts])
                        if has_ratings else None))


_INTERACTION_DTYPES = {features.USER_ID_INDEX: np.int32, features.MOVIE_ID_INDEX: np.int32,
                       features.TIMESTAMP_SECONDS: np.int64, features.RATING_LABEL: np.float32}


def read_interactions(file_patterns: Sequence[str], tft_output: tft.TFTransformOutput,
                      with_ratings: bool = False) -> Interactions:
  """One pass over transformed examples, parsing only the columns of `Interactions`
  (each batch cast to its compact type as it is read, so the peak is about twice what
  is returned)."""
  spec = tft_output.transformed_feature_spec()
  names = [features.USER_ID_INDEX, features.MOVIE_ID_INDEX, features.TIMESTAMP_SECONDS]
  if with_ratings:
    if features.RATING_LABEL not in spec:
      raise ValueError(f"The Transform output has no {features.RATING_LABEL!r}.")
    names.append(features.RATING_LABEL)
  columns: Dict[str, List[np.ndarray]] = {name: [] for name in names}
  parse = lambda serialized: tf.io.parse_example(serialized, {n: spec[n] for n in names})
  for parsed in records(file_patterns).batch(_PARSE_BATCH).map(parse):
    for name in names:
      columns[name].append(parsed[name].numpy().reshape(-1).astype(_INTERACTION_DTYPES[name]))
  joined = {name: (np.concatenate(parts) if parts
                   else np.zeros([0], _INTERACTION_DTYPES[name]))
            for name, parts in columns.items()}
  return Interactions(users=joined[features.USER_ID_INDEX],
                      movies=joined[features.MOVIE_ID_INDEX],
                      times=joined[features.TIMESTAMP_SECONDS],
                      ratings=joined.get(features.RATING_LABEL))


@dataclasses.dataclass(frozen=True)
class UserHistories:
  """UserContext's histories in vocabulary indices, one row per user index (OOV buckets
  and users without a train rating: all padding), most recent first, padded with -1.

  Attributes:
    fitted: int32 [users, max_context + 1]: the train split without the validation
      ratings; a rating's context is its row without the rating's own movie
      (`inputs.join_context`).
    whole: int64 [users, max_context]: the whole train split; what the model stores
      for serving (`histories.StoredHistories`).
  """
  fitted: np.ndarray
  whole: np.ndarray

  @property
  def max_context(self) -> int:
    return int(self.whole.shape[1])


def _lookup(vocabulary: List[bytes]) -> tf.lookup.StaticHashTable:
  return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
      tf.constant(vocabulary, tf.string), tf.range(len(vocabulary), dtype=tf.int64)), -1)


def read_user_histories(file_patterns: Sequence[str], tft_output: tft.TFTransformOutput,
                        num_users: int, max_context: int) -> UserHistories:
  """Reads UserContext's user histories into `UserHistories`, ids mapped through the
  Transform vocabularies (a history lists train movies only, all in the vocabulary)."""
  users = _lookup(tft_output.vocabulary_by_name(features.USER_ID_VOCAB))
  movies = _lookup(tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB))
  spec = {features.USER_ID: tf.io.FixedLenFeature([], tf.string),
          **{name: tf.io.RaggedFeature(tf.string) for name in features.HISTORY_FEATURES}}
  widths = {features.FITTED_HISTORY_MOVIE_IDS: max_context + 1,
            features.HISTORY_MOVIE_IDS: max_context}

  def parse(serialized):
    parsed = tf.io.parse_example(serialized, spec)
    return {features.USER_ID: users.lookup(parsed[features.USER_ID]),
            **{name: tf.ragged.map_flat_values(movies.lookup, parsed[name]).to_tensor(
                default_value=model.PADDING, shape=[None, width])
               for name, width in widths.items()}}

  tables = {name: np.full([num_users, width], model.PADDING, np.int64)
            for name, width in widths.items()}
  for batch in records(file_patterns).batch(_HISTORY_BATCH).map(parse):
    rows = batch[features.USER_ID].numpy()
    known = rows >= 0
    for name, table in tables.items():
      table[rows[known]] = batch[name].numpy()[known]
  return UserHistories(fitted=tables[features.FITTED_HISTORY_MOVIE_IDS].astype(np.int32),
                       whole=tables[features.HISTORY_MOVIE_IDS])


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


def read_raw_catalog(file_patterns: Sequence[str]) -> Dict[str, tf.Tensor]:
  """Reads the movie catalog examples (raw movie features), every movie in one batch."""
  serialized = tf.concat(list(records(file_patterns).batch(_PARSE_BATCH)), axis=0)
  return tf.io.parse_example(serialized, features.raw_feature_spec(features.CANDIDATE_FEATURES))


def transformed_catalog(tft_output: tft.TFTransformOutput,
                        raw_catalog: Mapping[str, tf.Tensor], max_title_tokens: int,
                        batch_size: int = 8192) -> List[Dict[str, tf.Tensor]]:
  """The catalog through the Transform graph, in batches of `batch_size` movies, lists
  padded (`pad_lists`): the candidate tower's input for every movie."""
  tft_layer = tft_output.transform_features_layer()
  count = int(raw_catalog[features.MOVIE_ID].shape[0])
  return [pad_lists(tft_layer({name: _rows(value, start, start + batch_size)
                               for name, value in raw_catalog.items()}), max_title_tokens)
          for start in range(0, count, batch_size)]


def _rows(value, start: int, stop: int):
  if isinstance(value, tf.SparseTensor):
    return tf.sparse.slice(value, [start, 0], [stop - start, value.dense_shape[1]])
  return value[start:stop]


def to_tensor(array: np.ndarray) -> tf.Tensor:
  """`array` as a tensor holding one copy of it.

  A tensor made by `tf.constant` from a numpy array keeps two buffers as long as it
  lives; a tensor computed from it by an op has one.
  """
  return tf.identity(tf.constant(array))
