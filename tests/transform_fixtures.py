"""Synthetic MovieLens -> raw examples -> Transform output, as the pipeline lays them out.

`build(root)` runs, in process and without TFX orchestration, what ExampleGen and Transform
do upstream of the Trainer:

  root/raw/                          synthetic ml-100k-format files
  root/examples/Split-{train,eval,catalog}/   gzip TFRecords of raw tf.Examples (ratings
                                     with the UserContext component's context)
  root/transform_graph/              tft_beam.WriteTransformFn output
  root/transformed/Split-{train,eval}/        gzip TFRecords of transformed tf.Examples

Transform runs tft_beam.AnalyzeAndTransformDataset on the train split (read with TFXIO,
like the Transform component) and TransformDataset on eval, on the DirectRunner.
"""
import dataclasses
import os
from typing import Any, Dict, List, Mapping

import numpy as np

import apache_beam as beam
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import metadata_io
from tensorflow_transform.tf_metadata import schema_utils
from tfx_bsl.public import tfxio

from components.movielens_example_gen import encoding
from components.movielens_example_gen import splits
from components.user_context import context
from contracts import configs
from contracts import features
from movielens import formats
from movielens import readers
from movielens import sources
from movielens import synthetic
from trainer_module import preprocessing

SYNTHETIC_CONFIG = configs.SyntheticDataConfig(synthetic_users=60, synthetic_movies=160,
                                               synthetic_ratings=2400, synthetic_seed=3)
TRANSFORM_CONFIG = {"timestamp_buckets": 10, "title_token_min_count": 2, "num_oov_buckets": 1}
# Context movies per rating, as the UserContext component adds them.
MAX_CONTEXT = 10
EVAL_FRACTION = 0.2
SPLIT_SEED = 42


@dataclasses.dataclass
class Ratings:
  user_ids: List[str]
  movie_ids: List[str]
  ratings: np.ndarray
  timestamps: np.ndarray

  def select(self, mask: np.ndarray) -> "Ratings":
    return Ratings([u for u, keep in zip(self.user_ids, mask) if keep],
                   [m for m, keep in zip(self.movie_ids, mask) if keep],
                   self.ratings[mask], self.timestamps[mask])

  def __len__(self) -> int:
    return len(self.user_ids)


@dataclasses.dataclass
class TransformFixture:
  root: str
  catalog: Dict[str, formats.Movie]  # movie id -> Movie, in file order.
  train: Ratings
  eval: Ratings
  raw_train_pattern: str
  raw_eval_pattern: str
  catalog_pattern: str
  transform_output: str  # WriteTransformFn directory.
  transformed_train_pattern: str
  transformed_eval_pattern: str
  transform_config: Mapping[str, Any]
  max_context: int


def _write_gzip_tfrecords(path: str, records: List[bytes]) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for record in records:
      writer.write(record)


def _read_ratings(raw_dir: str):
  source = sources.detect_source(raw_dir)
  catalog, log = readers.read_movies(source)
  assert log.count == 0, log.examples
  user_ids, movie_ids, ratings, timestamps = [], [], [], []
  for batch in readers.iter_rating_batches(source, catalog):
    assert not batch.errors, batch.errors
    user_ids += batch.user_ids
    movie_ids += batch.movie_ids
    ratings.append(batch.ratings)
    timestamps.append(batch.timestamps)
  return catalog, Ratings(user_ids, movie_ids, np.concatenate(ratings),
                          np.concatenate(timestamps))


def _encode(ratings: Ratings, catalog, train: Ratings, max_context: int) -> List[bytes]:
  """Rating examples, each with its context from `train` (the UserContext rule)."""
  histories: Dict[str, list] = {}
  for user, movie, timestamp in zip(train.user_ids, train.movie_ids, train.timestamps):
    histories.setdefault(user, []).append((int(timestamp), movie.encode()))
  ordered = {user: context.recent_first(history) for user, history in histories.items()}
  records = []
  for user, movie, serialized in zip(ratings.user_ids, ratings.movie_ids,
                                     encoding.ratings_to_examples(
                                         ratings.user_ids, ratings.movie_ids, ratings.ratings,
                                         ratings.timestamps, catalog)):
    example = tf.train.Example.FromString(serialized)
    example.features.feature[features.CONTEXT_MOVIE_IDS].bytes_list.value.extend(
        context.context_of(ordered.get(user, []), movie.encode(), max_context))
    records.append(example.SerializeToString())
  return records


def raw_spec_with_context(max_context: int) -> Dict[str, Any]:
  """The raw feature spec SchemaGen infers for UserContext's output: the context has a
  fixed width (it is always padded to max_context values)."""
  return {**features.raw_feature_spec(),
          features.CONTEXT_MOVIE_IDS: tf.io.FixedLenFeature([max_context], tf.string)}


def _transform(raw_train: str, raw_eval: str, out_root: str,
               transform_config: Mapping[str, Any], max_context: int):
  schema = schema_utils.schema_from_feature_spec(raw_spec_with_context(max_context))
  train_io = tfxio.TFExampleRecord(file_pattern=raw_train, schema=schema,
                                   telemetry_descriptors=["test"])
  eval_io = tfxio.TFExampleRecord(file_pattern=raw_eval, schema=schema,
                                  telemetry_descriptors=["test"])
  graph_dir = os.path.join(out_root, "transform_graph")
  transformed = os.path.join(out_root, "transformed")
  config = dict(transform_config)
  options = beam.options.pipeline_options.PipelineOptions(
      ["--direct_running_mode=in_memory", "--direct_num_workers=1"])
  with beam.Pipeline(options=options) as pipeline:
    with tft_beam.Context(temp_dir=os.path.join(out_root, "tft_tmp"),
                          force_tf_compat_v1=False):
      raw = pipeline | "ReadTrain" >> train_io.BeamSource()
      (train_data, metadata), transform_fn = (
          (raw, train_io.TensorAdapterConfig())
          | tft_beam.AnalyzeAndTransformDataset(
              lambda inputs: preprocessing.preprocessing_fn(inputs, config),
              output_record_batches=False))
      raw_eval_data = pipeline | "ReadEval" >> eval_io.BeamSource()
      eval_data, _ = (((raw_eval_data, eval_io.TensorAdapterConfig()), transform_fn)
                      | tft_beam.TransformDataset(output_record_batches=False))
      coder = tft.coders.ExampleProtoCoder(metadata.schema)
      for name, split_data in (("train", train_data), ("eval", eval_data)):
        _ = (split_data
             | f"Encode{name}" >> beam.Map(coder.encode)
             | f"Write{name}" >> beam.io.WriteToTFRecord(
                 os.path.join(transformed, f"Split-{name}", "transformed_examples"),
                 file_name_suffix=".gz",
                 compression_type=beam.io.filesystem.CompressionTypes.GZIP))
      _ = transform_fn | tft_beam.WriteTransformFn(graph_dir)
  # The raw schema next to the graph, where the TFX Transform component writes it
  # (tft.TFTransformOutput.raw_feature_spec reads it).
  metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema),
                             os.path.join(graph_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
  return (graph_dir, os.path.join(transformed, "Split-train", "*"),
          os.path.join(transformed, "Split-eval", "*"))


def build(root: str, config: configs.SyntheticDataConfig = SYNTHETIC_CONFIG,
          transform_config: Mapping[str, Any] = TRANSFORM_CONFIG,
          max_context: int = MAX_CONTEXT) -> TransformFixture:
  """Generates, encodes, splits, adds contexts to and transforms a synthetic MovieLens set
  under `root`."""
  raw_dir = synthetic.generate(os.path.join(root, "raw"), config)
  catalog, ratings = _read_ratings(raw_dir)
  is_eval = splits.random_eval_mask(ratings.user_ids, ratings.movie_ids, EVAL_FRACTION,
                                    SPLIT_SEED)
  train, evaluation = ratings.select(~is_eval), ratings.select(is_eval)

  examples = os.path.join(root, "examples")
  _write_gzip_tfrecords(os.path.join(examples, "Split-train", "data.gz"),
                        _encode(train, catalog, train, max_context))
  _write_gzip_tfrecords(os.path.join(examples, "Split-eval", "data.gz"),
                        _encode(evaluation, catalog, train, max_context))
  _write_gzip_tfrecords(os.path.join(examples, "Split-catalog", "data.gz"),
                        encoding.movies_to_examples(list(catalog.values())))
  raw_train = os.path.join(examples, "Split-train", "*")
  raw_eval = os.path.join(examples, "Split-eval", "*")
  graph_dir, transformed_train, transformed_eval = _transform(
      raw_train, raw_eval, root, transform_config, max_context)
  return TransformFixture(
      root=root, catalog=catalog, train=train, eval=evaluation,
      raw_train_pattern=raw_train, raw_eval_pattern=raw_eval,
      catalog_pattern=os.path.join(examples, "Split-catalog", "*"),
      transform_output=graph_dir, transformed_train_pattern=transformed_train,
      transformed_eval_pattern=transformed_eval, transform_config=dict(transform_config),
      max_context=max_context)
