"""Executor of MovieLensExampleGen: MovieLens files -> ratings and catalog tf.Examples.

The catalog is small (62k movies in ml-25m) and is parsed in the driver process; the ratings
file (25M lines in ml-25m) is streamed by one Beam worker, which keeps exact line numbers for
error messages and enforces the bad-line tolerance as it goes, then batches fan out to
workers that split, encode and write TFRecord shards. Duplicate (user, movie) ratings are
found over all batches first (movielens.duplicates: the latest rating of a pair is kept),
so the split and encode step drops them wherever they are.
"""
import dataclasses
import functools
import os
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set

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
from movielens import duplicates
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
_NO_ROWS = np.zeros([0], np.int64)


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


class _ConcatenateThen(beam.CombineFn):
  """Collects numpy arrays from every worker, then applies `finish` to the list of them."""

  def __init__(self, finish: Callable[[List[np.ndarray]], Any]):
    super().__init__()
    self._finish = finish

  def create_accumulator(self) -> List[np.ndarray]:
    return []

  def add_input(self, acc: List[np.ndarray], array: np.ndarray) -> List[np.ndarray]:
    acc.append(array)
    return acc

  def merge_accumulators(self, accs: List[List[np.ndarray]]) -> List[np.ndarray]:
    return [array for acc in accs for array in acc]

  def extract_output(self, acc: List[np.ndarray]) -> Any:
    return self._finish(acc)


def _pair_keys(indexed: _IndexedBatch) -> np.ndarray:
  return duplicates.pair_keys(indexed.batch.user_ids, indexed.batch.movie_ids)


def _candidates(indexed: _IndexedBatch, repeated: np.ndarray) -> np.ndarray:
  batch = indexed.batch
  if not len(repeated):
    return np.empty(0, duplicates.CANDIDATE_DTYPE)
  return duplicates.candidates(_pair_keys(indexed), repeated, batch.user_ids,
                               batch.movie_ids, batch.timestamps, indexed.index)


class _DuplicatesToDrop(beam.PTransform):
  """Rating batches -> {batch index: rows to drop}, as one value for a side input.

  Two passes over all batches, wherever they are processed: the pair keys repeated
  anywhere (8 bytes a rating), then the exact pairs among their few ratings.
  """

  def expand(self, batches: beam.PCollection) -> beam.PCollection:
    repeated = (batches
                | "PairKeys" >> beam.Map(_pair_keys)
                | "RepeatedKeys" >> beam.CombineGlobally(
                    _ConcatenateThen(duplicates.repeated_keys)))
    return (batches
            | "Candidates" >> beam.Map(_candidates, beam.pvalue.AsSingleton(repeated))
            | "PositionsToDrop" >> beam.CombineGlobally(
                _ConcatenateThen(duplicates.positions_to_drop)))


def _unique(indexed: _IndexedBatch, to_drop: Mapping[int, np.ndarray]) -> np.ndarray:
  """True for the ratings of the batch that are not dropped as duplicates."""
  unique = np.ones(len(indexed.batch), dtype=bool)
  unique[to_drop.get(indexed.index, _NO_ROWS)] = False
  return unique


def _kept_timestamps(indexed: _IndexedBatch, min_rating: float,
                     to_drop: Mapping[int, np.ndarray]) -> np.ndarray:
  """Timestamps of the ratings that will be written, for the exact temporal cutoff.

  Only kept ratings count (not duplicates, not below min_rating), so eval gets
  `eval_fraction` of what is written, not of what was read.
  """
  batch = indexed.batch
  return batch.timestamps[_unique(indexed, to_drop) & (batch.ratings >= min_rating)]


def _temporal_cutoff(timestamps: List[np.ndarray], eval_fraction: float) -> int:
  every = np.concatenate(timestamps) if timestamps else np.zeros([0], np.int64)
  return splits.temporal_cutoff(every, eval_fraction)


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
    self._duplicates = beam.metrics.Metrics.counter(_COUNTER_NAMESPACE, "duplicate_ratings")

  def process(self, indexed: _IndexedBatch, to_drop: Mapping[int, np.ndarray],
              cutoff: Optional[int] = None) -> None:
    batch = indexed.batch
    if self._options.split_method == configs.TEMPORAL_SPLIT:
      is_eval = splits.temporal_eval_mask(batch.timestamps, cutoff)
    else:
      is_eval = splits.random_eval_mask(batch.user_ids, batch.movie_ids,
                                        self._options.eval_fraction, self._options.split_seed)
    unique = _unique(indexed, to_drop)
    self._duplicates.inc(int((~unique).sum()))
    keep = unique & (batch.ratings >= self._options.min_rating)
    self._below_min_rating.inc(int((unique & ~keep).sum()))
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
    left_out = {name: _counter_value(result, name)
                for name in ("bad_rating_lines", "duplicate_ratings", "below_min_rating")}
    _record_counts(ratings_artifact, movies_artifact, counts, len(catalog),
                   catalog_errors.count, left_out)
    _log_left_out(catalog_errors.count, left_out, options, ratings_artifact.uri)
    _check_not_empty(counts, options, left_out,
                     source.display_path(source.ratings_file))
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
    to_drop = beam.pvalue.AsSingleton(batches | "Duplicates" >> _DuplicatesToDrop())
    cutoff = None
    if options.split_method == configs.TEMPORAL_SPLIT:
      cutoff = beam.pvalue.AsSingleton(
          batches
          | "KeptTimestamps" >> beam.Map(_kept_timestamps, options.min_rating, to_drop)
          | "Cutoff" >> beam.CombineGlobally(_ConcatenateThen(
              functools.partial(_temporal_cutoff, eval_fraction=options.eval_fraction))))
    _ = batches | "SplitEncodeWrite" >> beam.ParDo(
        _SplitEncodeWrite(options, catalog, split_dirs), to_drop, cutoff)
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
                   counts: Mapping[str, int], num_movies: int, bad_catalog_lines: int,
                   left_out: Mapping[str, int]) -> None:
  """Counts as artifact properties, visible in ML Metadata and the run summary."""
  for split, count in counts.items():
    ratings_artifact.set_int_custom_property(f"num_{split}_examples", count)
  ratings_artifact.set_int_custom_property(
      "num_bad_lines", bad_catalog_lines + left_out["bad_rating_lines"])
  ratings_artifact.set_int_custom_property("num_duplicate_ratings",
                                           left_out["duplicate_ratings"])
  ratings_artifact.set_int_custom_property("num_below_min_rating",
                                           left_out["below_min_rating"])
  movies_artifact.set_int_custom_property("num_movies", num_movies)


def _log_left_out(bad_catalog_lines: int, left_out: Mapping[str, int],
                  options: configs.DataConfig, ratings_uri: str) -> None:
  """Logs each kind of input line that was read but not written."""
  bad_lines = bad_catalog_lines + left_out["bad_rating_lines"]
  if bad_lines:
    logging.warning("Skipped %d malformed lines (tolerance %d); all listed in %s.",
                    bad_lines, options.max_bad_lines,
                    os.path.join(ratings_uri, artifacts.BAD_LINES_FILE))
  if left_out["duplicate_ratings"]:
    logging.warning("Dropped %d duplicate ratings: a (user, movie) pair rated more than "
                    "once keeps its latest rating (the later line on equal timestamps).",
                    left_out["duplicate_ratings"])
  if left_out["below_min_rating"]:
    logging.info("Left out %d ratings below min_rating=%s.", left_out["below_min_rating"],
                 options.min_rating)


def _check_not_empty(counts: Mapping[str, int], options: configs.DataConfig,
                     left_out: Mapping[str, int], ratings_path: str) -> None:
  """Raises ValueError naming why a split is empty: nothing usable read, or the split."""
  if not sum(counts.values()) + left_out["duplicate_ratings"] + left_out["below_min_rating"]:
    raise ValueError(
        f"No ratings could be read from {ratings_path}: all {left_out['bad_rating_lines']} "
        "lines were skipped as malformed (tolerated by --max_bad_lines); they are listed "
        f"in the ratings artifact's {artifacts.BAD_LINES_FILE}.")
  for split, count in counts.items():
    if count == 0:
      raise ValueError(
          f"The {split} split is empty ({counts[artifacts.TRAIN_SPLIT]} train, "
          f"{counts[artifacts.EVAL_SPLIT]} eval "
          f"ratings; {left_out['below_min_rating']} below min_rating={options.min_rating}) "
          f"with split_method={options.split_method!r}, "
          f"eval_fraction={options.eval_fraction}. "
          "Use more data, another eval_fraction or a lower min_rating.")
