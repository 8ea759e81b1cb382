"""The Evaluator's outputs: the `evaluation` files, the blessing, and the public reader.

Files at the artifact's root:
  metrics.json   Everything the Evaluator measured and decided (layout below).
  report.txt     The plain-text report (also logged).
  report.html    The self-contained HTML report: tables and embedded PNG plots.
  metrics-*.tfrecord  The same numbers as TFMA MetricsForSlice records (tfma_metrics.py),
                 for `tfma.load_metrics`.

metrics.json, one JSON object:
  model, baseline_popularity, baseline_ease
                      {metric: value} of the model and each baseline, on the same users,
                      pairs and exclusions (names: metric_names.section_names).
  baseline_blessed    The same for the last blessed model, or null.
  blessed, reasons    The verdict and one line per check (blessing.decide_blessing).
  ease                How EASE was fitted: l2, num_items, num_movies, rated_movies,
                      max_items, truncated, fit_seconds, working_mib, peak_rss_mib; and
                      users_without_history, the eval users without train ratings, to
                      whom EASE gives popularity's list.
  slices              {"definitions": {"user_activity": ..., "long_tail": ...},
                       section: {slice: {metric: value}}} (see slices.py).
  curves              {"k": [1..100], section: {"hit_rate": [...], "recall": [...]}}.
  popularity_histogram  {"bin_edges": [...], "catalog": [...], section: [...]}.
  examples            A few seeded users: id, last rated train movies, and each model's
                      top 10 (title, hit) (examples.py).
  training_history    The Trainer's per-epoch history (mean_loss, val_mean_loss,
                      examples_per_second), or null when the model has none.
  ranking             Only when the model has a ranking stage (ranking.py): {"rmse",
                      "mae", "count", "baselines": {"global_mean": {"rmse", "mae"},
                      "movie_mean": {"rmse", "mae"}}}, on every eval rating.
  config              The evaluation's settings and the model URIs.
Other code (the run summary, notebooks) reads it with `load`, not by path.

The `blessing` artifact is written as the stock Evaluator writes it (`write_blessing`).
"""
import json
import os
from typing import Any, Dict, Mapping, Optional

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.components.evaluator import constants as evaluator_constants

from contracts import artifacts

METRICS_FILE = artifacts.METRICS_FILE
REPORT_FILE = artifacts.REPORT_FILE
HTML_REPORT_FILE = "report.html"

# Sections with one {metric: value} each, in report order.
MODEL_SECTION = "model"
POPULARITY_SECTION = "baseline_popularity"
EASE_SECTION = "baseline_ease"
BLESSED_SECTION = "baseline_blessed"
SECTIONS = (MODEL_SECTION, POPULARITY_SECTION, EASE_SECTION, BLESSED_SECTION)
SECTION_LABELS = {MODEL_SECTION: "model", POPULARITY_SECTION: "popularity",
                  EASE_SECTION: "EASE", BLESSED_SECTION: "last blessed"}
# Other top-level fields.
BLESSED_FIELD = "blessed"
REASONS_FIELD = "reasons"
EASE_FIELD = "ease"
EASE_USERS_WITHOUT_HISTORY = "users_without_history"  # A key of EASE_FIELD.
SLICES_FIELD = "slices"
SLICE_DEFINITIONS = "definitions"
CURVES_FIELD = "curves"
CURVE_K = "k"
HISTOGRAM_FIELD = "popularity_histogram"
EXAMPLES_FIELD = "examples"
HISTORY_FIELD = "training_history"
RANKING_FIELD = "ranking"  # Absent without a ranking model.
CONFIG_FIELD = "config"


def present_sections(results: Mapping[str, Any]):
  """The sections with metrics in `results` (the blessed baseline only when there was one)."""
  return tuple(s for s in SECTIONS if results.get(s) is not None)


def write(evaluation_uri: str, results: Mapping[str, Any], text_report: str,
          html_report: str) -> Dict[str, str]:
  """Writes the three files; returns {file name: path}."""
  tf.io.gfile.makedirs(evaluation_uri)
  contents = {METRICS_FILE: json.dumps(results, indent=2, default=_json_default),
              REPORT_FILE: text_report, HTML_REPORT_FILE: html_report}
  paths = {}
  for name, content in contents.items():
    paths[name] = os.path.join(evaluation_uri, name)
    with tf.io.gfile.GFile(paths[name], "w") as f:
      f.write(content)
  return paths


def load(evaluation_uri: str) -> Dict[str, Any]:
  """metrics.json of an `evaluation` artifact, as a dict (layout: this module's docstring)."""
  path = os.path.join(evaluation_uri, METRICS_FILE)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"No {METRICS_FILE} in {evaluation_uri}; is it a "
                            "RetrievalEvaluator's evaluation artifact?")
  with tf.io.gfile.GFile(path, "r") as f:
    return json.load(f)


def html_report_path(evaluation_uri: str) -> str:
  """Where the HTML report of an `evaluation` artifact is."""
  return os.path.join(evaluation_uri, HTML_REPORT_FILE)


def write_blessing(blessing_artifact: types.Artifact, decision, model: types.Artifact,
                   baseline: Optional[types.Artifact]) -> None:
  """BLESSED or NOT_BLESSED file and the custom properties the stock Evaluator sets.

  The stock Pusher pushes iff `blessed` == 1; LatestBlessedModelStrategy finds the model
  of a blessing with `blessed` == 1 by `current_model_id`.

  Args:
    blessing_artifact: The ModelBlessing output.
    decision: A `blessing.Decision` (verdict and reasons).
    model: The evaluated Model.
    baseline: The last blessed Model, or None.
  """
  tf.io.gfile.makedirs(blessing_artifact.uri)
  file_name = (evaluator_constants.BLESSED_FILE_NAME if decision.blessed
               else evaluator_constants.NOT_BLESSED_FILE_NAME)
  with tf.io.gfile.GFile(os.path.join(blessing_artifact.uri, file_name), "w") as f:
    f.write("\n".join(decision.reasons) + "\n")
  blessing_artifact.set_int_custom_property(
      evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
      evaluator_constants.BLESSED_VALUE if decision.blessed
      else evaluator_constants.NOT_BLESSED_VALUE)
  blessing_artifact.set_string_custom_property(
      evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
  blessing_artifact.set_int_custom_property(
      evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
  if baseline is not None:
    blessing_artifact.set_string_custom_property(
        evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline.uri)
    blessing_artifact.set_int_custom_property(
        evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline.id)
  blessing_artifact.set_string_custom_property(
      evaluator_constants.ARTIFACT_PROPERTY_BLESSING_MESSAGE_KEY, " ".join(decision.reasons))


def _json_default(value: Any) -> Any:
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  raise TypeError(f"Not JSON serializable: {value!r}")
