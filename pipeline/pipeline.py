"""The one definition of the tfrs-pipeline DAG, shared by the local and Kubeflow runners."""
import dataclasses
from typing import List, Optional, Sequence

from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.components.base import base_node
from tfx import v1 as tfx

from components import anomalies_gate
from components.movielens_example_gen import component as example_gen_component
from components.movielens_example_gen import executor as example_gen_executor
from pipeline import configs


def create_components(data_dir: str, serving_dir: str,
                      config: configs.PipelineConfig = configs.PipelineConfig(),
                      ) -> List[base_node.BaseNode]:
  """Builds the pipeline's components, wired together, in execution order.

  Args:
    data_dir: MovieLens directory or zip (any GroupLens format).
    serving_dir: Where the Pusher writes blessed models (TF Serving layout).
    config: Every knob; see pipeline/configs.py.

  Returns:
    ExampleGen, StatisticsGen, SchemaGen, ExampleValidator, AnomaliesGate, Transform.
  """
  example_gen = example_gen_component.MovieLensExampleGen(
      data_dir=data_dir, **dataclasses.asdict(config.data))
  ratings = example_gen.outputs[example_gen_executor.EXAMPLES_KEY]

  statistics_gen = tfx.components.StatisticsGen(examples=ratings)
  # The schema is inferred from train only, so ExampleValidator's check of the eval split
  # against it is a real check (new genres, missing features, type changes).
  schema_gen = tfx.components.SchemaGen(
      statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True,
      exclude_splits=[example_gen_executor.EVAL_SPLIT])
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
  gate = anomalies_gate.AnomaliesGate(anomalies=example_validator.outputs["anomalies"])

  transform = tfx.components.Transform(
      examples=ratings, schema=schema_gen.outputs["schema"],
      preprocessing_fn=configs.PREPROCESSING_FN,
      splits_config=tfx.proto.SplitsConfig(
          analyze=[example_gen_executor.TRAIN_SPLIT],
          transform=[example_gen_executor.TRAIN_SPLIT, example_gen_executor.EVAL_SPLIT]),
      custom_config=dataclasses.asdict(config.transform),
      # TFDV statistics of the transformed data would double Transform's time and nothing
      # reads them; StatisticsGen already covers the raw data.
      disable_statistics=True)
  transform.add_upstream_node(gate)

  return [example_gen, statistics_gen, schema_gen, example_validator, gate, transform]


def create_pipeline(pipeline_name: str, pipeline_root: str,
                    components: Sequence[base_node.BaseNode],
                    beam_pipeline_args: Sequence[str] = configs.LOCAL_BEAM_PIPELINE_ARGS,
                    metadata_connection_config: Optional[
                        metadata_store_pb2.ConnectionConfig] = None,
                    enable_cache: bool = True) -> tfx.dsl.Pipeline:
  """Wraps `components` in a TFX pipeline."""
  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name, pipeline_root=pipeline_root,
      components=list(components), enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(beam_pipeline_args))
