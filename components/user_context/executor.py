"""Executor of UserContext: the validation split and each user's history, with Beam.

Reads the ratings Examples (splits train and eval) and writes:
  * `artifacts.RATINGS_KEY`: the same examples, unchanged, in splits train, validation
    (a seeded `validation_fraction` of the train ratings) and eval;
  * `artifacts.USER_HISTORIES_KEY`: one example per user with a train rating, its most
    recent train movies (`features.HISTORY_FEATURES`).
A history is the top of the user's ratings by (time, movie id), combined per user with
`beam.combiners.Top` (bounded by max_context per key, whatever the user's count), so no
stage holds a user's whole list of ratings. Every split is written in the seeded hash
order of `_SortedWrite`, the same on every run.
"""
import os
from typing import Any, Dict, Iterator, List, Mapping, Tuple

from absl import logging
import apache_beam as beam
import tensorflow as tf
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components import component_params
from components.user_context import context
from contracts import artifacts
from contracts import configs
from contracts import features

EXAMPLES_KEY = "examples"  # Input: ExampleGen's ratings.
OUTPUT_KEY = artifacts.RATINGS_KEY
HISTORIES_KEY = artifacts.USER_HISTORIES_KEY
INPUT_SPLITS = (artifacts.TRAIN_SPLIT, artifacts.EVAL_SPLIT)
SPLITS = (artifacts.TRAIN_SPLIT, artifacts.VALIDATION_SPLIT, artifacts.EVAL_SPLIT)
_SHARD_PREFIX = "data_tfrecord"
# A written shard holds about this many records: one worker sorts a shard in memory.
_RECORDS_PER_SHARD = 1 << 18

# (timestamp, movie id) of one train rating: tuples order as histories do.
_Entry = Tuple[int, bytes]


def _single(example: tf.train.Example, name: str) -> Any:
  feature = example.features.feature[name]
  values = (feature.bytes_list.value or feature.int64_list.value)
  if len(values) != 1:
    raise ValueError(f"A rating example has {len(values)} values of {name!r}; expected 1.")
  return values[0]


class _Assign(beam.DoFn):
  """A serialized rating of one input split -> (order key, rating) tagged with its
  output split, and for train ratings (user, (time, movie)) tagged 'fitted' or
  'held_out' for the histories."""

  def __init__(self, split: str, config: configs.ContextConfig):
    super().__init__()
    self._split = split
    self._fraction = config.validation_fraction
    self._seed = config.validation_seed

  def process(self, serialized: bytes) -> Iterator[beam.pvalue.TaggedOutput]:
    example = tf.train.Example.FromString(serialized)
    if features.CONTEXT_MOVIE_IDS in example.features.feature:
      raise ValueError(f"The ratings already have {features.CONTEXT_MOVIE_IDS!r}; "
                       "UserContext reads ExampleGen's output, which has none.")
    user, movie = _single(example, features.USER_ID), _single(example, features.MOVIE_ID)
    split = self._split
    if split == artifacts.TRAIN_SPLIT:
      held_out = context.is_validation(user, movie, self._fraction, self._seed)
      entry = (user, (int(_single(example, features.TIMESTAMP)), movie))
      yield beam.pvalue.TaggedOutput("held_out" if held_out else "fitted", entry)
      split = artifacts.VALIDATION_SPLIT if held_out else split
    yield beam.pvalue.TaggedOutput(split, (context.write_order(user, movie, self._seed),
                                           serialized))


def _history_example(element: Tuple[bytes, Mapping[str, List[List[_Entry]]]],
                     seed: int) -> Tuple[int, bytes]:
  """(user, {'whole': [top entries], 'fitted': [top entries]}) -> (order key, example)."""
  user, tops = element
  example = tf.train.Example()
  example.features.feature[features.USER_ID].bytes_list.value.append(user)
  for name, key in ((features.HISTORY_MOVIE_IDS, "whole"),
                    (features.FITTED_HISTORY_MOVIE_IDS, "fitted")):
    entries = [entry for top in tops[key] for entry in top]
    example.features.feature[name].bytes_list.value.extend(context.recent_first(entries))
  return context.write_order(user, b"", seed), example.SerializeToString()


def _write_shard(element: Tuple[int, Iterator[Tuple[int, bytes]]], prefix: str,
                 num_shards: int) -> str:
  """Writes one shard's records sorted by (order key, record) to its own file."""
  shard, keyed = element
  path = f"{prefix}-{shard:05d}-of-{num_shards:05d}.gz"
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for _, record in sorted(keyed):
      writer.write(record)
  return path


class _SortedWrite(beam.PTransform):
  """Writes (order key, record) pairs as gzipped TFRecords in the order of their keys.

  The records are dealt to shards by key and each shard is sorted by key, so the files,
  read in name order, give the same sequence on every run: Beam's own sinks write in
  the order the work happened to run. Keys are uniform hashes, so the order is a seeded
  shuffle. A shard is sorted in one worker's memory; shards hold about
  `_RECORDS_PER_SHARD` records, so that memory does not grow with the data.
  """

  def __init__(self, directory: str, count: beam.pvalue.AsSingleton):
    super().__init__()
    self._directory = directory
    self._count = count

  def expand(self, keyed: beam.PCollection) -> beam.PCollection:
    prefix = os.path.join(self._directory, _SHARD_PREFIX)
    shards = (
        keyed
        | "Deal" >> beam.Map(lambda kv, n: (kv[0] % _num_shards(n), kv), n=self._count)
        | "GroupByShard" >> beam.GroupByKey())
    return shards | "WriteShard" >> beam.Map(
        lambda element, n: _write_shard(element, prefix, _num_shards(n)), n=self._count)


def _num_shards(count: int) -> int:
  return max(1, -(-count // _RECORDS_PER_SHARD))


def _ensure_files(directory: str) -> None:
  """An empty split (e.g. validation at fraction 0) still gets one (empty) file, so
  every reader finds the split."""
  tf.io.gfile.makedirs(directory)
  if not tf.io.gfile.glob(os.path.join(directory, "*")):
    with tf.io.TFRecordWriter(os.path.join(directory, f"{_SHARD_PREFIX}-00000-of-00001.gz"),
                              options="GZIP"):
      pass


def _write_split(pcoll: beam.PCollection, name: str, directory: str) -> None:
  tf.io.gfile.makedirs(directory)
  count = beam.pvalue.AsSingleton(pcoll | f"Count{name}" >> beam.combiners.Count.Globally())
  _ = pcoll | f"Write{name}" >> _SortedWrite(directory, count)


class Executor(base_beam_executor.BaseBeamExecutor):
  """Writes the validation split and the user histories; see the module docstring."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    config = component_params.config_from_exec_properties(configs.ContextConfig,
                                                          exec_properties)
    source = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
    output = artifact_utils.get_single_instance(output_dict[OUTPUT_KEY])
    histories = artifact_utils.get_single_instance(output_dict[HISTORIES_KEY])
    source_splits = artifact_utils.decode_split_names(source.split_names)
    missing = [split for split in INPUT_SPLITS if split not in source_splits]
    if missing:
      raise ValueError(f"The ratings have splits {source_splits}; UserContext needs "
                       f"{list(INPUT_SPLITS)} (missing {missing}).")
    for artifact, splits in ((output, SPLITS), (histories, (artifacts.USERS_SPLIT,))):
      artifact.split_names = artifact_utils.encode_split_names(list(splits))
      examples_utils.set_payload_format(artifact,
                                        example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
      examples_utils.set_file_format(artifact, "tfrecords_gzip")
    output_dirs = {split: artifact_utils.get_split_uri([output], split) for split in SPLITS}
    users_dir = artifact_utils.get_split_uri([histories], artifacts.USERS_SPLIT)

    with self._make_beam_pipeline() as pipeline:
      tagged = {}
      for split in INPUT_SPLITS:
        pattern = os.path.join(artifact_utils.get_split_uri([source], split), "*")
        if not tf.io.gfile.glob(pattern):
          raise ValueError(f"The {split} split of the ratings has no files ({pattern}).")
        tagged[split] = (
            pipeline
            | f"Read{split}" >> beam.io.ReadFromTFRecord(
                pattern, coder=beam.coders.BytesCoder(),
                compression_type=beam.io.filesystem.CompressionTypes.GZIP)
            | f"Assign{split}" >> beam.ParDo(_Assign(split, config)).with_outputs(
                artifacts.TRAIN_SPLIT, artifacts.VALIDATION_SPLIT, artifacts.EVAL_SPLIT,
                "fitted", "held_out"))
      train, evaluation = tagged[artifacts.TRAIN_SPLIT], tagged[artifacts.EVAL_SPLIT]
      by_split = {artifacts.TRAIN_SPLIT: train[artifacts.TRAIN_SPLIT],
                  artifacts.VALIDATION_SPLIT: train[artifacts.VALIDATION_SPLIT],
                  artifacts.EVAL_SPLIT: evaluation[artifacts.EVAL_SPLIT]}
      for split, pcoll in by_split.items():
        _write_split(pcoll, split, output_dirs[split])
      fitted = train["fitted"]
      whole = ((fitted, train["held_out"]) | "WholeTrain" >> beam.Flatten())
      tops = {
          # The fitted history keeps one more: a training rating drops its own movie.
          "fitted": fitted | "TopFitted" >> beam.combiners.Top.LargestPerKey(
              config.max_context + 1),
          "whole": whole | "TopWhole" >> beam.combiners.Top.LargestPerKey(config.max_context),
      }
      user_rows = (tops | "JoinTops" >> beam.CoGroupByKey()
                   | "HistoryExample" >> beam.Map(_history_example,
                                                  seed=config.validation_seed))
      _write_split(user_rows, "users", users_dir)
    for directory in [*output_dirs.values(), users_dir]:
      _ensure_files(directory)
    logging.info("Wrote the validation split (%.3g of train) and histories of up to %d "
                 "movies.", config.validation_fraction, config.max_context)
