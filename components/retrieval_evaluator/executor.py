"""Executor of RetrievalEvaluator: orchestration only.

TFMA's Evaluator scores given (query, label) examples; a retrieval model must instead rank
the whole catalog for each user. This executor reads the inputs (data.py), ranks the
catalog for every eval user with the model and each baseline on the same users, pairs and
exclusions (metrics.py), and hands the rankings to the parts that summarize them:
  * baselines: popularity (scoring.py), EASE fitted on train (closed_form/ease.py), and
    the last blessed model (optional `baseline_model` input);
  * slices and popularity bias (slices.py), curves (metrics.py), example users (examples.py);
  * when the model has a ranking stage, its predicted ratings on every eval rating against
    the global and per-movie mean train ratings (ranking.py);
  * the blessing policy (blessing.py), the reports (report.py) and the output files
    (results.py; tfma_metrics.py for TFMA's readers). The blessing is written the way the stock Evaluator writes it, so the
    stock Pusher and LatestBlessedModelStrategy accept it.
"""
import dataclasses
from typing import Any, Dict, List, Mapping, Optional

from absl import logging
import numpy as np
from tfx import types
from tfx.components.evaluator import executor as tfx_evaluator_executor
from tfx.types import artifact_utils

from components import component_params
from components.retrieval_evaluator import blessing
from components.retrieval_evaluator import data
from closed_form import ease
from components.retrieval_evaluator import examples
from components.retrieval_evaluator import metric_names as names
from components.retrieval_evaluator import metrics
from components.retrieval_evaluator import ranking
from components.retrieval_evaluator import report
from components.retrieval_evaluator import results as results_lib
from components.retrieval_evaluator import scoring
from components.retrieval_evaluator import slices
from components.retrieval_evaluator import tfma_metrics
from contracts import artifacts
from contracts import configs
from contracts import features
from ranking_core import rankings as rankings_lib
from ranking_core import scores as scores_lib

# Artifact keys (shared with component.py); the execution properties are the fields of
# `configs.EvaluatorConfig`.
EXAMPLES_KEY = "examples"
MODEL_KEY = "model"
BASELINE_MODEL_KEY = "baseline_model"
MOVIES_KEY = artifacts.MOVIES_KEY
EVALUATION_KEY = "evaluation"
BLESSING_KEY = "blessing"

# Users scored at once: ~6 float arrays of [batch, catalog] (~0.25 GB each at 62k movies).
_SCORE_BATCH_SIZE = 512
_QUERY_TIME = "median timestamp of the user's eval ratings"


# Subclassing TFX's Evaluator executor, whose Do() is entirely replaced, is what makes the
# KFP v2 container entrypoint rewrite the blessing's current_model_id into the ML
# Metadata resource name (kubeflow_v2_run_executor checks issubclass on this class).
# Without it, on Vertex AI the latest-blessed-model Resolver never finds our blessings.
class Executor(tfx_evaluator_executor.Executor):
  """Evaluates a two-tower retrieval model on the whole catalog and blesses it or not."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Writes the evaluation (metrics.json, report.txt, report.html) and the blessing.

    Args:
      input_dict: 'examples' (raw ratings, splits train and eval), 'model' (see
        contracts/artifacts.py), optionally 'baseline_model' (the last blessed Model; an
        empty list on the first run) and 'movies' (the catalog, for titles).
      output_dict: 'evaluation' (ModelEvaluation) and 'blessing' (ModelBlessing).
      exec_properties: The fields of `configs.EvaluatorConfig`.

    Raises:
      ValueError: Malformed model outputs, empty splits, or a rated movie missing from
        the model's catalog.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    config = component_params.config_from_exec_properties(configs.EvaluatorConfig,
                                                          exec_properties)
    model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
    baseline = (input_dict.get(BASELINE_MODEL_KEY) or [None])[0]
    movies = (input_dict.get(MOVIES_KEY) or [None])[0]
    examples_artifact = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
    catalog = data.Candidates.load(model.uri).movie_ids
    eval_data = data.read_eval_data(examples_artifact, artifacts.TRAIN_SPLIT,
                                    artifacts.EVAL_SPLIT, catalog, config.max_eval_users,
                                    config.eval_seed)
    logging.info("Evaluating %d eval users (%d pairs) on %d candidate movies.",
                 len(eval_data.user_ids), len(eval_data.eval_users), len(catalog))

    # Built once: the ranking stage re-orders this model's retrieval too.
    model_scores = model_score_fn(model.uri, catalog, eval_data)
    rankings, ease_info = _rank_every_model(model_scores, baseline, catalog, eval_data,
                                            config)
    titles = (data.read_titles(movies, artifacts.CATALOG_SPLIT, catalog)
              if movies is not None else list(catalog))
    results = _evaluation_results(rankings, eval_data, config, ease_info, titles)
    results[results_lib.HISTORY_FIELD] = data.read_training_history(model.uri)
    results[results_lib.CONFIG_FIELD] = _config(config, model, baseline)
    if ranking.has_ranking_model(model.uri):
      results[results_lib.RANKING_FIELD] = _evaluate_ranking_stage(
          model, model_scores, examples_artifact, movies, catalog, eval_data, config)
    decision = blessing.decide_blessing(
        results[results_lib.MODEL_SECTION],
        {blessing.POPULARITY: results[results_lib.POPULARITY_SECTION],
         blessing.EASE: results[results_lib.EASE_SECTION]},
        results[results_lib.BLESSED_SECTION], config, catalog_size=len(catalog),
        ranking=results.get(results_lib.RANKING_FIELD))
    results[results_lib.BLESSED_FIELD] = decision.blessed
    results[results_lib.REASONS_FIELD] = decision.reasons

    text_report = report.text(results)
    evaluation = artifact_utils.get_single_instance(output_dict[EVALUATION_KEY])
    paths = results_lib.write(evaluation.uri, results, text_report, report.html(results))
    tfma_metrics.write(evaluation.uri, results)
    results_lib.write_blessing(artifact_utils.get_single_instance(output_dict[BLESSING_KEY]),
                               decision, model, baseline)
    logging.info("Retrieval evaluation:\n%s", text_report)
    logging.info("Evaluation report: %s", paths[results_lib.HTML_REPORT_FILE])


def _rank_every_model(model_scores: scores_lib.ScoreFn, baseline: Optional[types.Artifact],
                      catalog: List[str], eval_data: data.EvalData,
                      config: configs.EvaluatorConfig):
  """{section: Rankings} of the model (`model_scores`) and every baseline, and how EASE
  was fitted."""
  fitted = ease.fit(eval_data.all_train_users, eval_data.all_train_movies,
                    eval_data.num_train_users, eval_data.train_counts, config.ease_l2,
                    config.ease_max_items)
  popularity = scoring.popularity_score_fn(eval_data.train_counts)
  # Eval users without train ratings (most of them after a temporal cutoff) get
  # popularity's list from EASE, the usual fallback of a model of the history.
  has_history = np.bincount(eval_data.train_users, minlength=len(eval_data.user_ids)) > 0
  score_fns = {
      results_lib.MODEL_SECTION: model_scores,
      results_lib.POPULARITY_SECTION: popularity,
      # The eval users' train pairs are their rows of the fit: each user's own train
      # movies are scored as if the user had been left out of it (closed_form/ease.py),
      # as the Trainer's EASE factor scores them. The order of the other movies, and so
      # every hit_rate, is the in-sample one; top_k_accuracy does not see the train
      # movies lifted by their own row.
      results_lib.EASE_SECTION: scoring.with_fallback(
          fitted.score_fn(eval_data.train_users, eval_data.train_movies,
                          len(eval_data.user_ids), leave_user_out=True),
          popularity, has_history),
  }
  if baseline is not None:
    score_fns[results_lib.BLESSED_SECTION] = model_score_fn(baseline.uri, catalog, eval_data)
  depth = max(max(config.evaluated_ks), names.CURVE_MAX_K)
  rankings = {section: metrics.rank(score_fn, len(catalog), eval_data.eval_users,
                                    eval_data.eval_movies, eval_data.train_users,
                                    eval_data.train_movies, depth=depth,
                                    batch_size=_SCORE_BATCH_SIZE)
              for section, score_fn in score_fns.items()}
  return rankings, {**fitted.info, "leave_user_out": True,
                    results_lib.EASE_USERS_WITHOUT_HISTORY: int((~has_history).sum())}


def _evaluate_ranking_stage(model: types.Artifact, model_scores: scores_lib.ScoreFn,
                            examples_artifact: types.Artifact,
                            movies: Optional[types.Artifact], catalog: List[str],
                            eval_data: data.EvalData,
                            config: configs.EvaluatorConfig) -> Dict[str, Any]:
  """metrics.json's ranking section: rating errors, and the re-ordered lists' retrieval
  metrics when the catalog's features (the `movies` input) are there to rank with."""
  section = ranking.evaluate(model.uri, examples_artifact, artifacts.TRAIN_SPLIT,
                             artifacts.EVAL_SPLIT, catalog)
  if movies is None:
    logging.warning("No movie catalog input: the ranking stage's re-ordered lists are not "
                    "evaluated (the ranking model needs each movie's features).")
    section[names.RANKED_ORDER] = None
    return section
  catalog_features, present = data.read_catalog_features(
      movies, artifacts.CATALOG_SPLIT, catalog, features.CANDIDATE_FEATURES)
  if not present.all():
    raise ValueError(f"{(~present).sum()} of the model's {len(catalog)} catalog movies are "
                     f"missing from the movie catalog {movies.uri}, e.g. "
                     f"{catalog[int(np.flatnonzero(~present)[0])]!r}.")
  section[names.RANKED_ORDER] = ranking.ranked_order(
      model.uri, model_scores, eval_data, catalog_features,
      config.evaluated_ks, _SCORE_BATCH_SIZE)
  return section


def model_score_fn(model_uri: str, catalog: List[str],
                   eval_data: data.EvalData) -> scores_lib.ScoreFn:
  """A two-tower model's scores; its catalog is aligned to the evaluated `catalog`.

  Public for benchmarks/ease_headroom.py, which ranks the same users with it.
  """
  queries = data.query_embeddings(model_uri, eval_data.queries)
  embeddings, present = data.Candidates.load(model_uri).aligned_to(catalog)
  if queries.shape[-1] != embeddings.shape[1]:
    raise ValueError(f"The model at {model_uri} has {queries.shape[-1]}-d queries but "
                     f"{embeddings.shape[1]}-d candidate embeddings.")
  if not present.all():
    # A baseline trained before new movies appeared cannot retrieve them.
    logging.warning("%d of %d catalog movies are missing from the catalog of %s; they "
                    "are never retrieved by it.", (~present).sum(), len(present), model_uri)
  return scoring.embedding_score_fn(queries, embeddings, present)


def _evaluation_results(rankings: Mapping[str, rankings_lib.Rankings], eval_data: data.EvalData,
                       config: configs.EvaluatorConfig, ease_info: Mapping[str, Any],
                       titles: List[str]) -> Dict[str, Any]:
  """Everything metrics.json holds except the verdict, the history and the config."""
  ks = config.evaluated_ks
  counts = eval_data.train_counts
  activity = slices.user_activity(
      np.bincount(eval_data.train_users, minlength=len(eval_data.user_ids)))
  tail = slices.long_tail(counts)
  results: Dict[str, Any] = {section: None for section in results_lib.SECTIONS}
  slice_results: Dict[str, Any] = {results_lib.SLICE_DEFINITIONS: {
      "user_activity": activity.describe(), "long_tail": tail.describe()}}
  curves: Dict[str, Any] = {results_lib.CURVE_K: list(range(1, names.CURVE_MAX_K + 1))}
  for section, ranked in rankings.items():
    results[section] = {
        **metrics.summarize(ranked, ks),
        **slices.popularity_bias(ranked, counts, tail.is_tail),
        names.TOTAL_EVAL_USERS: eval_data.total_eval_users,
        names.SAMPLED_EVAL_USERS: len(eval_data.user_ids) if eval_data.sampled else 0,
    }
    slice_results[section] = slices.slice_metrics(ranked, ks, activity, tail, counts)
    curves[section] = metrics.curves(ranked)
  results[results_lib.EASE_FIELD] = dict(ease_info)
  results[results_lib.SLICES_FIELD] = slice_results
  results[results_lib.CURVES_FIELD] = curves
  results[results_lib.HISTOGRAM_FIELD] = slices.popularity_histogram(
      {section: ranked.top_movies for section, ranked in rankings.items()}, counts)
  results[results_lib.EXAMPLES_FIELD] = examples.example_users(
      eval_data.user_ids, eval_data.train_users, eval_data.train_movies,
      eval_data.train_timestamps, titles,
      {s: rankings[s] for s in (results_lib.MODEL_SECTION, results_lib.EASE_SECTION)},
      config.report_users, config.eval_seed)
  _log_slices(activity, tail)
  return results


def _log_slices(activity: slices.UserActivity, tail: slices.LongTail) -> None:
  low, high = activity.boundaries
  logging.info("User-activity slices (train ratings per eval user): few <= %d < some <= "
               "%d < many. Long tail: movies with < %d train ratings (%d movies).", low,
               high, tail.min_head_ratings, int(tail.is_tail.sum()))


def _config(config: configs.EvaluatorConfig, model: types.Artifact,
            baseline: Optional[types.Artifact]) -> Dict[str, Any]:
  """metrics.json's config: the EvaluatorConfig fields, with `ks` as the evaluated list
  and `gate_metric` as the full metric name; the query time and the model URIs."""
  return {
      **dataclasses.asdict(config),
      "ks": list(config.evaluated_ks),
      "gate_metric": blessing.gate_metric(config),
      "query_time": _QUERY_TIME,
      "model_uri": model.uri,
      "baseline_model_uri": baseline.uri if baseline is not None else None,
  }

