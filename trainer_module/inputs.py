"""The training input: transformed examples streamed from their files as tf.data, each
rating joined with its context from the user histories at batch time.

Memory is bounded whatever the number of ratings: a shuffle buffer of serialized records,
a few batches in flight, and the history table (one row per user). The files are read in
name order, which UserContext made a seeded shuffle of the ratings; the buffer gives each
epoch a new order, reproducible from the seed.
"""
import dataclasses
import os
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from contracts import features
from trainer_module import data
from trainer_module import model

# Serialized records parsed at a time when a dataset is read whole (validation, scans).
READ_BATCH = 8192
# Batches parsed at once, and batches ready ahead of the model: enough to keep it fed.
PARSE_CALLS = max(2, os.cpu_count() or 1)
PREFETCH_BATCHES = 2


def join_context(histories: tf.Tensor, users: tf.Tensor, movies: tf.Tensor,
                 max_context: int) -> tf.Tensor:
  """Each row's context: its user's history without the row's own movie, cut to
  `max_context`.

  Args:
    histories: int [users, n >= max_context], movie indices most recent first, padded
      with -1 (`data.UserHistories.fitted`).
    users: int [batch] (or [batch, 1]) user indices.
    movies: int [batch] (or [batch, 1]) movie indices: each row's own movie, dropped.
    max_context: Width of the result.

  Returns:
    int [batch, max_context] in histories' dtype, still in order, padding at the end.
  """
  rows = tf.gather(histories, features.to_vector(users))
  own = tf.cast(tf.reshape(movies, [-1, 1]), rows.dtype)
  drop = (rows == model.PADDING) | (rows == own)
  order = tf.argsort(tf.cast(drop, tf.int32), axis=1, stable=True)  # Kept entries first.
  kept = tf.gather(tf.where(drop, tf.constant(model.PADDING, rows.dtype), rows), order,
                   batch_dims=1)
  return kept[:, :max_context]


def parser(tft_output: tft.TFTransformOutput, max_title_tokens: int,
           histories: Optional[tf.Tensor] = None, max_context: int = 0,
           keep_rating: bool = False):
  """A function from a batch of serialized transformed examples to the towers' input:
  lists padded, the context joined when `histories` (int [users, max_context + 1]) is
  given, the rating dropped unless `keep_rating` (only the ranking stage reads it)."""
  spec = tft_output.transformed_feature_spec()
  if not keep_rating:
    spec.pop(features.RATING_LABEL, None)

  def parse(serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
    parsed = data.pad_lists(tf.io.parse_example(serialized, spec), max_title_tokens)
    if histories is not None:
      parsed[features.CONTEXT_MOVIE_INDICES] = join_context(
          histories, parsed[features.USER_ID_INDEX], parsed[features.MOVIE_ID_INDEX],
          max_context)
    return parsed

  return parse


def batches(file_patterns: Sequence[str], tft_output: tft.TFTransformOutput,
            batch_size: int, max_title_tokens: int,
            histories: Optional[tf.Tensor] = None, max_context: int = 0,
            shuffle_buffer: int = 0, seed: int = 0,
            keep_rating: bool = False) -> tf.data.Dataset:
  """Batches of transformed examples, streamed (see the module docstring).

  Args:
    file_patterns: Transformed example files (gzipped TFRecords).
    tft_output: The Transform output (the transformed feature spec).
    batch_size: Examples per batch (the last one may be smaller).
    max_title_tokens: Title tokens kept per movie.
    histories: int [users, max_context + 1] (`data.UserHistories.fitted`), or None for no
      context.
    max_context: Context width.
    shuffle_buffer: Records in the shuffle buffer; 0 reads in the written order.
    seed: Seed of the shuffle; each iteration (epoch) draws a new order from it.
    keep_rating: Keep `features.RATING_LABEL`.
  """
  dataset = data.records(file_patterns)
  if shuffle_buffer:
    dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
  parse = parser(tft_output, max_title_tokens,
                 None if histories is None else tf.constant(histories), max_context,
                 keep_rating)
  options = tf.data.Options()
  # Default graph rewrites serialize the pipeline with its captured history table; the
  # one that matters here, parallel parsing, is asked for directly.
  options.experimental_optimization.apply_default_optimizations = False
  # Fixed parallelism, not the autotuner: with it, some passes end in a stall of seconds
  # (its background thread at the iterator's teardown), one pass in a few.
  options.autotune.enabled = False
  return (dataset.batch(batch_size)
          .map(parse, num_parallel_calls=PARSE_CALLS, deterministic=True)
          .prefetch(PREFETCH_BATCHES).with_options(options))


@dataclasses.dataclass(frozen=True)
class TrainingInput:
  """What every stage that fits on the train split streams, in one object.

  Attributes:
    train_files: The transformed train split (without the validation ratings).
    num_examples: Ratings in `train_files`.
    tft_output: The Transform output.
    max_title_tokens: Title tokens kept per movie.
    histories: `data.UserHistories.fitted`, or None when no model reads the context.
    max_context: Context width.
  """
  train_files: Sequence[str]
  num_examples: int
  tft_output: tft.TFTransformOutput
  max_title_tokens: int
  histories: Optional[np.ndarray] = None
  max_context: int = 0

  def batches(self, batch_size: int, shuffle_buffer: int = 0, seed: int = 0,
              keep_rating: bool = False,
              files: Optional[Sequence[str]] = None) -> tf.data.Dataset:
    """`batches` of the train split (or of `files`, e.g. the validation split)."""
    return batches(self.train_files if files is None else files, self.tft_output,
                   batch_size, self.max_title_tokens, self.histories, self.max_context,
                   shuffle_buffer, seed, keep_rating)


def read_all(file_patterns: Sequence[str], tft_output: tft.TFTransformOutput,
             max_title_tokens: int, histories: Optional[np.ndarray] = None,
             max_context: int = 0, keep_rating: bool = False) -> Dict[str, tf.Tensor]:
  """Every example of small files (the validation split) in memory, in written order,
  the context joined when `histories` is given (as `batches`)."""
  parts = list(batches(file_patterns, tft_output, READ_BATCH, max_title_tokens, histories,
                       max_context, keep_rating=keep_rating))
  if not parts:
    return {}
  return {name: concat_rows([part[name] for part in parts]) for name in parts[0]}


def concat_rows(parts: Sequence[tf.Tensor]) -> tf.Tensor:
  """Concatenates along rows; 2-D parts are padded to the widest first."""
  if parts[0].shape.rank == 2:
    width = max(int(p.shape[1]) for p in parts)
    parts = [tf.pad(p, [[0, 0], [0, width - int(p.shape[1])]], constant_values=model.PADDING)
             for p in parts]
  return tf.concat(parts, axis=0)
