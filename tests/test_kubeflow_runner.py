"""kubeflow_runner.py and pipeline/kubeflow.py: offline compilation, the compiled DAG
against the local pipeline, one compiled task run the way KFP's launcher runs it,
submission through an offline KFP client, the multi-processing DirectRunner mode on
the data components, and the Trainer compiled as a Vertex AI job of several replicas.

Expected tasks and edges are derived from `pipeline.create_components`, so the tests follow
the pipeline as components are added.
"""
import glob
import importlib
import json
import os
import pathlib
import re
import subprocess
import sys
import types
from typing import Any, Dict, List, Set, Tuple

from absl import app
from absl import flags
import apache_beam as beam
from apache_beam.options import pipeline_options
import kfp
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.util import udf_utils
from tfx.dsl.components.common import resolver
from tfx.dsl.io import fileio
from tfx.extensions.google_cloud_ai_platform import constants as vertex_constants
from tfx.extensions.google_cloud_ai_platform import runner as vertex_runner
from tfx.extensions.google_cloud_ai_platform import training_clients
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
from tfx.scripts import run_executor
from tfx.types import artifact_utils as tfx_artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import import_utils
import yaml

from google.protobuf import json_format

from components import retrieval_trainer
from components.movielens_example_gen import component as example_gen_component
from contracts import artifacts
from contracts import configs
from movielens import synthetic
from pipeline import kubeflow
from pipeline import pipeline

IMAGE = "us-docker.pkg.dev/test-project/tfrs/tfrs-pipeline:test"
PIPELINE_ROOT = "gs://tfrs-test-bucket/pipeline-root"
DATA_ROOT = "gs://tfrs-test-bucket/movielens/ml-1m.zip"
ENDPOINT = "https://kfp.example.test/pipeline"
_REMOTE_PREFIXES = ("gs://", "s3://")
# The two tasks KubeflowV2DagRunner compiles a latest-blessed-model Resolver into.
_BLESSED_MODEL_RESOLVER_SUFFIXES = ("-model-blessing-resolver", "-model-resolver")
_PLACEHOLDER = re.compile(r"\{\{\$.*?\}\}")
_DATA_COMPONENT_TYPES = {"MovieLensExampleGen", "UserContext", "StatisticsGen", "SchemaGen",
                         "CurateSchema", "ExampleValidator", "AnomaliesGate", "Transform"}


# ------------------------------------------------------------------------------ helpers


@pytest.fixture(autouse=True)
def _no_runner_env(monkeypatch):
  """The tests set the runner's environment variables themselves."""
  for name in kubeflow.ENV_VARS.values():
    monkeypatch.delenv(name, raising=False)


def parse_flags(**values: Any) -> flags.FlagValues:
  """The runner's flags, defined in a fresh FlagValues (env defaults read now), parsed."""
  flag_values = flags.FlagValues()
  kubeflow.define_flags(flag_values)
  argv = ["kubeflow_runner"]
  for name, value in values.items():
    if isinstance(value, bool):
      argv.append(f"--{name}" if value else f"--no{name}")
    else:
      argv.append(f"--{name}={value}")
  flag_values(argv)
  return flag_values


def compile_flags(output: str, **overrides: Any) -> flags.FlagValues:
  values = dict(image=IMAGE, pipeline_root=PIPELINE_ROOT, data_root=DATA_ROOT, output=output)
  values.update(overrides)
  return parse_flags(**values)


def load_pipeline_spec(path: str) -> pipeline_spec_pb2.PipelineSpec:
  """The compiled file as kfp-pipeline-spec's PipelineSpec (unwrapping a PipelineJob)."""
  with open(path) as f:
    document = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
  document = document.get("pipelineSpec", document)
  return json_format.ParseDict(document, pipeline_spec_pb2.PipelineSpec())


def _is_latest_blessed_model_resolver(node) -> bool:
  if not isinstance(node, resolver.Resolver):
    return False
  strategy = node.exec_properties[resolver.RESOLVER_STRATEGY_CLASS]
  return strategy.__name__ == "LatestBlessedModelStrategy"


def task_names(node) -> List[str]:
  """The compiled task(s) of a pipeline node."""
  if _is_latest_blessed_model_resolver(node):
    return [node.id + suffix for suffix in _BLESSED_MODEL_RESOLVER_SUFFIXES]
  return [node.id]


def local_components(data_root: str = DATA_ROOT, pipeline_root: str = PIPELINE_ROOT):
  """The local pipeline's components, wired as create_pipeline leaves them."""
  components = pipeline.create_components(
      data_root, pipeline.default_serving_dir(pipeline_root))
  # create_pipeline adds implicit dependencies; compare against the finished DAG.
  pipeline.create_pipeline("tfrs-pipeline", pipeline_root, components)
  return components


def _guard_remote_io(monkeypatch, touched: List[str]) -> None:
  """Makes any TFX file access to gs:// or s3://, or module-file packaging, fail loudly."""
  def guard(function):
    def guarded(*args, **kwargs):
      remote = [a for a in args if isinstance(a, str) and a.startswith(_REMOTE_PREFIXES)]
      if remote:
        touched.extend(remote)
        raise AssertionError(f"Compilation touched remote storage: {remote}")
      return function(*args, **kwargs)
    return guarded

  for name in ("open", "makedirs", "mkdir", "copy", "rename", "exists", "isdir", "glob",
               "listdir", "remove", "rmtree", "stat", "walk"):
    monkeypatch.setattr(fileio, name, guard(getattr(fileio, name)))

  def no_wheel(instance_name, module_path, pipeline_root):
    touched.append(f"{pipeline_root}/_wheels")
    raise AssertionError(f"{instance_name}'s module_file {module_path} would be packaged "
                         "into <pipeline_root>/_wheels.")
  monkeypatch.setattr(udf_utils, "package_user_module_file", no_wheel)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
  """Compiles in-process with a gs:// root and data, remote I/O forbidden; returns paths."""
  output = str(tmp_path_factory.mktemp("compiled") / "tfrs_pipeline.json")
  touched = []
  with pytest.MonkeyPatch.context() as monkeypatch:
    _guard_remote_io(monkeypatch, touched)
    kubeflow.run(compile_flags(output))
  return types.SimpleNamespace(path=output, touched=touched,
                               spec=load_pipeline_spec(output))


def _constant(parameter: pipeline_spec_pb2.TaskInputsSpec.InputParameterSpec) -> Any:
  """A task's constant parameter as a Python value (schema 2.1.0 or 2.0.0)."""
  runtime_value = parameter.runtime_value
  if runtime_value.HasField("constant"):
    return json_format.MessageToDict(runtime_value.constant)
  value = runtime_value.constant_value
  return getattr(value, value.WhichOneof("value"))


def executors(spec: pipeline_spec_pb2.PipelineSpec) -> Dict[str, Dict[str, Any]]:
  """The spec's executors by label, as plain JSON values."""
  return json_format.MessageToDict(spec.deployment_spec)["executors"]


def _import_object(path: str) -> Any:
  module_name, _, attribute = path.rpartition(".")
  return getattr(importlib.import_module(module_name), attribute)


# ------------------------------------------------------------------------- compilation


def test_compiles_offline_with_gs_root_and_uploads_nothing(compiled):
  assert compiled.touched == []
  with open(compiled.path) as f:
    job = json.load(f)
  assert job["runtimeConfig"]["gcsOutputDirectory"] == PIPELINE_ROOT
  assert compiled.spec.schema_version == "2.1.0"
  for name, task in compiled.spec.root.dag.tasks.items():
    for key in ("module_file", "module_path"):
      assert key not in task.inputs.parameters, f"{name} ships code by {key}"


def test_every_component_is_a_task(compiled):
  expected = {name for node in local_components() for name in task_names(node)}
  assert set(compiled.spec.root.dag.tasks) == expected


def test_task_dependencies_match_the_local_dag(compiled):
  tasks = compiled.spec.root.dag.tasks
  for node in local_components():
    if isinstance(node, resolver.Resolver):
      continue  # Resolver tasks query ML Metadata; they have no upstream tasks.
    dependencies = set(tasks[node.id].dependent_tasks)
    allowed = {name for upstream in node.upstream_nodes for name in task_names(upstream)}
    assert dependencies <= allowed, f"{node.id}: extra dependencies"
    for upstream in node.upstream_nodes:
      assert dependencies & set(task_names(upstream)), f"{node.id} lost {upstream.id}"


def test_input_artifacts_come_from_the_local_producers(compiled):
  nodes = {node.id: node for node in local_components()}
  tasks = compiled.spec.root.dag.tasks
  for node in nodes.values():
    if isinstance(node, resolver.Resolver):
      continue
    artifacts = tasks[node.id].inputs.artifacts
    assert set(artifacts) == set(node.inputs), node.id
    for key, channel in node.inputs.items():
      producer = nodes[channel.producer_component_id]
      spec = artifacts[key].task_output_artifact
      assert spec.producer_task in task_names(producer), f"{node.id}.{key}"
      assert spec.producer_task in tasks[node.id].dependent_tasks, f"{node.id}.{key}"
      if not isinstance(producer, resolver.Resolver):
        assert spec.output_artifact_key == channel.output_key, f"{node.id}.{key}"


def test_every_container_runs_the_image_with_the_tfx_entrypoint(compiled):
  executors_ = executors(compiled.spec)
  containers = {label: e["container"] for label, e in executors_.items() if "container" in e}
  resolvers = {label for label, e in executors_.items() if "resolver" in e}
  assert set(containers) | resolvers == set(executors_)
  expected_containers = {f"{node.id}_executor" for node in local_components()
                         if not isinstance(node, resolver.Resolver)}
  assert set(containers) == expected_containers
  default_beam_args = kubeflow.beam_pipeline_args()
  for label, container in containers.items():
    assert container["image"] == IMAGE, label
    assert tuple(container["command"]) == kubeflow_v2_dag_runner.KUBEFLOW_TFX_CMD, label
    assert container["args"][-len(default_beam_args):] == default_beam_args, label


def test_code_references_resolve_to_importable_callables(compiled):
  executors_ = executors(compiled.spec)
  executor_classes = []
  for executor in executors_.values():
    args = executor.get("container", {}).get("args", [])
    if "--executor_class_path" in args:
      executor_classes.append(args[args.index("--executor_class_path") + 1])
  assert len(executor_classes) == len([e for e in executors_.values() if "container" in e])
  for path in executor_classes:
    assert isinstance(_import_object(path), type), path

  functions = {}
  for name, task in compiled.spec.root.dag.tasks.items():
    for key, parameter in task.inputs.parameters.items():
      value = _constant(parameter)
      if key.endswith("_fn") or (isinstance(value, str) and re.fullmatch(
          r"(trainer_module|components|pipeline)(\.\w+)+", value)):
        functions[f"{name}.{key}"] = value
  assert functions["Transform.preprocessing_fn"]
  for where, path in functions.items():
    assert callable(_import_object(path)), f"{where} = {path!r}"


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_every_output_format_holds_the_same_pipeline_spec(compiled, tmp_path, suffix):
  output = str(tmp_path / f"pipeline{suffix}")
  kubeflow.run(compile_flags(output))
  spec = load_pipeline_spec(output)
  assert set(spec.root.dag.tasks) == set(compiled.spec.root.dag.tasks)
  assert spec.deployment_spec == compiled.spec.deployment_spec
  if suffix != ".json":
    # The loader kfp.Client uses for packages: a PipelineSpec, no PipelineJob wrapper.
    document = kfp.client.client._extract_pipeline_yaml(output)  # pylint: disable=protected-access
    assert document.pipeline_spec == spec


def test_the_script_compiles_what_run_compiles(compiled, tmp_path):
  # kubeflow_runner.py only parses flags and calls pipeline/kubeflow.py.
  output = str(tmp_path / "from_script.json")
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run(
      [sys.executable, os.path.join(repo_root, "kubeflow_runner.py"), f"--image={IMAGE}",
       f"--pipeline_root={PIPELINE_ROOT}", f"--data_root={DATA_ROOT}", f"--output={output}"],
      cwd=str(tmp_path), env=dict(os.environ, TF_USE_LEGACY_KERAS="1"),
      capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-4000:]
  spec = load_pipeline_spec(output)
  assert set(spec.root.dag.tasks) == set(compiled.spec.root.dag.tasks)
  assert spec.deployment_spec == compiled.spec.deployment_spec


def test_environment_variables_stand_in_for_flags(tmp_path, monkeypatch):
  monkeypatch.setenv("TFRS_IMAGE", "registry.test/tfrs:env")
  monkeypatch.setenv("TFRS_PIPELINE_ROOT", "gs://env-bucket/root")
  monkeypatch.setenv("TFRS_DATA_ROOT", "gs://env-bucket/ml-100k.zip")
  monkeypatch.setenv("TFRS_OUTPUT", str(tmp_path / "from_env.yaml"))
  kubeflow.run(parse_flags())
  spec = load_pipeline_spec(str(tmp_path / "from_env.yaml"))
  images = {e["container"]["image"] for e in executors(spec).values() if "container" in e}
  assert images == {"registry.test/tfrs:env"}
  example_gen = [n for n in local_components()
                 if isinstance(n, example_gen_component.MovieLensExampleGen)][0]
  data_dir = spec.root.dag.tasks[example_gen.id].inputs.parameters["data_dir"]
  assert _constant(data_dir) == "gs://env-bucket/ml-100k.zip"


def test_missing_required_settings_are_all_named(tmp_path):
  with pytest.raises(app.UsageError) as error:
    kubeflow.run(parse_flags(output=str(tmp_path / "p.yaml")))
  message = str(error.value)
  for name in ("image", "pipeline_root", "data_root"):
    assert f"--{name} (or env {kubeflow.ENV_VARS[name]}) is required" in message
  assert not (tmp_path / "p.yaml").exists()


@pytest.mark.parametrize("overrides,expected", [
    (dict(output="pipeline.txt"), "--output"),
    (dict(pipeline_name="TFRS_pipeline"), "--pipeline_name"),
    (dict(submit=True), "--submit needs --endpoint"),
    (dict(beam_runner="DataflowRunner", project="p"), "--region, --temp_location"),
])
def test_invalid_settings_fail_before_compiling(tmp_path, overrides, expected):
  overrides.setdefault("output", str(tmp_path / "p.yaml"))
  with pytest.raises(app.UsageError, match=re.escape(expected)):
    kubeflow.run(compile_flags(**overrides))


# ------------------------------------------------------------------------------ Beam args


def test_direct_runner_default_is_multi_processing():
  options = pipeline_options.PipelineOptions(kubeflow.beam_pipeline_args())
  direct = options.view_as(pipeline_options.DirectOptions)
  assert direct.direct_running_mode == "multi_processing"
  assert direct.direct_num_workers == 0
  assert options.view_as(pipeline_options.StandardOptions).runner is None  # DirectRunner.


def test_dataflow_args_are_beam_options_and_reach_every_beam_task(tmp_path):
  output = str(tmp_path / "dataflow.yaml")
  kubeflow.run(compile_flags(
      output, beam_runner="DataflowRunner", project="test-project", region="europe-west4",
      temp_location="gs://tfrs-test-bucket/tmp", beam_arg="--max_num_workers=4"))
  args = kubeflow.beam_pipeline_args(
      "DataflowRunner", image=IMAGE, project="test-project", region="europe-west4",
      temp_location="gs://tfrs-test-bucket/tmp", extra_args=["--max_num_workers=4"])
  options = pipeline_options.PipelineOptions(args)
  known = options.get_all_options(drop_default=True)
  for arg in args:
    assert arg[2:].split("=")[0] in known, f"{arg} is not a Beam {beam.__version__} option"
  assert options.view_as(pipeline_options.WorkerOptions).sdk_container_image == IMAGE
  assert "use_runner_v2" in options.view_as(pipeline_options.DebugOptions).experiments
  assert options.view_as(pipeline_options.GoogleCloudOptions).project == "test-project"
  spec = load_pipeline_spec(output)
  example_gen = executors(spec)["MovieLensExampleGen_executor"]
  assert example_gen["container"]["args"][-len(args):] == args


# ---------------------------------------------------------------------------- submission


class OfflineKfpClient(kfp.Client):
  """kfp.Client whose server is a list: the real package loading and run building run."""

  instances = []

  def __init__(self, host=None, **unused_kwargs):  # pylint: disable=super-init-not-called
    # The real constructor checks the server's health; there is no server here.
    self.host = host
    self._uihost = host
    self.experiments = []
    self.runs = []
    self._run_api = types.SimpleNamespace(run_service_create_run=self._create_run)
    OfflineKfpClient.instances.append(self)

  def create_experiment(self, name, description=None, namespace=None):
    self.experiments.append(name)
    return types.SimpleNamespace(experiment_id=f"experiment-{name}")

  def _create_run(self, body):
    self.runs.append(body)
    return types.SimpleNamespace(run_id="run-1")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_submit_creates_a_run_on_the_endpoint(tmp_path, monkeypatch, suffix):
  OfflineKfpClient.instances = []
  monkeypatch.setattr(kfp, "Client", OfflineKfpClient)
  output = str(tmp_path / f"pipeline{suffix}")
  kubeflow.run(compile_flags(output, submit=True, endpoint=ENDPOINT,
                                    experiment="tfrs-nightly", run_name="nightly-1"))
  [client] = OfflineKfpClient.instances
  assert client.host == ENDPOINT
  assert client.experiments == ["tfrs-nightly"]
  [run] = client.runs
  assert run.experiment_id == "experiment-tfrs-nightly"
  assert run.display_name == "nightly-1"
  assert run.runtime_config.pipeline_root == PIPELINE_ROOT
  submitted = json_format.ParseDict(run.pipeline_spec, pipeline_spec_pb2.PipelineSpec())
  assert submitted == load_pipeline_spec(output)


def test_no_submit_no_client(tmp_path, monkeypatch):
  def no_client(*unused_args, **unused_kwargs):
    raise AssertionError("kfp.Client created without --submit")
  monkeypatch.setattr(kfp, "Client", no_client)
  kubeflow.run(compile_flags(str(tmp_path / "p.yaml"), endpoint=ENDPOINT))


# -------------------------------------------------- a compiled task, run as KFP would


def _executor_input(spec: pipeline_spec_pb2.PipelineSpec, task_name: str,
                    task_root: str) -> pipeline_spec_pb2.ExecutorInput:
  """What KFP's launcher hands the container for `{{$}}`: parameters and output URIs."""
  task = spec.root.dag.tasks[task_name]
  component = spec.components[task.component_ref.name]
  executor_input = pipeline_spec_pb2.ExecutorInput()
  for name, parameter in task.inputs.parameters.items():
    runtime_value = parameter.runtime_value
    if runtime_value.HasField("constant"):
      executor_input.inputs.parameter_values[name].CopyFrom(runtime_value.constant)
    else:
      executor_input.inputs.parameters[name].CopyFrom(runtime_value.constant_value)
  for key, definition in component.output_definitions.artifacts.items():
    artifact = executor_input.outputs.artifacts[key].artifacts.add()
    artifact.name = f"{task_name}.{key}"
    artifact.type.CopyFrom(definition.artifact_type)
    artifact.uri = os.path.join(task_root, key)
  executor_input.outputs.output_file = os.path.join(task_root, "executor_output.json")
  return executor_input


# Small synthetic data for the tests that run components: they check plumbing, not scale.
_SMALL_DATA = configs.SyntheticDataConfig(synthetic_users=60, synthetic_movies=120,
                                          synthetic_ratings=2400, synthetic_seed=7)


def _count_records(pattern: str) -> int:
  files = glob.glob(pattern)
  assert files, f"no files match {pattern}"
  return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def test_compiled_example_gen_task_runs_in_its_container_command(tmp_path):
  data_dir = synthetic.generate(str(tmp_path / "data"), _SMALL_DATA)
  output = str(tmp_path / "pipeline.yaml")
  kubeflow.run(compile_flags(output, data_root=data_dir))
  spec = load_pipeline_spec(output)
  [example_gen] = [n for n in local_components(data_root=data_dir)
                   if isinstance(n, example_gen_component.MovieLensExampleGen)]
  task = spec.root.dag.tasks[example_gen.id]
  container = executors(spec)[
      spec.components[task.component_ref.name].executor_label]["container"]

  task_root = str(tmp_path / "run" / example_gen.id)
  executor_input = json_format.MessageToJson(_executor_input(spec, example_gen.id, task_root))
  args = [executor_input if arg == "{{$}}" else arg for arg in container["args"]]
  assert not [arg for arg in args if _PLACEHOLDER.search(arg)], "unsubstituted placeholder"
  # As in the image: `python` is the project's interpreter, TF_USE_LEGACY_KERAS is set, and
  # the code comes from the installed package, not the working directory.
  env = dict(os.environ, TF_USE_LEGACY_KERAS="1",
             PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
  env.pop("PYTHONPATH", None)
  result = subprocess.run(list(container["command"]) + args, cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-4000:]

  executor_output = pipeline_spec_pb2.ExecutorOutput()
  with open(os.path.join(task_root, "executor_output.json")) as f:
    json_format.Parse(f.read(), executor_output)
  [examples] = executor_output.artifacts[artifacts.EXAMPLES_KEY].artifacts
  metadata = json_format.MessageToDict(examples.metadata)
  assert json.loads(metadata["split_names"]) == ["train", "eval"]
  examples_uri = os.path.join(task_root, artifacts.EXAMPLES_KEY)
  assert examples.uri == examples_uri
  counts = {split: _count_records(os.path.join(examples_uri, f"Split-{split}", "*.gz"))
            for split in ("train", "eval")}
  assert counts == {split: metadata[f"num_{split}_examples"] for split in counts}
  assert sum(counts.values()) == _SMALL_DATA.synthetic_ratings
  assert counts["eval"] / _SMALL_DATA.synthetic_ratings == pytest.approx(0.2, abs=0.05)
  movies_uri = os.path.join(task_root, artifacts.MOVIES_KEY)
  assert _count_records(os.path.join(movies_uri, "Split-catalog", "*.gz")) == (
      _SMALL_DATA.synthetic_movies)


# --------------------------------------------- the default Beam mode, end to end locally


def _with_upstream(node, by_id: Dict[str, Any]) -> Set[Any]:
  """`node` and everything it depends on, by data or explicitly (before create_pipeline)."""
  parents = set(node.upstream_nodes) | {by_id[channel.producer_component_id]
                                        for channel in node.inputs.values()}
  return {node}.union(*(_with_upstream(parent, by_id) for parent in parents))


def test_data_components_run_with_the_multi_processing_direct_runner(tmp_path):
  # Small data: what this checks is that every data component's Beam stages pickle and run
  # in worker processes; most of its time is the workers' start-up (TensorFlow imports).
  data_dir = synthetic.generate(str(tmp_path / "data"), _SMALL_DATA)
  components = pipeline.create_components(data_dir, str(tmp_path / "serving"))
  [transform] = [c for c in components if isinstance(c, tfx.components.Transform)]
  needed = _with_upstream(transform, {c.id: c for c in components})
  data_components = [c for c in components if c in needed]
  assert {type(c).__name__ for c in data_components} == _DATA_COMPONENT_TYPES
  beam_args = kubeflow.beam_pipeline_args(direct_num_workers=2)
  root = str(tmp_path / "root")
  dsl_pipeline = pipeline.create_pipeline(
      "tfrs-kfp-direct-test", root, data_components, beam_pipeline_args=beam_args,
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          str(tmp_path / "metadata.sqlite")))
  assert transform.executor_spec.beam_pipeline_args == beam_args

  tfx.orchestration.LocalDagRunner().run(dsl_pipeline)

  [example_gen] = [c for c in data_components
                   if isinstance(c, example_gen_component.MovieLensExampleGen)]
  raw = _count_records(os.path.join(root, example_gen.id, artifacts.EXAMPLES_KEY,
                                    "*", "Split-train", "*.gz"))
  # UserContext carved the validation split from train; Transform wrote both (the eval
  # split is the Evaluator's, read raw).
  transformed = {split: _count_records(os.path.join(root, transform.id, "transformed_examples",
                                                    "*", f"Split-{split}", "*.gz"))
                 for split in ("train", "validation")}
  assert transformed["train"] + transformed["validation"] == raw > 0
  assert 0 < transformed["validation"] < transformed["train"]


# ------------------------------------------------------ the Trainer on Vertex AI replicas


VERTEX_PROJECT = "test-project"
VERTEX_REGION = "europe-west4"
VERTEX_MACHINE_TYPE = "n1-highmem-16"


@pytest.fixture(scope="module")
def vertex_compiled(tmp_path_factory):
  """Compiled as `compiled` is, with --trainer_replicas 3 on a non-default machine type."""
  output = str(tmp_path_factory.mktemp("vertex") / "tfrs_pipeline.json")
  touched = []
  with pytest.MonkeyPatch.context() as monkeypatch:
    _guard_remote_io(monkeypatch, touched)
    kubeflow.run(compile_flags(output, trainer_replicas=3, project=VERTEX_PROJECT,
                               region=VERTEX_REGION, trainer_machine_type=VERTEX_MACHINE_TYPE))
  return types.SimpleNamespace(path=output, touched=touched,
                               spec=load_pipeline_spec(output))


def _trainer_task(spec: pipeline_spec_pb2.PipelineSpec) -> types.SimpleNamespace:
  """The compiled Trainer: its task, executor class path and custom_config."""
  [trainer_id] = [node.id for node in local_components()
                  if isinstance(node, retrieval_trainer.RetrievalTrainer)]
  task = spec.root.dag.tasks[trainer_id]
  executor_label = spec.components[task.component_ref.name].executor_label
  args = executors(spec)[executor_label]["container"]["args"]
  return types.SimpleNamespace(
      id=trainer_id, task=task, executor_label=executor_label,
      executor_class=args[args.index("--executor_class_path") + 1],
      custom_config=json.loads(_constant(task.inputs.parameters["custom_config"])))


_VERTEX_KEYS = {vertex_constants.ENABLE_VERTEX_KEY, vertex_constants.VERTEX_REGION_KEY,
                vertex_executor.TRAINING_ARGS_KEY}


def test_one_trainer_replica_trains_in_the_task_as_before(compiled, tmp_path):
  trainer = _trainer_task(compiled.spec)
  assert _import_object(trainer.executor_class) is retrieval_trainer.Executor
  assert set(trainer.custom_config) == set(
      pipeline.trainer_custom_config(configs.PipelineConfig()))
  # --trainer_replicas=1 given explicitly compiles the very same spec.
  output = str(tmp_path / "one_replica.json")
  kubeflow.run(compile_flags(output, trainer_replicas=1, project=VERTEX_PROJECT,
                             region=VERTEX_REGION))
  spec = load_pipeline_spec(output)
  assert spec.root == compiled.spec.root
  assert spec.deployment_spec == compiled.spec.deployment_spec


def test_trainer_replicas_compile_the_trainer_as_a_vertex_training_job(vertex_compiled,
                                                                        compiled):
  assert vertex_compiled.touched == []
  trainer = _trainer_task(vertex_compiled.spec)
  executor_class = _import_object(trainer.executor_class)
  assert issubclass(executor_class, vertex_executor.GenericExecutor)
  # Each replica runs RetrievalTrainer's executor: the catalog still reaches run_fn.
  replica_executor = executor_class()._GetExecutorClass()  # pylint: disable=protected-access
  assert replica_executor is retrieval_trainer.Executor
  config = trainer.custom_config
  assert config[vertex_constants.ENABLE_VERTEX_KEY] is True
  assert config[vertex_constants.VERTEX_REGION_KEY] == VERTEX_REGION
  pool = {"machine_spec": {"machine_type": VERTEX_MACHINE_TYPE},
          "container_spec": {"image_uri": IMAGE}}
  assert config[vertex_executor.TRAINING_ARGS_KEY] == {
      "project": VERTEX_PROJECT,
      "job_spec": {"worker_pool_specs": [{**pool, "replica_count": 1},
                                         {**pool, "replica_count": 2}]}}
  # The same task otherwise: id, inputs (the catalog too), run_fn's own custom_config.
  default = _trainer_task(compiled.spec)
  assert trainer.id == default.id
  assert trainer.task.inputs.artifacts == default.task.inputs.artifacts
  assert {key: value for key, value in config.items() if key not in _VERTEX_KEYS} == (
      default.custom_config)
  # And the other tasks are untouched.
  others = {label: executor for label, executor in executors(compiled.spec).items()
            if label != default.executor_label}
  assert {label: executors(vertex_compiled.spec)[label] for label in others} == others


_ArtifactDict = Dict[str, List[Any]]


def _trainer_artifacts(root: pathlib.Path) -> Tuple[_ArtifactDict, _ArtifactDict]:
  """Local input and output artifacts of the Trainer, as its task would receive them."""
  def artifact(cls, name, splits=None):
    instance = cls()
    instance.uri = str(root / name)
    if splits:
      instance.split_names = tfx_artifact_utils.encode_split_names(splits)
    return [instance]
  schema = artifact(standard_artifacts.Schema, "schema")
  os.makedirs(schema[0].uri)
  (root / "schema" / "schema.pbtxt").write_text("")
  inputs = {"examples": artifact(standard_artifacts.Examples, "examples",
                                 [artifacts.TRAIN_SPLIT, artifacts.VALIDATION_SPLIT]),
            "transform_graph": artifact(standard_artifacts.TransformGraph, "transform"),
            "schema": schema,
            artifacts.MOVIES_KEY: artifact(standard_artifacts.Examples, "movies",
                                           [artifacts.CATALOG_SPLIT]),
            artifacts.USER_HISTORIES_KEY: artifact(standard_artifacts.Examples, "histories",
                                                   [artifacts.USERS_SPLIT])}
  outputs = {"model": artifact(standard_artifacts.Model, "model"),
             "model_run": artifact(standard_artifacts.ModelRun, "model_run")}
  return inputs, outputs


def test_every_vertex_replica_runs_run_fn_with_the_catalog_and_histories(
    vertex_compiled, tmp_path, monkeypatch):
  # The Trainer task's executor, as compiled, up to the Vertex AI API call.
  launched = []
  monkeypatch.setattr(training_clients.VertexJobClient, "create_client", lambda self: None)
  monkeypatch.setattr(vertex_runner, "_launch_cloud_training",
                      lambda **job: launched.append(job))
  trainer = _trainer_task(vertex_compiled.spec)
  exec_properties = {key: _constant(value)
                     for key, value in trainer.task.inputs.parameters.items()}
  inputs, outputs = _trainer_artifacts(tmp_path)
  _import_object(trainer.executor_class)().Do(inputs, outputs, exec_properties)
  [job] = launched
  assert (job["project"], job["vertex_region"], job["enable_vertex"]) == (
      VERTEX_PROJECT, VERTEX_REGION, True)
  pools = job["training_job"]["job_spec"]["worker_pool_specs"]
  assert [pool["replica_count"] for pool in pools] == [1, 2]
  assert {pool["container_spec"]["image_uri"] for pool in pools} == {IMAGE}
  assert {pool["machine_spec"]["machine_type"] for pool in pools} == {VERTEX_MACHINE_TYPE}
  commands = {tuple(pool["container_spec"]["command"]) for pool in pools}
  assert len(commands) == 1  # Chief and workers run the same command.

  # That command, run as a replica runs it, with run_fn recording what it is given.
  [command] = commands
  assert command[:3] == ("python", "-m", "tfx.scripts.run_executor")
  received = []
  def run_fn(fn_args):
    received.append(fn_args)
    os.makedirs(fn_args.serving_model_dir)
  def import_run_fn(module_path, fn_name):
    assert f"{module_path}.{fn_name}" == configs.RUN_FN
    return run_fn
  # TFX reloads run_fn's module before taking the function: replace the import instead.
  monkeypatch.setattr(import_utils, "import_func_from_module", import_run_fn)
  run_executor.main(run_executor.parse_flags(list(command[3:])))
  [fn_args] = received
  movies_uri = inputs[artifacts.MOVIES_KEY][0].uri
  assert fn_args.custom_config[configs.CATALOG_FILES_KEY] == [
      f"{movies_uri}/Split-{artifacts.CATALOG_SPLIT}/*"]
  histories_uri = inputs[artifacts.USER_HISTORIES_KEY][0].uri
  assert fn_args.custom_config[configs.HISTORY_FILES_KEY] == [
      f"{histories_uri}/Split-{artifacts.USERS_SPLIT}/*"]
  # The Trainer's eval files are the validation split (never the Evaluator's eval split).
  assert all(f"Split-{artifacts.VALIDATION_SPLIT}" in f for f in fn_args.eval_files)
  assert configs.TrainerConfig.from_dict(
      fn_args.custom_config[configs.TRAINER_KEY]) == configs.TrainerConfig()
  assert fn_args.serving_model_dir.startswith(outputs["model"][0].uri)


@pytest.mark.parametrize("overrides,expected", [
    (dict(trainer_replicas=3), "--trainer_replicas=3 needs --project (or env TFRS_"),
    (dict(trainer_replicas=2, project="p"), "--trainer_replicas=2 needs --region"),
    (dict(trainer_replicas=2, project="p", region="r", pipeline_root="/mnt/tfrs"),
     "--trainer_replicas=2 needs a gs:// --pipeline_root"),
])
def test_trainer_replicas_without_a_place_to_run_fail_before_compiling(tmp_path, overrides,
                                                                       expected):
  output = tmp_path / "p.yaml"
  with pytest.raises(app.UsageError, match=re.escape(expected)):
    kubeflow.run(compile_flags(str(output), **overrides))
  assert not output.exists()


def test_a_machine_type_without_replicas_is_refused_when_parsed(tmp_path):
  with pytest.raises(flags.IllegalFlagValueError, match="--trainer_machine_type"):
    compile_flags(str(tmp_path / "p.yaml"), trainer_machine_type=VERTEX_MACHINE_TYPE)
