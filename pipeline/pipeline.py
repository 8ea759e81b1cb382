"""The one definition of the tfrs-pipeline DAG, shared by the local and Kubeflow runners."""
import dataclasses
import hashlib
import pathlib
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.components.base import base_node
from tfx import v1 as tfx

from components import anomalies_gate
from components import atomic_pusher
from components import retrieval_trainer
from components import schema_curation
from components.movielens_example_gen import component as example_gen_component
from components.retrieval_evaluator import component as evaluator_component
from components.user_context import component as user_context_component
from components.user_context import executor as user_context_executor
import closed_form
import contracts
import ranking_core
from contracts import artifacts
from contracts import configs
import trainer_module

if TYPE_CHECKING:
  from components import vertex_trainer

_TRAINER_MODULE_DIR = pathlib.Path(trainer_module.__file__).parent
_CONTRACTS_DIR = pathlib.Path(contracts.__file__).parent
_CLOSED_FORM_DIR = pathlib.Path(closed_form.__file__).parent
_RANKING_CORE_DIR = pathlib.Path(ranking_core.__file__).parent


def code_fingerprint(*paths: pathlib.Path) -> str:
  """Hash of the given source files.

  Transform and Trainer reference user code by import path, which TFX's cache does not
  see; a fingerprint of that code in their custom_config makes an edit re-run them.
  """
  digest = hashlib.sha256()
  for path in sorted(paths):
    digest.update(path.name.encode() + b"\0" + path.read_bytes())
  return digest.hexdigest()[:16]


def transform_code_files() -> List[pathlib.Path]:
  """The preprocessing_fn's module and every project module it imports."""
  return [_TRAINER_MODULE_DIR / "preprocessing.py", *_CONTRACTS_DIR.glob("*.py")]


def trainer_code_files() -> List[pathlib.Path]:
  """run_fn's whole package (model, data, export, ...) and every project package it
  imports: the contracts, closed_form for the EASE factor and ranking_core for the
  validation hit rate."""
  return [*_TRAINER_MODULE_DIR.glob("*.py"), *_CONTRACTS_DIR.glob("*.py"),
          *_CLOSED_FORM_DIR.glob("*.py"), *_RANKING_CORE_DIR.glob("*.py")]


def transform_code_fingerprint() -> str:
  return code_fingerprint(*transform_code_files())


def trainer_code_fingerprint() -> str:
  return code_fingerprint(*trainer_code_files())


def default_serving_dir(pipeline_root: str) -> str:
  """Where the Pusher writes when no serving dir is given (works for gs:// too)."""
  return pipeline_root.rstrip("/") + "/" + artifacts.DEFAULT_SERVING_DIR


def create_components(data_dir: str, serving_dir: str,
                      config: configs.PipelineConfig = configs.PipelineConfig(),
                      vertex_job: Optional["vertex_trainer.VertexTrainingJob"] = None,
                      ) -> List[base_node.BaseNode]:
  """Builds the pipeline's components, wired together, in execution order.

  Args:
    data_dir: MovieLens directory or zip (any GroupLens format).
    serving_dir: Where the Pusher writes blessed models (TF Serving layout).
    config: Every knob; see contracts/configs.py.
    vertex_job: Train on Vertex AI replicas (`create_trainer`); None: in the task.

  Returns:
    ExampleGen, UserContext, StatisticsGen, SchemaGen, CurateSchema, ExampleValidator,
    AnomaliesGate, Transform, Trainer, the latest-blessed-model Resolver, RetrievalEvaluator
    and Pusher (an AtomicPusher).
  """
  example_gen = example_gen_component.MovieLensExampleGen(data_dir=data_dir,
                                                          config=config.data)
  ratings = example_gen.outputs[artifacts.EXAMPLES_KEY]
  # The validation split carved from train, and each user's history (the context query
  # towers' input), which the Trainer joins by user: every stage before it reads each
  # rating once.
  user_context = user_context_component.UserContext(examples=ratings, config=config.context)
  split_ratings = user_context.outputs[user_context_executor.OUTPUT_KEY]

  statistics_gen = tfx.components.StatisticsGen(examples=split_ratings)
  # The schema is inferred from train only, so ExampleValidator's check of the other
  # splits against it is a real check (unknown genres, missing features, type changes).
  schema_gen = tfx.components.SchemaGen(
      statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True,
      exclude_splits=[artifacts.VALIDATION_SPLIT, artifacts.EVAL_SPLIT])
  # Ids and titles are free text: their inferred value sets are dropped; genres get the
  # catalog's. Every reader of the schema reads the curated one.
  curate_schema = schema_curation.CurateSchema(
      schema=schema_gen.outputs["schema"], movies=example_gen.outputs[artifacts.MOVIES_KEY])
  schema = curate_schema.outputs["curated_schema"]
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs["statistics"], schema=schema)
  gate = anomalies_gate.AnomaliesGate(anomalies=example_validator.outputs["anomalies"])

  # Vocabularies cover the whole train split (validation included, as the model serves
  # every train movie); the eval split is the Evaluator's, which reads the raw ratings.
  transform = tfx.components.Transform(
      examples=split_ratings, schema=schema,
      preprocessing_fn=configs.PREPROCESSING_FN,
      splits_config=tfx.proto.SplitsConfig(
          analyze=[artifacts.TRAIN_SPLIT, artifacts.VALIDATION_SPLIT],
          transform=[artifacts.TRAIN_SPLIT, artifacts.VALIDATION_SPLIT]),
      custom_config={**dataclasses.asdict(config.transform),
                     configs.CODE_FINGERPRINT_KEY: transform_code_fingerprint()},
      # TFDV statistics of the transformed data would double Transform's time and nothing
      # reads them; StatisticsGen already covers the raw data.
      disable_statistics=True)
  transform.add_upstream_node(gate)

  trainer = create_trainer(
      vertex_job,
      examples=transform.outputs["transformed_examples"],
      transform_graph=transform.outputs["transform_graph"],
      schema=schema,
      movies=example_gen.outputs[artifacts.MOVIES_KEY],
      user_histories=user_context.outputs[user_context_executor.HISTORIES_KEY],
      run_fn=configs.RUN_FN, custom_config=trainer_custom_config(config),
      train_args=tfx.proto.TrainArgs(splits=[artifacts.TRAIN_SPLIT]),
      # The Trainer's eval files are the validation split; the eval split is the
      # Evaluator's alone.
      eval_args=tfx.proto.EvalArgs(splits=[artifacts.VALIDATION_SPLIT]))

  # The latest blessed model, from ML Metadata: the new model must not be worse.
  latest_blessed = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
      model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
  ).with_id("latest_blessed_model_resolver")
  evaluator = evaluator_component.RetrievalEvaluator(
      examples=ratings, model=trainer.outputs["model"],
      baseline_model=latest_blessed.outputs["model"],
      movies=example_gen.outputs[artifacts.MOVIES_KEY], config=config.evaluator)

  # Pushes only when the evaluator blessed the model; atomically, to a version of its own.
  # The node keeps the stock id "Pusher" (ML Metadata history, summaries, the KFP spec).
  pusher = atomic_pusher.AtomicPusher(
      model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)),
  ).with_id("Pusher")

  return [example_gen, user_context, statistics_gen, schema_gen, curate_schema,
          example_validator, gate, transform, trainer, latest_blessed, evaluator, pusher]


def create_trainer(vertex_job: Optional["vertex_trainer.VertexTrainingJob"],
                   **trainer_args: Any) -> retrieval_trainer.RetrievalTrainer:
  """RetrievalTrainer, or with a Vertex AI job its variant that trains on the job's
  replicas (same node id, inputs and run_fn). Its module is imported only then: it pulls
  in the Vertex AI client libraries, which a local run never needs."""
  if vertex_job is None:
    return retrieval_trainer.RetrievalTrainer(**trainer_args)
  from components import vertex_trainer  # pylint: disable=g-import-not-at-top
  return vertex_trainer.VertexRetrievalTrainer(job=vertex_job, **trainer_args)


def trainer_custom_config(config: configs.PipelineConfig) -> Dict[str, Any]:
  """The Trainer's custom_config (contracts/configs.py lists its keys), which
  RetrievalTrainer completes with the catalog's files at run time."""
  return {configs.TRAINER_KEY: dataclasses.asdict(config.trainer),
          configs.TRANSFORM_KEY: dataclasses.asdict(config.transform),
          configs.CONTEXT_KEY: dataclasses.asdict(config.context),
          configs.DATA_KEY: dataclasses.asdict(config.data),
          configs.CODE_FINGERPRINT_KEY: trainer_code_fingerprint()}


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
