"""Kubeflow Pipelines v2 / Vertex AI: compile the pipeline, submit it, Beam arguments.

kubeflow_runner.py is the command line: it defines the flags with `define_flags`, parses
them and calls `run`. The pieces are importable on their own: `beam_pipeline_args` (the
Beam arguments of the data components), `compile_pipeline` (KubeflowV2DagRunner) and
`submit` (a run on a KFP endpoint).

The DAG is pipeline/pipeline.py's, the same one local_runner.py runs. A flag left unset
falls back to the environment variable named in its help (ENV_VARS: TFRS_IMAGE,
TFRS_PIPELINE_ROOT, ...), so CI can configure the runner by environment alone. The user
code is installed in the image (Dockerfile) and referenced by import path, so compiling
needs no network and uploads nothing, even with a gs:// root. Every knob of the configs
is a flag (see --helpfull), and --trainer_replicas N > 1 compiles the Trainer as a Vertex
AI training job of N replicas (`vertex_training_job`). Details, Vertex AI submission and
the image: docs/kubeflow.md.
"""
import os
import re
import tempfile
from typing import Any, Dict, List, Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import kfp
import yaml

from components import vertex_trainer
from contracts import configs
from contracts import config_flags
from pipeline import flags as pipeline_flags
from pipeline import pipeline

from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top

DIRECT_RUNNER = "DirectRunner"
DATAFLOW_RUNNER = "DataflowRunner"
OUTPUT_SUFFIXES = (".json", ".yaml", ".yml")
# Vertex AI and KFP both reject other pipeline names.
_PIPELINE_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")

# Flag name -> environment variable read when the flag is not given.
ENV_VARS = {
    "pipeline_root": "TFRS_PIPELINE_ROOT",
    "data_root": "TFRS_DATA_ROOT",
    "image": "TFRS_IMAGE",
    "serving_dir": "TFRS_SERVING_DIR",
    "pipeline_name": "TFRS_PIPELINE_NAME",
    "output": "TFRS_OUTPUT",
    "beam_runner": "TFRS_BEAM_RUNNER",
    "project": "TFRS_PROJECT",
    "region": "TFRS_REGION",
    "temp_location": "TFRS_TEMP_LOCATION",
    "endpoint": "TFRS_KFP_ENDPOINT",
    "experiment": "TFRS_EXPERIMENT",
}


def _env_default(name: str, default: Optional[str] = None) -> Optional[str]:
  """The flag's environment variable if set and non-empty, else `default`."""
  return os.environ.get(ENV_VARS[name]) or default


def _string_flag(flag_values: flags.FlagValues, name: str, default: Optional[str],
                 help_text: str) -> None:
  flags.DEFINE_string(name, _env_default(name, default),
                      f"{help_text} Env: {ENV_VARS[name]}.", flag_values=flag_values)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the runner's flags in `flag_values`; defaults are read from the environment.

  A function rather than module-level definitions: local_runner.py defines flags of the
  same names, and tests define them in separate FlagValues.

  Args:
    flag_values: Where to define the flags.
  """
  _string_flag(flag_values, "image", None,
               "Component image built from the Dockerfile, e.g. "
               "us-docker.pkg.dev/PROJECT/REPO/tfrs-pipeline:TAG. Required.")
  _string_flag(flag_values, "pipeline_root", None,
               "Root of the pipeline's artifacts, readable and writable by the cluster: "
               "gs://..., s3://... or a path on a volume mounted in every pod. Required.")
  _string_flag(flag_values, "data_root", None,
               "MovieLens directory or official zip that the cluster can read (any "
               "GroupLens format: ml-100k, ml-1m, ml-latest(-small), ml-20m, ml-25m). "
               "Required.")
  _string_flag(flag_values, "serving_dir", None,
               "Where blessed models are pushed, TF Serving layout. "
               "Default: <pipeline_root>/serving_model.")
  _string_flag(flag_values, "pipeline_name", configs.PIPELINE_NAME,
               "Pipeline name: lowercase letters, digits and '-'.")
  _string_flag(flag_values, "output", "tfrs_pipeline.yaml",
               "Compiled pipeline file. .yaml/.yml: the KFP PipelineSpec (what KFP and "
               "Vertex AI accept); .json: the Vertex AI PipelineJob around it.")
  flags.DEFINE_bool("enable_cache", True,
                    "Reuse results of tasks whose inputs did not change.",
                    flag_values=flag_values)
  flags.DEFINE_bool("pipeline_spec_2_1", True,
                    "Write PipelineSpec schema 2.1.0, the one KFP 2.x backends run (Vertex "
                    "AI runs both); false writes TFX's older 2.0.0.",
                    flag_values=flag_values)
  _define_beam_flags(flag_values)
  _define_submit_flags(flag_values)
  pipeline_flags.define_pipeline_flags(flag_values)
  config_flags.define_config_flags(configs.VertexTrainingConfig, flag_values)
  flags.adopt_module_key_flags(config_flags, flag_values=flag_values)


def _define_beam_flags(flag_values: flags.FlagValues) -> None:
  """Flags of the Beam pipelines that the data components run."""
  flags.DEFINE_enum("beam_runner", _env_default("beam_runner", DIRECT_RUNNER),
                    [DIRECT_RUNNER, DATAFLOW_RUNNER],
                    "Beam runner of the data components. DirectRunner runs in the "
                    "component's pod, multi-processing; DataflowRunner runs on Google "
                    f"Cloud Dataflow with workers in --image. Env: {ENV_VARS['beam_runner']}.",
                    flag_values=flag_values)
  flags.DEFINE_integer("direct_num_workers", 0,
                       "DirectRunner worker processes per component; 0 means one per CPU "
                       "of the node (not of the pod limit: set this on shared nodes), 1 "
                       "runs in the component's own process.",
                       flag_values=flag_values)
  _string_flag(flag_values, "project", None,
               "Google Cloud project of Dataflow (DataflowRunner) and of the Trainer's "
               "Vertex AI job (--trainer_replicas > 1).")
  _string_flag(flag_values, "region", None,
               "Region of Dataflow and of the Trainer's Vertex AI job, e.g. us-central1.")
  _string_flag(flag_values, "temp_location", None,
               "gs:// path for Dataflow's temporary and staging files.")
  flags.DEFINE_multi_string("beam_arg", [],
                            "Extra Beam pipeline argument, appended verbatim "
                            "(repeatable), e.g. --beam_arg=--max_num_workers=8.",
                            flag_values=flag_values)


def _define_submit_flags(flag_values: flags.FlagValues) -> None:
  """Flags of the optional submission to a Kubeflow Pipelines endpoint."""
  flags.DEFINE_bool("submit", False,
                    "After compiling, create a run on the KFP endpoint --endpoint.",
                    flag_values=flag_values)
  _string_flag(flag_values, "endpoint", None,
               "KFP API endpoint for --submit, e.g. https://HOST/pipeline or "
               "http://localhost:8080 through kubectl port-forward.")
  _string_flag(flag_values, "experiment", None,
               "KFP experiment of the run (created if missing). Default: KFP's 'Default'.")
  flags.DEFINE_string("run_name", None, "Run name. Default: KFP's (file name and time).",
                      flag_values=flag_values)


def beam_pipeline_args(runner: str = DIRECT_RUNNER, image: Optional[str] = None,
                       direct_num_workers: int = 0, project: Optional[str] = None,
                       region: Optional[str] = None, temp_location: Optional[str] = None,
                       extra_args: Sequence[str] = ()) -> List[str]:
  """Beam arguments of every Beam-based component, compiled into each task's container args.

  Args:
    runner: DIRECT_RUNNER or DATAFLOW_RUNNER.
    image: The component image; Dataflow workers run it too, so that they have exactly
      the driver's packages (the project included) and install nothing at start.
    direct_num_workers: DirectRunner processes; 0 is one per CPU, 1 in-process.
    project: Google Cloud project (Dataflow).
    region: Dataflow region.
    temp_location: gs:// path for Dataflow's temporary and staging files.
    extra_args: Appended verbatim.

  Returns:
    The argument list.

  Raises:
    ValueError: An unknown runner, or Dataflow settings missing.
  """
  if runner == DIRECT_RUNNER:
    # Multi-processing by default (0, one worker per CPU): in-memory mode runs every
    # transform in one Python thread.
    args = configs.direct_runner_args(direct_num_workers)
  elif runner == DATAFLOW_RUNNER:
    settings = {"project": project, "region": region, "temp_location": temp_location,
                "image": image}
    missing = [f"--{name}" for name, value in settings.items() if not value]
    if missing:
      raise ValueError(f"--beam_runner={DATAFLOW_RUNNER} needs {', '.join(missing)}.")
    args = [f"--runner={DATAFLOW_RUNNER}", f"--project={project}", f"--region={region}",
            f"--temp_location={temp_location}", f"--sdk_container_image={image}",
            # Custom SDK containers need Runner v2.
            "--experiments=use_runner_v2"]
  else:
    raise ValueError(f"Unknown Beam runner {runner!r}; use {DIRECT_RUNNER} or "
                     f"{DATAFLOW_RUNNER}.")
  return args + list(extra_args)


def vertex_training_job(config: configs.VertexTrainingConfig, image: str,
                        project: Optional[str], region: Optional[str],
                        pipeline_root: str) -> Optional[vertex_trainer.VertexTrainingJob]:
  """The Trainer's Vertex AI job for `config.replicas` > 1; None for one replica.

  Args:
    config: Replicas and machine type.
    image: The pipeline's image, which every replica runs.
    project: Google Cloud project of the job.
    region: Vertex AI region of the job.
    pipeline_root: Must be gs://: the replicas read Transform's outputs and write the
      model there, outside the cluster that runs the pipeline.

  Returns:
    The job, or None: train in the Trainer task's pod, the spec as without the flag.

  Raises:
    ValueError: Naming every missing or unusable setting.
  """
  if config.replicas == 1:
    return None
  flag = f"--trainer_replicas={config.replicas}"
  problems = [f"{flag} needs --{name} (or env {ENV_VARS[name]})."
              for name, value in (("project", project), ("region", region)) if not value]
  if not pipeline_root.startswith("gs://"):
    problems.append(f"{flag} needs a gs:// --pipeline_root (the Vertex AI replicas read "
                    f"and write it), got {pipeline_root!r}.")
  if problems:
    raise ValueError("\n".join(problems))
  return vertex_trainer.VertexTrainingJob(project=project, region=region, image=image,
                                          config=config)


def compile_pipeline(output: str, image: str, pipeline_root: str, data_root: str,
                     serving_dir: Optional[str] = None,
                     pipeline_name: str = configs.PIPELINE_NAME,
                     config: configs.PipelineConfig = configs.PipelineConfig(),
                     beam_args: Optional[Sequence[str]] = None, enable_cache: bool = True,
                     use_pipeline_spec_2_1: bool = True,
                     vertex_job: Optional[vertex_trainer.VertexTrainingJob] = None,
                     ) -> Dict[str, Any]:
  """Compiles the pipeline into `output` with TFX's KubeflowV2DagRunner.

  Args:
    output: .yaml/.yml (the PipelineSpec) or .json (a PipelineJob holding it).
    image: Image of every component.
    pipeline_root: Root of the artifacts at run time; nothing is written there now.
    data_root: MovieLens data as the cluster sees it.
    serving_dir: Push destination; default <pipeline_root>/serving_model.
    pipeline_name: Pipeline name.
    config: Every knob.
    beam_args: Beam arguments; default `beam_pipeline_args()` (DirectRunner).
    enable_cache: Task caching.
    use_pipeline_spec_2_1: PipelineSpec schema 2.1.0 rather than 2.0.0.
    vertex_job: Train on Vertex AI replicas (`vertex_training_job`); None: in the task.

  Returns:
    The compiled PipelineJob as a JSON dict (its 'pipelineSpec' is the PipelineSpec).
  """
  components = pipeline.create_components(
      data_dir=data_root, serving_dir=serving_dir or pipeline.default_serving_dir(pipeline_root),
      config=config, vertex_job=vertex_job)
  dsl_pipeline = pipeline.create_pipeline(
      pipeline_name=pipeline_name, pipeline_root=pipeline_root, components=components,
      beam_pipeline_args=beam_pipeline_args() if beam_args is None else beam_args,
      enable_cache=enable_cache)
  output_dir, output_filename = os.path.split(output)
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=image, use_pipeline_spec_2_1=use_pipeline_spec_2_1),
      output_dir=output_dir or os.getcwd(), output_filename=output_filename)
  # TFX writes the whole PipelineJob for .json and only its PipelineSpec for .yaml/.yml.
  pipeline_job = runner.run(dsl_pipeline)
  logging.info("Compiled %d tasks into %s.",
               len(pipeline_job["pipelineSpec"]["root"]["dag"]["tasks"]), output)
  return pipeline_job


def submit(package_path: str, pipeline_job: Dict[str, Any], endpoint: str,
           pipeline_root: str, experiment: Optional[str] = None,
           run_name: Optional[str] = None) -> Any:
  """Creates a run of the compiled pipeline on a Kubeflow Pipelines endpoint.

  Args:
    package_path: The compiled file.
    pipeline_job: What `compile_pipeline` returned for it.
    endpoint: KFP API host.
    pipeline_root: Root of the run's artifacts (the compiled spec carries none for KFP).
    experiment: Experiment name, created if missing; None: KFP's default.
    run_name: Run name; None: KFP's default.

  Returns:
    kfp's RunPipelineResult.
  """
  with tempfile.TemporaryDirectory() as tmp_dir:
    if "://" in package_path or not package_path.endswith((".yaml", ".yml")):
      # kfp.Client reads local YAML PipelineSpecs only, not Vertex's JSON jobs.
      package_path = os.path.join(tmp_dir, "pipeline.yaml")
      with open(package_path, "w") as f:
        yaml.safe_dump(pipeline_job["pipelineSpec"], f, sort_keys=True)
    client = kfp.Client(host=endpoint)
    result = client.create_run_from_pipeline_package(
        package_path, arguments={}, run_name=run_name, experiment_name=experiment,
        pipeline_root=pipeline_root)
  logging.info("Created run %s on %s.", getattr(result, "run_id", result), endpoint)
  return result


def _check_flags(flag_values: flags.FlagValues) -> None:
  """Raises app.UsageError naming every missing or invalid setting at once."""
  problems = [f"--{name} (or env {ENV_VARS[name]}) is required."
              for name in ("image", "pipeline_root", "data_root")
              if not flag_values[name].value]
  if not _PIPELINE_NAME_PATTERN.match(flag_values.pipeline_name or ""):
    problems.append(f"--pipeline_name={flag_values.pipeline_name!r} must match "
                    f"{_PIPELINE_NAME_PATTERN.pattern} (a KFP and Vertex AI rule).")
  if not (flag_values.output or "").endswith(OUTPUT_SUFFIXES):
    problems.append(f"--output={flag_values.output!r} must end with one of "
                    f"{', '.join(OUTPUT_SUFFIXES)}.")
  if flag_values.submit and not flag_values.endpoint:
    problems.append(f"--submit needs --endpoint (or env {ENV_VARS['endpoint']}).")
  if problems:
    raise app.UsageError("\n".join(problems))


def _vertex_job_from_flags(
    flag_values: flags.FlagValues) -> Optional[vertex_trainer.VertexTrainingJob]:
  try:
    return vertex_training_job(
        config_flags.config_from_flags(configs.VertexTrainingConfig, flag_values),
        image=flag_values.image, project=flag_values.project, region=flag_values.region,
        pipeline_root=flag_values.pipeline_root)
  except ValueError as error:
    raise app.UsageError(str(error)) from error


def _beam_args_from_flags(flag_values: flags.FlagValues) -> List[str]:
  try:
    return beam_pipeline_args(
        flag_values.beam_runner, image=flag_values.image,
        direct_num_workers=flag_values.direct_num_workers, project=flag_values.project,
        region=flag_values.region, temp_location=flag_values.temp_location,
        extra_args=flag_values.beam_arg)
  except ValueError as error:
    raise app.UsageError(str(error)) from error


def run(flag_values: flags.FlagValues = flags.FLAGS) -> Dict[str, Any]:
  """Compiles (and with --submit, submits) as the parsed `flag_values` say.

  Args:
    flag_values: Parsed flags defined by `define_flags`.

  Returns:
    The compiled PipelineJob as a JSON dict.

  Raises:
    app.UsageError: Missing or invalid flags.
  """
  _check_flags(flag_values)
  beam_args = _beam_args_from_flags(flag_values)
  vertex_job = _vertex_job_from_flags(flag_values)
  pipeline_root = flag_values.pipeline_root
  if "://" not in pipeline_root:
    logging.warning("--pipeline_root=%s is a local path: every pod must mount it there.",
                    pipeline_root)
  output = flag_values.output
  if "://" not in output:
    output = os.path.abspath(output)
  pipeline_job = compile_pipeline(
      output=output, image=flag_values.image, pipeline_root=pipeline_root,
      data_root=flag_values.data_root, serving_dir=flag_values.serving_dir,
      pipeline_name=flag_values.pipeline_name,
      config=pipeline_flags.pipeline_config_from_flags(flag_values), beam_args=beam_args,
      enable_cache=flag_values.enable_cache,
      use_pipeline_spec_2_1=flag_values.pipeline_spec_2_1, vertex_job=vertex_job)
  print(f"Compiled pipeline written to {output}")
  if flag_values.submit:
    submit(output, pipeline_job, endpoint=flag_values.endpoint,
           pipeline_root=pipeline_root, experiment=flag_values.experiment,
           run_name=flag_values.run_name)
  return pipeline_job
