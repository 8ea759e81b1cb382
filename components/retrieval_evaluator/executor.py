"""Executor of RetrievalEvaluator: full-catalog retrieval metrics and a model blessing.

TFMA's Evaluator scores given (query, label) examples; a retrieval model must instead rank
the whole catalog for each user. This executor embeds every eval user once with the
Trainer's query tower, scores all candidates with one matrix product per batch of users,
and compares the model with two baselines on the same users and pairs:
  * popularity: every user gets the movies with the most train ratings;
  * the last blessed model (optional `baseline_model` input).
The blessing decides on `hit_rate@blessing_k`, 100 by default (see `decide_blessing`), and
is written the way the stock Evaluator writes it, so the stock Pusher and
LatestBlessedModelStrategy accept it.
"""
import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.components.evaluator import constants as evaluator_constants
from tfx.components.evaluator import executor as tfx_evaluator_executor
from tfx.types import artifact_utils

from components import component_params
from components.retrieval_evaluator import data
from components.retrieval_evaluator import metrics
from contracts import artifacts
from contracts import configs

# Artifact keys (shared with component.py); the execution properties are the fields of
# `configs.EvaluatorConfig`.
EXAMPLES_KEY = "examples"
MODEL_KEY = "model"
BASELINE_MODEL_KEY = "baseline_model"
EVALUATION_KEY = "evaluation"
BLESSING_KEY = "blessing"

# Files of the `evaluation` artifact.
METRICS_FILE = artifacts.METRICS_FILE
REPORT_FILE = artifacts.REPORT_FILE
# Sections of metrics.json.
MODEL_SECTION = "model"
POPULARITY_SECTION = "baseline_popularity"
BLESSED_SECTION = "baseline_blessed"
BLESSED_FIELD = "blessed"
REASONS_FIELD = "reasons"

# Users scored at once: ~6 float arrays of [batch, catalog] (~0.25 GB each at 62k movies).
_SCORE_BATCH_SIZE = 512
_QUERY_TIME = "median timestamp of the user's eval ratings"


@dataclasses.dataclass(frozen=True)
class Decision:
  """The verdict and one plain-words line per check, passed or failed."""
  blessed: bool
  reasons: List[str]


def decide_blessing(model: Mapping[str, float], popularity: Mapping[str, float],
                    blessed_baseline: Optional[Mapping[str, float]],
                    options: configs.EvaluatorConfig) -> Decision:
  """Blesses iff the model beats popularity by the lift and keeps up with the blessed one.

  On `options.gate_metric`: model >= popularity * (1 + min_lift_over_popularity), and, with a
  blessed baseline, model >= baseline * (1 - max_drop_vs_blessed). A model that
  retrieves no eval movie at all is never blessed, even against a zero baseline.
  """
  metric = options.gate_metric
  value = model[metric]
  checks = [_popularity_check(metric, value, popularity[metric],
                              options.min_lift_over_popularity)]
  if blessed_baseline is None:
    checks.append((True, "No blessed baseline model yet: only the popularity check "
                   "applies."))
  else:
    checks.append(_blessed_check(metric, value, blessed_baseline[metric],
                                 options.max_drop_vs_blessed))
  if value <= 0:
    checks.append((False, f"Failed: the model retrieved none of the eval movies in "
                   f"its users' top {options.blessing_k} ({metric} = 0)."))
  return Decision(all(ok for ok, _ in checks), [reason for _, reason in checks])


def _popularity_check(metric: str, value: float, baseline: float,
                      min_lift: float) -> Tuple[bool, str]:
  needed = baseline * (1 + min_lift)
  ok = value >= needed
  return ok, (f"{'Passed' if ok else 'Failed'}: the model's {metric} ({value:.4f}) "
              f"is {'at least' if ok else 'below'} {1 + min_lift:.2f}x the popularity "
              f"baseline's ({baseline:.4f}, so at least {needed:.4f} is needed).")


def _blessed_check(metric: str, value: float, baseline: float,
                   max_drop: float) -> Tuple[bool, str]:
  needed = baseline * (1 - max_drop)
  ok = value >= needed
  return ok, (f"{'Passed' if ok else 'Failed'}: the model's {metric} ({value:.4f}) "
              f"is {'within' if ok else 'more than'} {max_drop:.1%} "
              f"{'of' if ok else 'below'} the last blessed model's ({baseline:.4f}, so at "
              f"least {needed:.4f} is needed).")


# Subclassing TFX's Evaluator executor, whose Do() is entirely replaced, is what makes the
# KFP v2 container entrypoint rewrite the blessing's current_model_id into the ML
# Metadata resource name (kubeflow_v2_run_executor checks issubclass on this class).
# Without it, on Vertex AI the latest-blessed-model Resolver never finds our blessings.
class Executor(tfx_evaluator_executor.Executor):
  """Evaluates a two-tower retrieval model on the whole catalog and blesses it or not."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Writes the evaluation (metrics.json, report.txt) and the blessing.

    metrics.json: {"model": {metric: value}, "baseline_popularity": {...},
    "baseline_blessed": {...} or null, "blessed": bool, "reasons": [str],
    "config": {...}}; metric names as in `metrics.evaluate_retrieval`, plus
    `total_eval_users` and `sampled_eval_users` (0: all eval users were evaluated).

    Args:
      input_dict: 'examples' (raw ratings, splits train and eval), 'model' (see
        artifacts.py) and optionally 'baseline_model' (the last blessed Model; an
        empty list on the first run).
      output_dict: 'evaluation' (ModelEvaluation) and 'blessing' (ModelBlessing).
      exec_properties: The fields of `configs.EvaluatorConfig`.

    Raises:
      ValueError: Malformed model outputs, empty splits, or a rated movie missing from
        the model's catalog.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    options = component_params.config_from_exec_properties(configs.EvaluatorConfig,
                                                           exec_properties)
    model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
    baseline = (input_dict.get(BASELINE_MODEL_KEY) or [None])[0]
    candidates = data.Candidates.load(model.uri)
    eval_data = data.read_eval_data(
        artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY]),
        artifacts.TRAIN_SPLIT, artifacts.EVAL_SPLIT,
        candidates.movie_ids, options.max_eval_users, options.eval_seed)
    logging.info("Evaluating %d eval users (%d pairs) on %d candidate movies.",
                 len(eval_data.user_ids), len(eval_data.eval_users),
                 len(candidates.movie_ids))

    model_metrics = _evaluate_model(model.uri, candidates, candidates.movie_ids,
                                    eval_data, options)
    popularity_metrics = _evaluate(_popularity_score_fn(eval_data.train_counts),
                                   eval_data, options)
    blessed_metrics = None
    if baseline is not None:
      blessed_metrics = _evaluate_model(baseline.uri, data.Candidates.load(baseline.uri),
                                        candidates.movie_ids, eval_data, options)
    decision = decide_blessing(model_metrics, popularity_metrics, blessed_metrics, options)

    results = {
        MODEL_SECTION: model_metrics,
        POPULARITY_SECTION: popularity_metrics,
        BLESSED_SECTION: blessed_metrics,
        BLESSED_FIELD: decision.blessed,
        REASONS_FIELD: decision.reasons,
        "config": _config(options, model, baseline),
    }
    evaluation = artifact_utils.get_single_instance(output_dict[EVALUATION_KEY])
    report = format_report(results)
    _write_evaluation(evaluation.uri, results, report)
    blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
    write_blessing(blessing, decision, model, baseline)
    logging.info("Retrieval evaluation:\n%s", report)


def _evaluate_model(model_uri: str, candidates: data.Candidates, catalog: Sequence[str],
                    eval_data: data.EvalData, options: configs.EvaluatorConfig) -> Dict[str, Any]:
  """Metrics of one model; its catalog is aligned to the evaluated `catalog`."""
  queries = data.query_embeddings(model_uri, eval_data.queries)
  embeddings, present = candidates.aligned_to(catalog)
  if queries.shape[1] != embeddings.shape[1]:
    raise ValueError(f"The model at {model_uri} has {queries.shape[1]}-d queries but "
                     f"{embeddings.shape[1]}-d candidate embeddings.")
  if not present.all():
    # A baseline trained before new movies appeared cannot retrieve them.
    logging.warning("%d of %d catalog movies are missing from the catalog of %s; they "
                    "are never retrieved by it.", (~present).sum(), len(present), model_uri)
  return _evaluate(_embedding_score_fn(queries, embeddings, present), eval_data, options)


def _embedding_score_fn(queries: np.ndarray, candidates: np.ndarray,
                        present: np.ndarray) -> metrics.ScoreFn:
  candidates_t = np.ascontiguousarray(candidates.T)
  absent = np.flatnonzero(~present)

  def score(rows: np.ndarray) -> np.ndarray:
    scores = queries[rows] @ candidates_t
    scores[:, absent] = -np.inf
    return scores

  return score


def _popularity_score_fn(train_counts: np.ndarray) -> metrics.ScoreFn:
  """Every user gets the same scores: the movie's train count (float32, exact here)."""
  scores = train_counts.astype(np.float32)
  return lambda rows: np.broadcast_to(scores, (len(rows), len(scores)))


def _evaluate(score_fn: metrics.ScoreFn, eval_data: data.EvalData,
              options: configs.EvaluatorConfig) -> Dict[str, Any]:
  values = metrics.evaluate_retrieval(
      score_fn, len(eval_data.train_counts), eval_data.eval_users, eval_data.eval_movies,
      eval_data.train_users, eval_data.train_movies, ks=options.evaluated_ks,
      batch_size=_SCORE_BATCH_SIZE)
  values["total_eval_users"] = eval_data.total_eval_users
  # 0: every eval user was evaluated; otherwise the size of the seeded sample.
  values["sampled_eval_users"] = len(eval_data.user_ids) if eval_data.sampled else 0
  return values


def _config(options: configs.EvaluatorConfig, model: types.Artifact,
            baseline: Optional[types.Artifact]) -> Dict[str, Any]:
  return {
      "ks": list(options.evaluated_ks),
      "gate_metric": options.gate_metric,
      "min_lift_over_popularity": options.min_lift_over_popularity,
      "max_drop_vs_blessed": options.max_drop_vs_blessed,
      "max_eval_users": options.max_eval_users,
      "seed": options.eval_seed,
      "query_time": _QUERY_TIME,
      "model_uri": model.uri,
      "baseline_model_uri": baseline.uri if baseline is not None else None,
  }


def format_report(results: Mapping[str, Any]) -> str:
  """A plain-text table: metric | model | popularity | blessed-baseline, then the verdict."""
  model, popularity = results[MODEL_SECTION], results[POPULARITY_SECTION]
  blessed = results[BLESSED_SECTION] or {}
  header = ("metric", "model", "popularity", "blessed-baseline")
  rows = [header] + [(name, _cell(model[name]), _cell(popularity.get(name)),
                      _cell(blessed.get(name))) for name in model]
  widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
  lines = [" | ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
  lines.insert(1, "-+-".join("-" * w for w in widths))
  lines.append("")
  lines.append(f"Blessed: {'yes' if results['blessed'] else 'no'}")
  lines += [f"  - {reason}" for reason in results["reasons"]]
  return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
  if value is None:
    return "-"
  if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
    return str(int(value))
  return f"{value:.4f}"


def _write_evaluation(uri: str, results: Mapping[str, Any], report: str) -> None:
  tf.io.gfile.makedirs(uri)
  with tf.io.gfile.GFile(os.path.join(uri, METRICS_FILE), "w") as f:
    f.write(json.dumps(results, indent=2, default=_json_default))
  with tf.io.gfile.GFile(os.path.join(uri, REPORT_FILE), "w") as f:
    f.write(report)


def _json_default(value: Any) -> Any:
  if isinstance(value, np.generic):
    return value.item()
  raise TypeError(f"Not JSON serializable: {value!r}")


def write_blessing(blessing: types.Artifact, decision: Decision, model: types.Artifact,
                   baseline: Optional[types.Artifact]) -> None:
  """BLESSED or NOT_BLESSED file and the custom properties the stock Evaluator sets.

  The stock Pusher pushes iff `blessed` == 1; LatestBlessedModelStrategy finds the model
  of a blessing with `blessed` == 1 by `current_model_id`.
  """
  tf.io.gfile.makedirs(blessing.uri)
  file_name = (evaluator_constants.BLESSED_FILE_NAME if decision.blessed
               else evaluator_constants.NOT_BLESSED_FILE_NAME)
  with tf.io.gfile.GFile(os.path.join(blessing.uri, file_name), "w") as f:
    f.write("\n".join(decision.reasons) + "\n")
  blessing.set_int_custom_property(
      evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
      evaluator_constants.BLESSED_VALUE if decision.blessed
      else evaluator_constants.NOT_BLESSED_VALUE)
  blessing.set_string_custom_property(
      evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
  blessing.set_int_custom_property(
      evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
  if baseline is not None:
    blessing.set_string_custom_property(
        evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline.uri)
    blessing.set_int_custom_property(
        evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline.id)
  blessing.set_string_custom_property(
      evaluator_constants.ARTIFACT_PROPERTY_BLESSING_MESSAGE_KEY, " ".join(decision.reasons))


def load_metrics(evaluation_uri: str) -> Dict[str, Any]:
  """Reads metrics.json of an `evaluation` artifact (layout: see `Executor.Do`)."""
  with tf.io.gfile.GFile(os.path.join(evaluation_uri, METRICS_FILE), "r") as f:
    return json.load(f)
