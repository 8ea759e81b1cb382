"""One pipeline run in ML Metadata: started under a known run id, and read back by it.

LocalDagRunner names each run (the `pipeline_run` context) with a timestamp it makes up
and does not return, so a process cannot tell its own run from another's. `run_local`
compiles the pipeline and sets the run id itself; `node_runs` reads exactly that run.
`mark_interrupted` deals with executions a killed process left RUNNING.
"""
import dataclasses
import datetime
import glob
import os
import shutil
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.dsl.compiler import compiler
from tfx.dsl.compiler import constants
from tfx.orchestration.portable import runtime_parameter_utils

Artifact = metadata_store_pb2.Artifact
Execution = metadata_store_pb2.Execution
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_UNFINISHED = (Execution.NEW, Execution.RUNNING)
INTERRUPTED_PROPERTY = "interrupted"


def new_run_id() -> str:
  """A run id like LocalDagRunner's own (ISO time, microseconds)."""
  return datetime.datetime.now().isoformat()


def run_local(tfx_pipeline: tfx.dsl.Pipeline, run_id: str) -> None:
  """Runs `tfx_pipeline` with LocalDagRunner as the `pipeline_run` context `run_id`."""
  ir = compiler.Compiler().compile(tfx_pipeline)
  # LocalDagRunner substitutes its own run id only where the parameter is still open.
  runtime_parameter_utils.substitute_runtime_parameter(
      ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
  tfx.orchestration.LocalDagRunner().run_with_ir(ir)


@dataclasses.dataclass
class NodeRun:
  """A node's execution in one run and its output artifacts by key."""
  node_id: str
  execution: Execution
  outputs: Dict[str, List[Artifact]]
  type_names: Dict[int, str]  # Artifact type id -> name, e.g. "ModelBlessing".

  @property
  def cached(self) -> bool:
    return self.execution.last_known_state == Execution.CACHED

  @property
  def seconds(self) -> float:
    return (self.execution.last_update_time_since_epoch
            - self.execution.create_time_since_epoch) / 1000

  def artifacts(self, type_name: Optional[str] = None) -> List[Artifact]:
    """The output artifacts, all or those of one type."""
    return [a for artifacts in self.outputs.values() for a in artifacts
            if type_name is None or self.type_names.get(a.type_id) == type_name]


def node_runs(store: metadata_store.MetadataStore, pipeline_name: str,
              run_id: str) -> Dict[str, NodeRun]:
  """Node id -> its execution in run `run_id`, in execution order."""
  run = store.get_context_by_type_and_name(constants.PIPELINE_RUN_CONTEXT_TYPE_NAME, run_id)
  if run is None:
    raise ValueError(f"No run {run_id!r} in ML Metadata.")
  executions = sorted(store.get_executions_by_context(run.id),
                      key=lambda e: (e.create_time_since_epoch, e.id))
  outputs = _outputs(store, [e.id for e in executions])
  node_ids = _node_ids(store, executions, pipeline_name)
  type_names = {t.id: t.name for t in store.get_artifact_types()}
  return {node_ids[e.id]: NodeRun(node_ids[e.id], e, outputs.get(e.id, {}), type_names)
          for e in executions if e.id in node_ids}


def _node_ids(store: metadata_store.MetadataStore, executions: List[Execution],
              pipeline_name: str) -> Dict[int, str]:
  """Execution id -> node id, for executions of nodes of `pipeline_name`."""
  node_type = store.get_context_type(constants.NODE_CONTEXT_TYPE_NAME).id
  prefix = pipeline_name + "."
  return {execution.id: context.name[len(prefix):]
          for execution in executions
          for context in store.get_contexts_by_execution(execution.id)
          if context.type_id == node_type and context.name.startswith(prefix)}


def _outputs(store: metadata_store.MetadataStore,
             execution_ids: List[int]) -> Dict[int, Dict[str, List[Artifact]]]:
  """Execution id -> output key -> artifacts."""
  events = [e for e in store.get_events_by_execution_ids(execution_ids)
            if e.type in _OUTPUT_EVENTS]
  artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
  result: Dict[int, Dict[str, List[Artifact]]] = {}
  for event in events:
    by_key = result.setdefault(event.execution_id, {})
    by_key.setdefault(event.path.steps[0].key, []).append(artifacts[event.artifact_id])
  return result


def int_properties(artifacts: List[Artifact], prefix: str = "num_") -> Dict[str, int]:
  """The int custom properties named `prefix`* of the artifacts (counts, by convention).

  Ordered for reading: *_examples first, largest first (train before eval), then the rest
  by name.
  """
  found = {name: value.int_value for artifact in artifacts
           for name, value in artifact.custom_properties.items()
           if name.startswith(prefix) and value.HasField("int_value")}

  def order(item):
    name, value = item
    examples = name.endswith("_examples")
    return (not examples, -value if examples else 0, name)
  return dict(sorted(found.items(), key=order))


@dataclasses.dataclass
class Interrupted:
  """An execution whose process died before it recorded an outcome."""
  node_id: str
  execution_id: int
  run_id: str
  removed_dirs: List[str]

  def describe(self) -> str:
    removed = (f"; removed its partial outputs {', '.join(self.removed_dirs)}"
               if self.removed_dirs else "")
    return (f"{self.node_id} (execution {self.execution_id}) of run {self.run_id} was "
            f"interrupted: marked FAILED in ML Metadata{removed}.")


def mark_interrupted(store: metadata_store.MetadataStore, pipeline_root: str,
                     pipeline_name: str, current_run_id: str) -> List[Interrupted]:
  """Marks executions left NEW or RUNNING as FAILED and removes their output dirs.

  What TFX's launcher does when an executor fails, done late for an execution whose
  process was killed. Only safe while no other run uses the store: call it holding the
  pipeline root's lock (pipeline.locking).
  """
  unfinished = [e for e in store.get_executions() if e.last_known_state in _UNFINISHED]
  if not unfinished:
    return []
  run_type = store.get_context_type(constants.PIPELINE_RUN_CONTEXT_TYPE_NAME).id
  found = []
  for execution in unfinished:
    node_id = _node_ids(store, [execution], pipeline_name).get(execution.id)
    if node_id is None:
      continue
    run_ids = [c.name for c in store.get_contexts_by_execution(execution.id)
               if c.type_id == run_type]
    execution.last_known_state = Execution.FAILED
    execution.custom_properties[INTERRUPTED_PROPERTY].string_value = (
        f"its process ended before it finished; found by run {current_run_id}")
    store.put_executions([execution])
    found.append(Interrupted(node_id, execution.id, ",".join(run_ids) or "?",
                             _remove_output_dirs(pipeline_root, node_id, execution.id)))
  return found


def _remove_output_dirs(pipeline_root: str, node_id: str, execution_id: int) -> List[str]:
  """<root>/<node>/<output key>/<execution id>: where TFX puts a node's outputs."""
  removed = []
  for path in sorted(glob.glob(os.path.join(pipeline_root, node_id, "*", str(execution_id)))):
    if os.path.basename(os.path.dirname(path)).startswith("."):  # TFX's .system dir.
      continue
    if os.path.isdir(path):
      shutil.rmtree(path)
    else:
      os.remove(path)
    removed.append(path)
  return removed
