"""The summary of one pipeline run, read back from ML Metadata and the artifacts.

Keys of the summary (also written as <pipeline_root>/run_summary.json):
  model, baseline_popularity   Evaluator metrics (hit_rate@k, recall@k, ndcg@10, ...).
  baseline_ease                The same for the EASE baseline.
  baseline_blessed             Metrics of the latest previously blessed model, or None.
  blessed, blessing_reasons    The Evaluator's verdict and why.
  evaluation_report            Path of the Evaluator's HTML report.
  pushed_model                 Where the Pusher wrote the model, or None.
  component_seconds            Wall seconds per component (0 for cached ones).
  cached_components            Components whose results were reused.
  example_recommendations      Top 5 titles for three users, from the trained model.
  wall_seconds                 The whole run, set by the runner.
"""
import collections
import json
import os
from typing import Any, Dict, List, Mapping, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import tensorflow as tf
import tensorflow_transform as tft

from tfx.types import standard_component_specs as specs
from tfx.utils import path_utils

from components import retrieval_trainer
from components.retrieval_evaluator import component as evaluator_component
from components.retrieval_evaluator import executor as evaluator_executor
from components.retrieval_evaluator import results as evaluator_results
from contracts import features
from trainer_module import recommend

# Node ids: the components' default ids, their class names.
_TRAINER = retrieval_trainer.RetrievalTrainer.__name__
_EVALUATOR = evaluator_component.RetrievalEvaluator.__name__
_TRANSFORM = "Transform"
_PUSHER = "Pusher"

SUMMARY_FILE = "run_summary.json"
_CACHED = metadata_store_pb2.Execution.CACHED
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)


def _latest_run(store: metadata_store.MetadataStore,
                pipeline_name: str) -> metadata_store_pb2.Context:
  pipeline_ids = {c.id for c in store.get_contexts_by_type("pipeline")
                  if c.name == pipeline_name}
  runs = [run for run in store.get_contexts_by_type("pipeline_run")
          if any(parent.id in pipeline_ids for parent in store.get_parent_contexts_by_context(run.id))]
  if not runs:
    raise ValueError(f"No run of pipeline {pipeline_name!r} in ML Metadata.")
  return max(runs, key=lambda run: run.create_time_since_epoch)


def _node_ids(store: metadata_store.MetadataStore, executions, pipeline_name: str):
  """Execution id -> node id (the pipeline's components, by their ids)."""
  node_type = store.get_context_type("node").id
  result = {}
  for execution in executions:
    for context in store.get_contexts_by_execution(execution.id):
      if context.type_id == node_type:
        result[execution.id] = context.name[len(pipeline_name) + 1:]
  return result


def _outputs(store: metadata_store.MetadataStore,
             execution_ids: List[int]) -> Dict[int, Dict[str, List[metadata_store_pb2.Artifact]]]:
  """Execution id -> output key -> artifacts."""
  events = [e for e in store.get_events_by_execution_ids(execution_ids)
            if e.type in _OUTPUT_EVENTS]
  artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
  result = collections.defaultdict(lambda: collections.defaultdict(list))
  for event in events:
    result[event.execution_id][event.path.steps[0].key].append(artifacts[event.artifact_id])
  return result


def _pushed_destination(pushed: List[metadata_store_pb2.Artifact]) -> Optional[str]:
  for artifact in pushed:
    if artifact.custom_properties["pushed"].int_value == 1:
      return artifact.custom_properties["pushed_destination"].string_value
  return None


def _example_recommendations(model_uri: str, transform_uri: str) -> Dict[str, List[str]]:
  """Top-5 titles for the three most active training users (vocabulary head)."""
  users = [u.decode() for u in tft.TFTransformOutput(transform_uri).vocabulary_by_name(
      features.USER_ID_VOCAB)[:3]]
  rows = recommend.recommend(path_utils.serving_model_path(model_uri), users, k=5,
                             exclude_seen=True)
  return {user: [rec.title for rec in recs] for user, recs in zip(users, rows)}


def summarize(connection_config: metadata_store_pb2.ConnectionConfig,
              pipeline_name: str) -> Dict[str, Any]:
  """Summary of the latest run of `pipeline_name` in the given ML Metadata store."""
  store = metadata_store.MetadataStore(connection_config)
  executions = store.get_executions_by_context(_latest_run(store, pipeline_name).id)
  outputs = _outputs(store, [e.id for e in executions])
  node_ids = _node_ids(store, executions, pipeline_name)
  by_node, seconds, cached = {}, {}, []
  for execution in sorted(executions, key=lambda e: e.create_time_since_epoch):
    node = node_ids.get(execution.id, str(execution.id))
    by_node[node] = outputs[execution.id]
    seconds[node] = round(
        (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000, 1)
    if execution.last_known_state == _CACHED:
      cached.append(node)

  summary: Dict[str, Any] = {"component_seconds": seconds, "cached_components": cached}
  evaluation = by_node.get(_EVALUATOR, {}).get(evaluator_executor.EVALUATION_KEY)
  if evaluation:
    metrics = evaluator_results.load(evaluation[0].uri)
    summary.update(model=metrics[evaluator_results.MODEL_SECTION],
                   baseline_popularity=metrics[evaluator_results.POPULARITY_SECTION],
                   baseline_ease=metrics.get(evaluator_results.EASE_SECTION),
                   baseline_blessed=metrics.get(evaluator_results.BLESSED_SECTION),
                   blessed=metrics[evaluator_results.BLESSED_FIELD],
                   blessing_reasons=metrics.get(evaluator_results.REASONS_FIELD, []),
                   evaluation_report=evaluator_results.html_report_path(evaluation[0].uri))
  summary["pushed_model"] = _pushed_destination(
      by_node.get(_PUSHER, {}).get(specs.PUSHED_MODEL_KEY, []))
  model = by_node.get(_TRAINER, {}).get(specs.MODEL_KEY)
  transform = by_node.get(_TRANSFORM, {}).get(specs.TRANSFORM_GRAPH_KEY)
  if model and transform:
    summary["example_recommendations"] = _example_recommendations(model[0].uri,
                                                                  transform[0].uri)
  return summary


def write(summary: Mapping[str, Any], pipeline_root: str) -> str:
  path = os.path.join(pipeline_root, SUMMARY_FILE)
  with tf.io.gfile.GFile(path, "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
  return path


def format_text(summary: Mapping[str, Any]) -> str:
  """A short human-readable rendering of the summary."""
  lines = []
  if "model" in summary:
    baselines = [(key, label) for key, label in (("baseline_popularity", "popularity"),
                                                 ("baseline_ease", "EASE"))
                 if summary.get(key)]
    lines.append(f"{'metric':<20}{'model':>10}"
                 + "".join(f"{label:>12}" for _, label in baselines))
    for name in summary["model"]:
      if "@" in name:
        lines.append(f"{name:<20}{_cell(summary['model'].get(name)):>10}" + "".join(
            f"{_cell(summary[key].get(name)):>12}" for key, _ in baselines))
    lines.append(f"blessed: {summary['blessed']}")
    lines.extend(f"  {reason}" for reason in summary.get("blessing_reasons", []))
    if summary.get("evaluation_report"):
      lines.append(f"evaluation report: {summary['evaluation_report']}")
  lines.append(f"pushed model: {summary.get('pushed_model') or 'not pushed'}")
  lines.append("component wall seconds: " + ", ".join(
      f"{node} {secs:.1f}" + (" (cached)" if node in summary["cached_components"] else "")
      for node, secs in summary["component_seconds"].items()))
  for user, titles in summary.get("example_recommendations", {}).items():
    lines.append(f"user {user}: " + " | ".join(titles))
  if "wall_seconds" in summary:
    lines.append(f"total wall time: {summary['wall_seconds']:.1f} s")
  return "\n".join(lines)


def _cell(value: Optional[float]) -> str:
  return "-" if value is None else f"{value:.4f}"
