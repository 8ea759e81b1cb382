"""One run of the pipeline on this machine: LocalDagRunner, progress lines, the summary.

local_runner.py holds the pipeline root's lock, sets up the terminal and log file, and
imports this module only then: TensorFlow and TFX print on import.
"""
import dataclasses
import os
import time
from typing import Any, Dict, List, Optional, TextIO

from ml_metadata import metadata_store
from tfx import v1 as tfx

from contracts import configs
from movielens import synthetic
from pipeline import pipeline
from pipeline import preflight
from pipeline import progress
from pipeline import run_record
from pipeline import run_summary


@dataclasses.dataclass(frozen=True)
class Options:
  """What local_runner.py's flags ask for."""
  pipeline_root: str  # Absolute, held locked by the caller.
  pipeline_name: str
  data_dir: Optional[str]  # None: the synthetic data of `synthetic_data`.
  synthetic_data: configs.SyntheticDataConfig
  serving_dir: Optional[str]  # None: pipeline.default_serving_dir.
  enable_cache: bool
  config: configs.PipelineConfig
  direct_num_workers: int  # Beam DirectRunner workers (local_beam_args).


# The project's setup.py, beside its packages in a checkout. Given to Beam as
# --setup_file it tells TFX that the workers' dependencies are provided: without one of
# --extra_packages, --setup_file, --requirements_file or a container image, TFX's
# dependency_utils copies its whole installed package into a new temporary directory and
# builds an sdist there, for every Beam component, and never removes it. The DirectRunner
# runs its workers with this interpreter and stages nothing, so the file is never built.
_PROJECT_SETUP_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.py")


def local_beam_args(num_workers: int) -> List[str]:
  """The DirectRunner's arguments (configs.direct_runner_args) and, in a checkout, the
  project's setup.py, so that no Beam component builds a temporary package."""
  args = configs.direct_runner_args(num_workers)
  if os.path.exists(_PROJECT_SETUP_FILE):
    args.append(f"--setup_file={_PROJECT_SETUP_FILE}")
  return args


def resolve_data_dir(options: Options) -> str:
  """--data_dir, or (only when it is None) the synthetic default data, generated on first
  use. An empty or blank --data_dir is an error, never the synthetic data."""
  if options.data_dir is not None:
    preflight.check_data_dir(options.data_dir)
    return options.data_dir
  return synthetic.ensure_generated(os.path.join(options.pipeline_root, "data"),
                                   options.synthetic_data)


def synthetic_notice(size: configs.SyntheticDataConfig, data_dir: str) -> str:
  """The line a run without --data_dir starts with: its model knows no real movie."""
  return (f"NOTE: no --data_dir given, so this run trains on BUILT-IN SYNTHETIC data "
          f"({size.synthetic_users:,} users, {size.synthetic_movies:,} movies, "
          f"{size.synthetic_ratings:,} ratings, seed {size.synthetic_seed}) in {data_dir}, "
          f"not on MovieLens; pass --data_dir PATH for real data.")


def run(options: Options, out: TextIO) -> Dict[str, Any]:
  """Runs the pipeline once, printing progress and the summary to `out`; the summary."""
  started = time.time()
  run_id = run_record.new_run_id()
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      os.path.join(options.pipeline_root, "metadata.sqlite"))
  store = metadata_store.MetadataStore(metadata)
  data_dir = resolve_data_dir(options)
  if options.data_dir is None:
    progress.print_line(out, synthetic_notice(options.synthetic_data, data_dir))
  interrupted = _mark_interrupted(store, options, run_id, out)
  components = pipeline.create_components(
      data_dir=data_dir,
      serving_dir=options.serving_dir or pipeline.default_serving_dir(options.pipeline_root),
      config=options.config)
  progress.print_line(out, f"Run {run_id} on {data_dir}")
  _run_with_progress(pipeline.create_pipeline(
      pipeline_name=options.pipeline_name, pipeline_root=options.pipeline_root,
      components=components, enable_cache=options.enable_cache,
      beam_pipeline_args=local_beam_args(options.direct_num_workers),
      metadata_connection_config=metadata), run_id, store, len(components), out)

  summary = run_summary.summarize(metadata, options.pipeline_name, run_id)
  summary["interrupted_executions"] = [e.describe() for e in interrupted]
  summary["wall_seconds"] = round(time.time() - started, 1)
  path = run_summary.write(summary, options.pipeline_root)
  progress.print_line(out, run_summary.format_text(summary))
  progress.print_line(out, f"Done in {summary['wall_seconds']:.1f} s; summary written to "
                      f"{path}")
  return summary


def _mark_interrupted(store: metadata_store.MetadataStore, options: Options, run_id: str,
                      out: TextIO) -> List[run_record.Interrupted]:
  interrupted = run_record.mark_interrupted(store, options.pipeline_root,
                                            options.pipeline_name, run_id)
  for execution in interrupted:
    progress.print_line(out, f"Note: {execution.describe()}")
  return interrupted


def _run_with_progress(tfx_pipeline: tfx.dsl.Pipeline, run_id: str,
                       store: metadata_store.MetadataStore, num_nodes: int,
                       out: TextIO) -> None:
  """run_record.run_local, with a line on `out` as each node starts and ends."""
  pipeline_name = tfx_pipeline.pipeline_info.pipeline_name

  def describe(node_id):
    node = run_record.node_runs(store, pipeline_name, run_id).get(node_id)
    return (node.cached, run_summary.node_outcome(node)) if node else (False, "")

  reporter = progress.NodeReporter(out, num_nodes, describe)
  with reporter.attached():
    try:
      run_record.run_local(tfx_pipeline, run_id)
    except Exception:
      reporter.failed()
      raise
