"""metrics.json's numbers as TFMA MetricsForSlice records, so TFMA tools can read them.

`tfma.load_metrics(evaluation_uri)` (and `tfma.load_eval_result`, which finds no
eval_config and no plots) reads the file this writes: one record per slice (overall, each
user-activity bucket, the long tail), one value per (metric, model). Models are told apart
by MetricKey.model_name, as TFMA does for a candidate and its baselines. With a ranking
stage the overall record also holds its rating errors (rmse, mae: the candidate's and the
rating baselines') and the retrieval metrics of serving_ranked's order (RANKED_MODEL_NAME).
"""
import os
from typing import Any, Dict, List, Mapping, Tuple

import tensorflow as tf
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from components.retrieval_evaluator import metric_names as names
from components.retrieval_evaluator import results as results_lib
from components.retrieval_evaluator import slices

# tfma.load_metrics reads `<dir>/metrics*.tfrecord`.
METRICS_FILE = "metrics-00000-of-00001.tfrecord"
MODEL_NAMES = {results_lib.MODEL_SECTION: "candidate",
               results_lib.POPULARITY_SECTION: "popularity_baseline",
               results_lib.EASE_SECTION: "ease_baseline",
               results_lib.BLESSED_SECTION: "baseline"}
# The ranking stage's models: the order serving_ranked returns, and the rating baselines.
RANKED_MODEL_NAME = "candidate_ranked"
RATING_BASELINE_NAMES = {names.GLOBAL_MEAN: "global_mean_baseline",
                         names.MOVIE_MEAN: "movie_mean_baseline"}
# Slice columns: which users or which eval pairs a record covers.
USER_ACTIVITY_COLUMN = "user_activity"
MOVIE_POPULARITY_COLUMN = "movie_popularity"


def metrics_for_slices(results: Mapping[str, Any]) -> List[metrics_for_slice_pb2.MetricsForSlice]:
  """One record for the overall slice, then one per slice of metrics.json."""
  slice_values: Dict[Tuple[Tuple[str, str], ...], Dict[str, Mapping[str, Any]]] = {}
  for section in results_lib.present_sections(results):
    slice_values.setdefault((), {})[MODEL_NAMES[section]] = results[section]
    for name, values in results[results_lib.SLICES_FIELD][section].items():
      column = (MOVIE_POPULARITY_COLUMN if name == slices.LONG_TAIL_SLICE
                else USER_ACTIVITY_COLUMN)
      slice_values.setdefault(((column, name),), {})[MODEL_NAMES[section]] = values
  ranking = results.get(results_lib.RANKING_FIELD)
  if ranking:
    slice_values[()].update(_ranking_values(ranking, slice_values[()]))
  return [_record(key, by_model) for key, by_model in slice_values.items()]


def _ranking_values(ranking: Mapping[str, Any], overall: Mapping[str, Mapping[str, Any]]
                    ) -> Dict[str, Mapping[str, Any]]:
  """{model name: values} the ranking section adds to the overall record."""
  errors = (names.RMSE, names.MAE)
  candidate = MODEL_NAMES[results_lib.MODEL_SECTION]
  values = {candidate: {**overall[candidate], **{e: ranking[e] for e in errors}}}
  for baseline, model_name in RATING_BASELINE_NAMES.items():
    values[model_name] = {e: ranking[names.RATING_BASELINES][baseline][e] for e in errors}
  ranked = ranking.get(names.RANKED_ORDER)
  if ranked:
    values[RANKED_MODEL_NAME] = {name: value for name, value in ranked.items()
                                 if name not in names.RANKED_ORDER_SETTINGS}
  return values


def write(evaluation_uri: str, results: Mapping[str, Any]) -> str:
  """Writes the records as a TFRecord file in the evaluation artifact; returns its path."""
  path = os.path.join(evaluation_uri, METRICS_FILE)
  with tf.io.TFRecordWriter(path) as writer:
    for record in metrics_for_slices(results):
      writer.write(record.SerializeToString())
  return path


def _record(slice_key: Tuple[Tuple[str, str], ...],
            by_model: Mapping[str, Mapping[str, Any]]) -> metrics_for_slice_pb2.MetricsForSlice:
  record = metrics_for_slice_pb2.MetricsForSlice()
  for column, value in slice_key:
    record.slice_key.single_slice_keys.add(column=column, bytes_value=value.encode())
  for model_name, values in by_model.items():
    for name, value in values.items():
      # Only numbers: an empty slice's rates are None, and TFMA has no null value.
      if isinstance(value, (int, float)) and not isinstance(value, bool):
        entry = record.metric_keys_and_values.add()
        entry.key.name = name
        entry.key.model_name = model_name
        entry.value.double_value.value = float(value)
  return record
