"""Training inputs: transformed ratings, the raw movie catalog and sampling probabilities."""
from typing import Dict, List, Mapping

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from contracts import features
from trainer_module import model

_PARSE_BATCH = 65536
# Caps on padded list features (longer ones are cut); genres in MovieLens have <= 10.
_MAX_GENRES = 10


def _record_files(file_patterns: List[str]) -> List[str]:
  files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
  if not files:
    raise FileNotFoundError(f"No example files match {file_patterns}.")
  return files


def pad_lists(inputs: Mapping[str, tf.Tensor], max_title_tokens: int) -> Dict[str, tf.Tensor]:
  """Turns the sparse title-token and genre ids into dense [batch, n] tensors padded with -1.

  Args:
    inputs: Transformed features; TITLE_TOKENS and GENRE_INDICES may be SparseTensors.
    max_title_tokens: Title tokens kept per movie.

  Returns:
    The same features, list features dense and capped, the others unchanged.
  """
  outputs = dict(inputs)
  for name, cap in ((features.TITLE_TOKENS, max_title_tokens),
                    (features.GENRE_INDICES, _MAX_GENRES)):
    if name in inputs:
      value = inputs[name]
      if isinstance(value, tf.SparseTensor):
        value = tf.sparse.to_dense(value, default_value=model.PADDING)
      outputs[name] = value[:, :cap]
  return outputs


def load_transformed(file_patterns: List[str], tft_output: tft.TFTransformOutput,
                     max_title_tokens: int) -> Dict[str, tf.Tensor]:
  """Reads every transformed example into memory, as dense tensors.

  Parsed once and held in memory so that each epoch costs only the model's compute (a
  rating is ~100 bytes here; ml-25m's 20M training ratings take ~2 GB).

  Returns:
    Transformed feature name -> tensor with one row per example.
  """
  dataset = tf.data.TFRecordDataset(_record_files(file_patterns), compression_type="GZIP")
  spec = tft_output.transformed_feature_spec()
  columns: Dict[str, List[tf.Tensor]] = {}
  for serialized in dataset.batch(_PARSE_BATCH):
    for name, value in pad_lists(tf.io.parse_example(serialized, spec),
                                 max_title_tokens).items():
      columns.setdefault(name, []).append(value)
  return {name: _concat_padded(parts) for name, parts in columns.items()}


def _concat_padded(parts: List[tf.Tensor]) -> tf.Tensor:
  """Concatenates along rows; 2-D parts are padded to the widest first."""
  if parts[0].shape.rank == 2:
    width = max(int(p.shape[1]) for p in parts)
    parts = [tf.pad(p, [[0, 0], [0, width - int(p.shape[1])]], constant_values=model.PADDING)
             for p in parts]
  return tf.concat(parts, axis=0)


def num_examples(tensors: Mapping[str, tf.Tensor]) -> int:
  return int(tensors[features.MOVIE_ID_INDEX].shape[0])


def training_dataset(tensors: Mapping[str, tf.Tensor], batch_size: int, seed: int,
                     shuffle: bool = True) -> tf.data.Dataset:
  """Batches of in-memory examples, reshuffled every epoch (fresh in-batch negatives).

  Shuffles row indices and gathers whole batches: one tf.gather per feature per batch
  instead of per-example dataset elements, which keeps the input pipeline far from being
  the bottleneck on two cores.
  """
  count = num_examples(tensors)
  indices = tf.data.Dataset.range(count)
  if shuffle:
    indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
  return (indices.batch(batch_size)
          .map(lambda rows: {name: tf.gather(value, rows) for name, value in tensors.items()})
          .prefetch(tf.data.AUTOTUNE))


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
