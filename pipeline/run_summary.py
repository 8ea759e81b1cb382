"""The summary of one pipeline run, read back from ML Metadata and the artifacts.

The run is named by its id (pipeline.run_record), never "the latest run": with two
processes on one store, each summarizes its own. Keys of the summary (also written as
<pipeline_root>/run_summary.json):
  run_id                       The `pipeline_run` context in ML Metadata.
  data_counts                  Every num_* int property of ExampleGen's outputs (examples
                               per split, skipped bad lines, movies, ...).
  model, baseline_popularity   Evaluator metrics (hit_rate@k, recall@k, ndcg@10, ...).
  baseline_ease                The same for the EASE baseline.
  baseline_blessed             Metrics of the latest previously blessed model, or None.
  ranking                      With a ranking stage (--ranking_model): its rating errors
                               and baselines, and the served order's metrics (the
                               Evaluator's metrics.json "ranking" section); else None.
  blessed, blessing_reasons    The Evaluator's verdict and why.
  evaluation_report            The Evaluator's report: report.html, else report.txt.
  pushed_model                 Where the Pusher wrote the model, or None.
  trainer_logs                 The Trainer's TensorBoard logs (its model_run artifact).
  component_seconds            Wall seconds per component (0 for cached ones).
  cached_components            Components whose results were reused.
  example_recommendations      Top 5 titles for three users, from the trained model.
  wall_seconds                 The whole run, set by the runner.
"""
import json
import os
from typing import Any, Dict, List, Mapping, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import tensorflow as tf
import tensorflow_transform as tft

from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import path_utils

from components import retrieval_trainer
from components.movielens_example_gen import component as example_gen_component
from components.retrieval_evaluator import component as evaluator_component
from components.retrieval_evaluator import executor as evaluator_executor
from components.retrieval_evaluator import metric_names
from components.retrieval_evaluator import results as evaluator_results
from contracts import features
from contracts import terminal
from pipeline import run_record
from trainer_module import recommend

# Node ids: the components' default ids, their class names; the Pusher keeps "Pusher".
_EXAMPLE_GEN = example_gen_component.MovieLensExampleGen.__name__
_TRAINER = retrieval_trainer.RetrievalTrainer.__name__
_EVALUATOR = evaluator_component.RetrievalEvaluator.__name__
_TRANSFORM = "Transform"
_PUSHER = "Pusher"

SUMMARY_FILE = "run_summary.json"
# The Evaluator's human-readable reports, preferred first.
_REPORT_FILES = (evaluator_results.HTML_REPORT_FILE, evaluator_results.REPORT_FILE)
# Custom properties TFX writes on ModelBlessing and PushedModel artifacts.
_BLESSED = "blessed"
_PUSHED = "pushed"
_PUSHED_DESTINATION = "pushed_destination"


def _pushed_destination(pushed: List[metadata_store_pb2.Artifact]) -> Optional[str]:
  for artifact in pushed:
    if artifact.custom_properties[_PUSHED].int_value == 1:
      return artifact.custom_properties[_PUSHED_DESTINATION].string_value
  return None


def node_outcome(node: run_record.NodeRun) -> str:
  """What a finished node produced, in a few words: counts, blessing, push."""
  counts = run_record.int_properties(node.artifacts())
  parts = [_count_text(counts)] if counts else []
  for blessing in node.artifacts(standard_artifacts.ModelBlessing.TYPE_NAME):
    parts.append("blessed" if blessing.custom_properties[_BLESSED].int_value == 1
                 else "NOT blessed")
  pushed = node.artifacts(standard_artifacts.PushedModel.TYPE_NAME)
  if pushed:
    destination = _pushed_destination(pushed)
    parts.append(f"pushed to {destination}" if destination else "not pushed")
  return ", ".join(parts)


def _count_text(counts: Mapping[str, int]) -> str:
  """{"num_train_examples": 9697} -> "train examples 9,697"."""
  return ", ".join(f"{name[len('num_'):].replace('_', ' ')} {value:,}"
                   for name, value in counts.items())


def _example_recommendations(model_uri: str, transform_uri: str) -> Dict[str, List[str]]:
  """Top-5 titles for the three most active training users (vocabulary head)."""
  users = [u.decode() for u in tft.TFTransformOutput(transform_uri).vocabulary_by_name(
      features.USER_ID_VOCAB)[:3]]
  rows = recommend.recommend(path_utils.serving_model_path(model_uri), users, k=5,
                             exclude_seen=True)
  return {user: [rec.title for rec in recs] for user, recs in zip(users, rows)}


def _report_path(evaluation_uri: str) -> Optional[str]:
  for name in _REPORT_FILES:
    path = os.path.join(evaluation_uri, name)
    if tf.io.gfile.exists(path):
      return path
  return None


def _evaluation(evaluation: metadata_store_pb2.Artifact) -> Dict[str, Any]:
  metrics = evaluator_results.load(evaluation.uri)
  return dict(model=metrics[evaluator_results.MODEL_SECTION],
              baseline_popularity=metrics[evaluator_results.POPULARITY_SECTION],
              baseline_ease=metrics.get(evaluator_results.EASE_SECTION),
              baseline_blessed=metrics.get(evaluator_results.BLESSED_SECTION),
              ranking=metrics.get(evaluator_results.RANKING_FIELD),
              blessed=metrics[evaluator_results.BLESSED_FIELD],
              blessing_reasons=metrics.get(evaluator_results.REASONS_FIELD, []),
              evaluation_report=_report_path(evaluation.uri))


def summarize(connection_config: metadata_store_pb2.ConnectionConfig,
              pipeline_name: str, run_id: str) -> Dict[str, Any]:
  """Summary of run `run_id` of `pipeline_name` in the given ML Metadata store."""
  nodes = run_record.node_runs(metadata_store.MetadataStore(connection_config),
                               pipeline_name, run_id)
  outputs = {node_id: node.outputs for node_id, node in nodes.items()}
  summary: Dict[str, Any] = {
      "run_id": run_id,
      "component_seconds": {n: round(node.seconds, 1) for n, node in nodes.items()},
      "cached_components": [n for n, node in nodes.items() if node.cached]}
  if _EXAMPLE_GEN in nodes:
    summary["data_counts"] = run_record.int_properties(nodes[_EXAMPLE_GEN].artifacts())
  evaluation = outputs.get(_EVALUATOR, {}).get(evaluator_executor.EVALUATION_KEY)
  if evaluation:
    summary.update(_evaluation(evaluation[0]))
  summary["pushed_model"] = _pushed_destination(
      outputs.get(_PUSHER, {}).get(specs.PUSHED_MODEL_KEY, []))
  model_run = outputs.get(_TRAINER, {}).get(specs.MODEL_RUN_KEY)
  if model_run:
    summary["trainer_logs"] = model_run[0].uri
  model = outputs.get(_TRAINER, {}).get(specs.MODEL_KEY)
  transform = outputs.get(_TRANSFORM, {}).get(specs.TRANSFORM_GRAPH_KEY)
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
  """A short human-readable rendering of the summary.

  Short enough for a default run to print at most 60 lines: the data counts and seconds
  are left to the progress lines above it, the TensorBoard logs to `make tensorboard`,
  metrics at middle cutoffs to metrics.json and the report (`_terminal_metrics`).
  """
  lines = []
  if "model" in summary:
    baselines = [(key, label) for key, label in (("baseline_popularity", "popularity"),
                                                 ("baseline_ease", "EASE"))
                 if summary.get(key)]
    lines.append(f"{'metric':<20}{'model':>10}"
                 + "".join(f"{label:>12}" for _, label in baselines))
    for name in _terminal_metrics(summary["model"]):
      lines.append(f"{name:<20}{_cell(summary['model'].get(name)):>10}" + "".join(
          f"{_cell(summary[key].get(name)):>12}" for key, _ in baselines))
    lines.extend(_ranking_lines(summary))
    lines.append(f"blessed: {summary['blessed']}")
    lines.extend(f"  {reason}" for reason in summary.get("blessing_reasons", []))
  lines.append(f"pushed model: {summary.get('pushed_model') or 'not pushed'}")
  for user, titles in summary.get("example_recommendations", {}).items():
    # Ids and titles are data: shown with their control characters escaped.
    lines.append(f"user {terminal.for_terminal(user)}: "
                 + " | ".join(terminal.for_terminal(title) for title in titles))
  if summary.get("evaluation_report"):
    lines.append(f"evaluation report: {summary['evaluation_report']}")
  return "\n".join(lines)


def _ranking_lines(summary: Mapping[str, Any]) -> List[str]:
  """The ranking stage's RMSE against its baselines and, when measured, the served order's
  hit_rate@10 and ndcg@10 against retrieval's; nothing without a ranking stage."""
  ranking = summary.get("ranking")
  if not ranking:
    return []
  baselines = ranking[metric_names.RATING_BASELINES]
  lines = [f"ranking stage RMSE {_cell(ranking[metric_names.RMSE])} (movie mean "
           f"{_cell(baselines[metric_names.MOVIE_MEAN][metric_names.RMSE])}, global mean "
           f"{_cell(baselines[metric_names.GLOBAL_MEAN][metric_names.RMSE])})"]
  ranked = ranking.get(metric_names.RANKED_ORDER)
  if ranked:
    shown = [name for name in ("hit_rate@10", "ndcg@10") if name in ranked]
    lines.append("serving_ranked order: " + ", ".join(
        f"{name} {_cell(ranked[name])} (retrieval {_cell(summary['model'].get(name))})"
        for name in shown))
  return lines


def _terminal_metrics(model_metrics: Mapping[str, Any]) -> List[str]:
  """The metric@k names at the smallest and the largest k, in the evaluator's order."""
  cutoffs = sorted({int(name.rsplit("@", 1)[1]) for name in model_metrics if "@" in name})
  ends = {cutoffs[0], cutoffs[-1]} if cutoffs else set()
  return [name for name in model_metrics
          if "@" in name and int(name.rsplit("@", 1)[1]) in ends]


def _cell(value: Optional[float]) -> str:
  return "-" if value is None else f"{value:.4f}"
