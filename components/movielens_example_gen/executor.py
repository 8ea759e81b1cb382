"""Executor of MovieLensExampleGen: MovieLens files -> ratings and catalog tf.Examples.

The catalog is small (62k movies in ml-25m) and is parsed in the driver process; the ratings
file (25M lines in ml-25m) is streamed by one Beam worker, which keeps exact line numbers for
error messages and enforces the bad-line tolerance as it goes, then batches fan out to
workers that split, encode and write TFRecord shards.
"""
import dataclasses
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Set

from absl import logging
import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components import component_params
from components.movielens_example_gen import encoding
from components.movielens_example_gen import splits
from contracts import artifacts
from contracts import configs
from movielens import errors
from movielens import formats
from movielens import readers
from movielens import sources

# Execution properties besides the DataConfig fields (shared with component.py).
DATA_DIR_KEY = "data_dir"
INPUT_FINGERPRINT_KEY = "input_fingerprint"

_SHARD_PREFIX = "data_tfrecord"
_COUNTER_NAMESPACE = "MovieLensExampleGen"
_BATCH_SIZE = 100_000


@dataclasses.dataclass
class _IndexedBatch:
  index: int
  batch: readers.RatingBatch


class _ReadRatings(beam.DoFn):
  """Streams the ratings file; emits batches and, tagged 'bad_lines', skipped lines.

  One worker reads the whole file, so it knows the running count of bad lines and fails
  as soon as the tolerance is exceeded instead of after a full pass.
  """

  def __init__(self, source: sources.MovieLensSource, movie_ids: Set[str],
               max_bad_lines: int, catalog_errors: Sequence[errors.LineError]):
    self._source = source
    self._movie_ids = movie_ids
    self._max_bad_lines = max_bad_lines
    # The tolerance covers both files; the catalog's bad lines count first.
    self._catalog_errors = list(catalog_errors)
    self._bad_lines = beam.metrics.Metrics.counter(_COUNTER_NAMESPACE, "bad_rating_lines")

  def process(self, unused_element) -> Iterator[Any]:
    log = errors.LineErrorLog()
    log.extend(self._catalog_errors)
    batches = readers.iter_rating_batches(self._source, self._movie_ids, _BATCH_SIZE)
    for index, batch in enumerate(batches):
      log.extend(batch.errors)
      self._bad_lines.inc(len(batch.errors))
      log.raise_if_over(self._max_bad_lines, "the movie catalog and ratings")
      for error in batch.errors:
        yield beam.pvalue.TaggedOutput("bad_lines", str(error))
      if len(batch):
        yield _IndexedBatch(index, batch)


class _CollectTimestamps(beam.CombineFn):
  """Gathers the kept ratings' timestamps for the exact temporal cutoff (8 bytes each).

  Only ratings at or above min_rating count, so eval gets `eval_fraction` of what is
  written, not of what was read.
  """

  def __init__(self, min_rating: float):
    super().__init__()
    self._min_rating = min_rating

  def create_accumulator(self) -> List[np.ndarray]:
    return []

  def add_input(self, acc: List[np.ndarray], batch: _IndexedBatch) -> List[np.ndarray]:
    ratings = batch.batch
    acc.append(ratings.timestamps[ratings.ratings >= self._min_rating])
    return acc

  def merge_accumulators(self, accs: List[List[np.ndarray]]) -> List[np.ndarray]:
    return [array for acc in accs for array in acc]

  def extract_output(self, acc: List[np.ndarray]) -> np.ndarray:
    return np.concatenate(acc) if acc else np.zeros([0], np.int64)


def _write_shard(examples: List[bytes], split_dir: str, index: int) -> None:
  path = os.path.join(split_dir, f"{_SHARD_PREFIX}-{index:05d}.gz")
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for example in examples:
      writer.write(example)


class _SplitEncodeWrite(beam.DoFn):
  """Assigns each rating of a batch to a split, encodes and writes one shard per split."""

  def __init__(self, options: configs.DataConfig, catalog: Mapping[str, formats.Movie],
               split_dirs: Mapping[str, str]):
    self._options = options
    self._catalog = catalog
    self._split_dirs = split_dirs
    self._counters = {split: beam.metrics.Metrics.counter(_COUNTER_NAMESPACE, f"{split}_examples")
                      for split in split_dirs}
    self._below_min_rating = beam.metrics.Metrics.counter(_COUNTER_NAMESPACE,
                                                          "below_min_rating")

  def process(self, indexed: _IndexedBatch, cutoff: Optional[int] = None) -> None:
    batch = indexed.batch
    if self._options.split_method == configs.TEMPORAL_SPLIT:
      is_eval = splits.temporal_eval_mask(batch.timestamps, cutoff)
    else:
      is_eval = splits.random_eval_mask(batch.user_ids, batch.movie_ids,
                                        self._options.eval_fraction, self._options.split_seed)
    keep = batch.ratings >= self._options.min_rating
    self._below_min_rating.inc(int((~keep).sum()))
    for split, in_split in ((artifacts.TRAIN_SPLIT, ~is_eval & keep),
                            (artifacts.EVAL_SPLIT, is_eval & keep)):
      rows = np.flatnonzero(in_split)
      if not len(rows):
        continue
      examples = encoding.ratings_to_examples(
          [batch.user_ids[i] for i in rows], [batch.movie_ids[i] for i in rows],
          batch.ratings[rows], batch.timestamps[rows], self._catalog)
      _write_shard(examples, self._split_dirs[split], indexed.index)
      self._counters[split].inc(len(rows))


def _counter_value(result: beam.runners.runner.PipelineResult, name: str) -> int:
  query = result.metrics().query(
      beam.metrics.MetricsFilter().with_namespace(_COUNTER_NAMESPACE).with_name(name))
  return int(sum(c.committed or 0 for c in query["counters"]))


class Executor(base_beam_executor.BaseBeamExecutor):
  """Reads MovieLens (any GroupLens format, directory or zip) into Examples artifacts."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Writes rating examples (train/eval) and catalog examples.

    Args:
      input_dict: Unused; the data location is an execution property.
      output_dict: 'examples' (ratings, splits train and eval) and 'movies' (the catalog,
        split 'catalog'), each one Examples artifact.
      exec_properties: DATA_DIR_KEY, INPUT_FINGERPRINT_KEY (only a cache key) and the
        fields of `configs.DataConfig`.

    Raises:
      errors.MovieLensFormatError: The data location or a required file is missing.
      errors.MalformedDataError: More malformed lines than `max_bad_lines`.
      ValueError: A split, or the catalog, came out empty.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    options = component_params.config_from_exec_properties(configs.DataConfig,
                                                           exec_properties)
    source = sources.detect_source(exec_properties[DATA_DIR_KEY])
    logging.info("Reading %s data from %s.", source.format, source.location)

    catalog, catalog_errors = readers.read_movies(source)
    catalog_errors.raise_if_over(options.max_bad_lines, "the movie catalog")
    if not catalog:
      raise ValueError(f"The movie catalog {source.display_path(source.movies_file)} "
                       "has no movies.")
    ratings_artifact = artifact_utils.get_single_instance(output_dict[artifacts.EXAMPLES_KEY])
    movies_artifact = artifact_utils.get_single_instance(output_dict[artifacts.MOVIES_KEY])
    self._write_catalog(catalog, movies_artifact)

    result = self._write_ratings(source, catalog, options, catalog_errors, ratings_artifact)
    counts = {split: _counter_value(result, f"{split}_examples")
              for split in (artifacts.TRAIN_SPLIT, artifacts.EVAL_SPLIT)}
    bad_rating_lines = _counter_value(result, "bad_rating_lines")
    below_min_rating = _counter_value(result, "below_min_rating")
    _record_counts(ratings_artifact, movies_artifact, counts, len(catalog),
                   catalog_errors.count + bad_rating_lines, below_min_rating)
    if catalog_errors.count + bad_rating_lines:
      logging.warning("Skipped %d malformed lines (tolerance %d); all listed in %s.",
                      catalog_errors.count + bad_rating_lines, options.max_bad_lines,
                      os.path.join(ratings_artifact.uri, artifacts.BAD_LINES_FILE))
    if below_min_rating:
      logging.info("Left out %d ratings below min_rating=%s.", below_min_rating,
                   options.min_rating)
    _check_not_empty(counts, options, below_min_rating)
    logging.info("Wrote %d train and %d eval ratings, %d movies.", counts[artifacts.TRAIN_SPLIT],
                 counts[artifacts.EVAL_SPLIT], len(catalog))

  def _write_catalog(self, catalog: Mapping[str, formats.Movie],
                     movies_artifact: types.Artifact) -> None:
    movies_artifact.split_names = artifact_utils.encode_split_names([artifacts.CATALOG_SPLIT])
    _mark_tf_examples(movies_artifact)
    split_dir = artifact_utils.get_split_uri([movies_artifact], artifacts.CATALOG_SPLIT)
    tf.io.gfile.makedirs(split_dir)
    _write_shard(encoding.movies_to_examples(list(catalog.values())), split_dir, 0)

  def _write_ratings(self, source: sources.MovieLensSource,
                     catalog: Mapping[str, formats.Movie], options: configs.DataConfig,
                     catalog_errors: errors.LineErrorLog,
                     ratings_artifact: types.Artifact) -> beam.runners.runner.PipelineResult:
    ratings_artifact.split_names = artifact_utils.encode_split_names(
        [artifacts.TRAIN_SPLIT, artifacts.EVAL_SPLIT])
    _mark_tf_examples(ratings_artifact)
    split_dirs = {split: artifact_utils.get_split_uri([ratings_artifact], split)
                  for split in (artifacts.TRAIN_SPLIT, artifacts.EVAL_SPLIT)}
    for split_dir in split_dirs.values():
      tf.io.gfile.makedirs(split_dir)

    pipeline = self._make_beam_pipeline()
    read = (
        pipeline
        | "Start" >> beam.Create([None])
        | "ReadRatings" >> beam.ParDo(
            _ReadRatings(source, set(catalog), options.max_bad_lines,
                         catalog_errors.examples)).with_outputs(
                             "bad_lines", main="batches"))
    batches = read.batches | "Redistribute" >> beam.Reshuffle()
    cutoff = None
    if options.split_method == configs.TEMPORAL_SPLIT:
      cutoff = beam.pvalue.AsSingleton(
          read.batches
          | "CollectTimestamps" >> beam.CombineGlobally(_CollectTimestamps(options.min_rating))
          | "Cutoff" >> beam.Map(splits.temporal_cutoff, options.eval_fraction))
    _ = batches | "SplitEncodeWrite" >> beam.ParDo(
        _SplitEncodeWrite(options, catalog, split_dirs), cutoff)
    bad_lines = ([pipeline | "CatalogBadLines" >> beam.Create(
        [str(e) for e in catalog_errors.examples])] + [read.bad_lines]
                 | "AllBadLines" >> beam.Flatten())
    _ = bad_lines | "WriteBadLines" >> beam.io.WriteToText(
        os.path.join(ratings_artifact.uri, artifacts.BAD_LINES_FILE), shard_name_template="")
    result = pipeline.run()
    result.wait_until_finish()
    return result


def _mark_tf_examples(artifact: types.Artifact) -> None:
  examples_utils.set_payload_format(artifact, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
  examples_utils.set_file_format(artifact, "tfrecords_gzip")


def _record_counts(ratings_artifact: types.Artifact, movies_artifact: types.Artifact,
                   counts: Mapping[str, int], num_movies: int, bad_lines: int,
                   below_min_rating: int) -> None:
  """Counts as artifact properties, visible in ML Metadata and the run summary."""
  for split, count in counts.items():
    ratings_artifact.set_int_custom_property(f"num_{split}_examples", count)
  ratings_artifact.set_int_custom_property("num_bad_lines", bad_lines)
  ratings_artifact.set_int_custom_property("num_below_min_rating", below_min_rating)
  movies_artifact.set_int_custom_property("num_movies", num_movies)


def _check_not_empty(counts: Mapping[str, int], options: configs.DataConfig,
                     below_min_rating: int) -> None:
  for split, count in counts.items():
    if count == 0:
      raise ValueError(
          f"The {split} split is empty ({counts[artifacts.TRAIN_SPLIT]} train, "
          f"{counts[artifacts.EVAL_SPLIT]} eval "
          f"ratings; {below_min_rating} below min_rating={options.min_rating}) with "
          f"split_method={options.split_method!r}, eval_fraction={options.eval_fraction}. "
          "Use more data, another eval_fraction or a lower min_rating.")
