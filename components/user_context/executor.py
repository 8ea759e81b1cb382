"""Executor of UserContext: joins each rating with its user's train history, with Beam.

Reads the ratings Examples (splits train and eval), groups every rating by user (one
CoGroupByKey), and writes the same examples with `features.CONTEXT_MOVIE_IDS` added,
as gzipped TFRecords in the same splits. A user's history is held in one worker's memory
while their ratings are written (ml-25m's most active user has ~33k ratings).
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
OUTPUT_KEY = "examples_with_context"
SPLITS = (artifacts.TRAIN_SPLIT, artifacts.EVAL_SPLIT)
_SHARD_PREFIX = "data_tfrecord"
_COUNTER_NAMESPACE = "UserContext"

# (timestamp, movie id, serialized example) of one rating.
_Rating = Tuple[int, bytes, bytes]


def _single(example: tf.train.Example, name: str) -> Any:
  feature = example.features.feature[name]
  values = (feature.bytes_list.value or feature.int64_list.value)
  if len(values) != 1:
    raise ValueError(f"A rating example has {len(values)} values of {name!r}; expected 1.")
  return values[0]


def _key_by_user(serialized: bytes) -> Tuple[bytes, _Rating]:
  example = tf.train.Example.FromString(serialized)
  if features.CONTEXT_MOVIE_IDS in example.features.feature:
    raise ValueError(f"The ratings already have {features.CONTEXT_MOVIE_IDS!r}; UserContext "
                     "reads ExampleGen's output, which has none.")
  return (_single(example, features.USER_ID),
          (int(_single(example, features.TIMESTAMP)), _single(example, features.MOVIE_ID),
           serialized))


class _AddContext(beam.DoFn):
  """(user, {split: [ratings]}) -> serialized examples with context, tagged by split."""

  def __init__(self, max_context: int):
    super().__init__()
    self._max_context = max_context
    self._empty = beam.metrics.Metrics.counter(_COUNTER_NAMESPACE, "empty_contexts")

  def process(self, element: Tuple[bytes, Mapping[str, List[_Rating]]]
              ) -> Iterator[beam.pvalue.TaggedOutput]:
    _, grouped = element
    ratings = {split: list(grouped[split]) for split in SPLITS}  # Iterated twice.
    history = context.recent_first((t, m) for t, m, _ in ratings[artifacts.TRAIN_SPLIT])
    for split in SPLITS:
      for _, movie_id, serialized in ratings[split]:
        movies = context.context_of(history, movie_id, self._max_context)
        if not movies[0]:
          self._empty.inc()
        example = tf.train.Example.FromString(serialized)
        example.features.feature[features.CONTEXT_MOVIE_IDS].bytes_list.value.extend(movies)
        yield beam.pvalue.TaggedOutput(split, example.SerializeToString())


class Executor(base_beam_executor.BaseBeamExecutor):
  """Adds `context_movie_ids` to every rating of the train and eval splits."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    config = component_params.config_from_exec_properties(configs.ContextConfig,
                                                          exec_properties)
    source = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
    output = artifact_utils.get_single_instance(output_dict[OUTPUT_KEY])
    source_splits = artifact_utils.decode_split_names(source.split_names)
    missing = [split for split in SPLITS if split not in source_splits]
    if missing:
      raise ValueError(f"The ratings have splits {source_splits}; UserContext needs "
                       f"{list(SPLITS)} (missing {missing}).")
    output.split_names = artifact_utils.encode_split_names(list(SPLITS))
    examples_utils.set_payload_format(output,
                                      example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(output, "tfrecords_gzip")

    with self._make_beam_pipeline() as pipeline:
      keyed = {}
      for split in SPLITS:
        pattern = os.path.join(artifact_utils.get_split_uri([source], split), "*")
        if not tf.io.gfile.glob(pattern):
          raise ValueError(f"The {split} split of the ratings has no files ({pattern}).")
        keyed[split] = (
            pipeline
            | f"Read{split}" >> beam.io.ReadFromTFRecord(
                pattern, coder=beam.coders.BytesCoder(),
                compression_type=beam.io.filesystem.CompressionTypes.GZIP)
            | f"KeyByUser{split}" >> beam.Map(_key_by_user))
      with_context = (keyed
                      | "GroupByUser" >> beam.CoGroupByKey()
                      | "AddContext" >> beam.ParDo(_AddContext(config.max_context))
                      .with_outputs(*SPLITS))
      for split in SPLITS:
        _ = with_context[split] | f"Write{split}" >> beam.io.WriteToTFRecord(
            os.path.join(artifact_utils.get_split_uri([output], split), _SHARD_PREFIX),
            file_name_suffix=".gz", coder=beam.coders.BytesCoder(),
            compression_type=beam.io.filesystem.CompressionTypes.GZIP)
    logging.info("Added contexts of up to %d movies to the %s splits.", config.max_context,
                 "/".join(SPLITS))
