"""Synthetic MovieLens -> raw examples -> UserContext -> Transform output, as the pipeline
lays them out.

`build(root)` runs, in process and without TFX orchestration, what ExampleGen, UserContext
(its real executor) and Transform do upstream of the Trainer:

  root/raw/                          synthetic ml-100k-format files
  root/examples/Split-{train,eval,catalog}/   gzip TFRecords of raw tf.Examples
  root/context/ratings/Split-{train,validation,eval}/  UserContext's ratings
  root/context/histories/Split-users/          UserContext's user histories
  root/transform_graph/              tft_beam.WriteTransformFn output
  root/transformed/Split-{train,validation,eval}/  gzip TFRecords of transformed examples

Transform runs tft_beam.AnalyzeAndTransformDataset on train and validation (read with
TFXIO, like the Transform component) and TransformDataset on each split, on the
DirectRunner.
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
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx_bsl.public import tfxio

from components.movielens_example_gen import encoding
from components.movielens_example_gen import splits
from components.user_context import executor as user_context_executor
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
# Context movies per rating (UserContext's histories), and its validation share.
MAX_CONTEXT = 10
VALIDATION_FRACTION = 0.05
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
  train: Ratings  # The whole train split (validation ratings included).
  eval: Ratings
  validation: Ratings  # The ratings UserContext carved from train.
  raw_train_pattern: str  # ExampleGen's train split (whole).
  raw_eval_pattern: str
  catalog_pattern: str
  history_pattern: str  # UserContext's user histories.
  transform_output: str  # WriteTransformFn directory.
  transformed_train_pattern: str  # Without the validation ratings.
  transformed_validation_pattern: str
  transformed_eval_pattern: str
  transform_config: Mapping[str, Any]
  max_context: int
  validation_fraction: float

  def custom_config(self, trainer_config: Mapping[str, Any]) -> Dict[str, Any]:
    """The Trainer's custom_config, as the pipeline and RetrievalTrainer give it."""
    return {configs.TRAINER_KEY: trainer_config,
            configs.TRANSFORM_KEY: self.transform_config,
            configs.CONTEXT_KEY: {"max_context": self.max_context,
                                  "validation_fraction": self.validation_fraction,
                                  "validation_seed": SPLIT_SEED},
            configs.CATALOG_FILES_KEY: [self.catalog_pattern],
            configs.HISTORY_FILES_KEY: [self.history_pattern]}


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


def _transform(raw_patterns: Mapping[str, str], out_root: str,
               transform_config: Mapping[str, Any]):
  """Analyzes train + validation and transforms every split of `raw_patterns`; returns
  (graph dir, {split: transformed pattern})."""
  schema = schema_utils.schema_from_feature_spec(features.raw_feature_spec())
  readers_ = {split: tfxio.TFExampleRecord(file_pattern=pattern, schema=schema,
                                           telemetry_descriptors=["test"])
              for split, pattern in raw_patterns.items()}
  graph_dir = os.path.join(out_root, "transform_graph")
  transformed = os.path.join(out_root, "transformed")
  config = dict(transform_config)
  options = beam.options.pipeline_options.PipelineOptions(
      ["--direct_running_mode=in_memory", "--direct_num_workers=1"])
  adapter = readers_["train"].TensorAdapterConfig()
  with beam.Pipeline(options=options) as pipeline:
    with tft_beam.Context(temp_dir=os.path.join(out_root, "tft_tmp"),
                          force_tf_compat_v1=False):
      raw = {split: pipeline | f"Read{split}" >> reader.BeamSource()
             for split, reader in readers_.items()}
      analyzed = (raw["train"], raw["validation"]) | "AnalyzeSplits" >> beam.Flatten()
      transform_fn = ((analyzed, adapter)
                      | tft_beam.AnalyzeDataset(
                          lambda inputs: preprocessing.preprocessing_fn(inputs, config)))
      for split, split_raw in raw.items():
        split_data, metadata = (((split_raw, adapter), transform_fn)
                                | f"Transform{split}" >> tft_beam.TransformDataset(
                                    output_record_batches=False))
        coder = tft.coders.ExampleProtoCoder(metadata.schema)
        _ = (split_data
             | f"Encode{split}" >> beam.Map(coder.encode)
             | f"Write{split}" >> beam.io.WriteToTFRecord(
                 os.path.join(transformed, f"Split-{split}", "transformed_examples"),
                 file_name_suffix=".gz", num_shards=1,
                 compression_type=beam.io.filesystem.CompressionTypes.GZIP))
      _ = transform_fn | tft_beam.WriteTransformFn(graph_dir)
  # The raw schema next to the graph, where the TFX Transform component writes it
  # (tft.TFTransformOutput.raw_feature_spec reads it).
  metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema),
                             os.path.join(graph_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
  return graph_dir, {split: os.path.join(transformed, f"Split-{split}", "*")
                     for split in raw_patterns}


def _user_context(examples_dir: str, out_root: str, max_context: int,
                  validation_fraction: float):
  """Runs UserContext's executor; returns (ratings artifact, histories artifact)."""
  source = standard_artifacts.Examples()
  source.uri = examples_dir
  source.split_names = artifact_utils.encode_split_names(["train", "eval"])
  ratings, histories = standard_artifacts.Examples(), standard_artifacts.Examples()
  ratings.uri = os.path.join(out_root, "ratings")
  histories.uri = os.path.join(out_root, "histories")
  user_context_executor.Executor().Do(
      {user_context_executor.EXAMPLES_KEY: [source]},
      {user_context_executor.OUTPUT_KEY: [ratings],
       user_context_executor.HISTORIES_KEY: [histories]},
      {"max_context": max_context, "validation_fraction": validation_fraction,
       "validation_seed": SPLIT_SEED})
  return ratings, histories


def _split_pattern(artifact, split: str) -> str:
  return os.path.join(artifact_utils.get_split_uri([artifact], split), "*")


def _read_split(pattern: str) -> Ratings:
  """The (user, movie, rating, timestamp) of raw rating examples."""
  user_ids, movie_ids, ratings, timestamps = [], [], [], []
  for record in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(pattern)),
                                        compression_type="GZIP"):
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    user_ids.append(feature[features.USER_ID].bytes_list.value[0].decode())
    movie_ids.append(feature[features.MOVIE_ID].bytes_list.value[0].decode())
    ratings.append(feature[features.USER_RATING].float_list.value[0])
    timestamps.append(feature[features.TIMESTAMP].int64_list.value[0])
  return Ratings(user_ids, movie_ids, np.array(ratings, np.float32),
                 np.array(timestamps, np.int64))


def build(root: str, config: configs.SyntheticDataConfig = SYNTHETIC_CONFIG,
          transform_config: Mapping[str, Any] = TRANSFORM_CONFIG,
          max_context: int = MAX_CONTEXT,
          validation_fraction: float = VALIDATION_FRACTION) -> TransformFixture:
  """Generates, encodes, splits, runs UserContext on and transforms a synthetic
  MovieLens set under `root`."""
  raw_dir = synthetic.generate(os.path.join(root, "raw"), config)
  catalog, ratings = _read_ratings(raw_dir)
  is_eval = splits.random_eval_mask(ratings.user_ids, ratings.movie_ids, EVAL_FRACTION,
                                    SPLIT_SEED)
  train, evaluation = ratings.select(~is_eval), ratings.select(is_eval)

  examples = os.path.join(root, "examples")
  for split, part in (("train", train), ("eval", evaluation)):
    _write_gzip_tfrecords(os.path.join(examples, f"Split-{split}", "data.gz"),
                          encoding.ratings_to_examples(part.user_ids, part.movie_ids,
                                                       part.ratings, part.timestamps,
                                                       catalog))
  _write_gzip_tfrecords(os.path.join(examples, "Split-catalog", "data.gz"),
                        encoding.movies_to_examples(list(catalog.values())))
  split_ratings, histories = _user_context(examples, os.path.join(root, "context"),
                                           max_context, validation_fraction)
  raw_patterns = {split: _split_pattern(split_ratings, split)
                  for split in ("train", "validation", "eval")}
  graph_dir, transformed = _transform(raw_patterns, root, transform_config)
  return TransformFixture(
      root=root, catalog=catalog, train=train, eval=evaluation,
      validation=_read_split(raw_patterns["validation"]),
      raw_train_pattern=os.path.join(examples, "Split-train", "*"),
      raw_eval_pattern=os.path.join(examples, "Split-eval", "*"),
      catalog_pattern=os.path.join(examples, "Split-catalog", "*"),
      history_pattern=_split_pattern(histories, "users"),
      transform_output=graph_dir, transformed_train_pattern=transformed["train"],
      transformed_validation_pattern=transformed["validation"],
      transformed_eval_pattern=transformed["eval"], transform_config=dict(transform_config),
      max_context=max_context, validation_fraction=validation_fraction)
