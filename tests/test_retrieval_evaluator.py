"""RetrievalEvaluator's executor on tiny raw ratings and fake Trainer outputs.

The problem and the fake models are in tests/evaluator_fixtures.py: 8 taste groups of
users, each rating one block of movies; the oracle model knows the groups, the random one
nothing.
"""
import base64
import html
import io
import json
import os
import re
import shutil

import numpy as np
import PIL.Image
import pytest
from tfx import types
from tfx.components.util import model_utils
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy
from tfx.types import standard_artifacts

from components import component_params
from components.retrieval_evaluator import blessing as blessing_lib
from components.retrieval_evaluator import component
from components.retrieval_evaluator import data
from components.retrieval_evaluator import executor
from closed_form import ease
from components.retrieval_evaluator import metric_names
from components.retrieval_evaluator import metrics
from components.retrieval_evaluator import results as results_lib
from contracts import artifacts
from contracts import configs
from tests.evaluator_fixtures import (CATALOG, EVAL_PER_USER, MOVIE_IDS, NUM_MOVIES, RATINGS,
                                      TRAIN_PER_USER, USER_IDS,
                                      ReportParser, assert_shown_as, catalog_column,
                                      oracle_embeddings, random_embeddings, run_evaluator,
                                      value_at, write_catalog, write_examples, write_model)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  root = tmp_path_factory.mktemp("retrieval_evaluator")
  return {
      "root": root,
      "examples": write_examples(str(root / "examples")),
      "oracle": write_model(str(root / "oracle"), *oracle_embeddings(), model_id=11),
      "random": write_model(str(root / "random"), *random_embeddings(), model_id=12),
      "broken": write_model(str(root / "broken"), *oracle_embeddings(broken_groups=(0,)),
                            model_id=13),
  }


def _expected_metrics(score_matrix: np.ndarray, ks=(10, 50, 100), ratings=RATINGS):
  """Metrics of a [user, catalog column] score matrix, computed without the executor."""
  train = [(u, catalog_column(m)) for u, m, _, s in ratings if s == "train"]
  eval_ = [(u, catalog_column(m)) for u, m, _, s in ratings if s == "eval"]
  return metrics.evaluate_retrieval(
      lambda rows: score_matrix[rows], score_matrix.shape[1],
      np.array([u for u, _ in eval_]), np.array([m for _, m in eval_]),
      np.array([u for u, _ in train]), np.array([m for _, m in train]), ks=ks)


def _ease_matrix(l2=200.0, ratings=RATINGS, leave_user_out=True):
  """EASE scores of every user and catalog column, fitted here from the train pairs; with
  `leave_user_out`, each user's row from a fit without that user (the Evaluator's)."""
  train = [(u, catalog_column(m)) for u, m, _, s in ratings if s == "train"]
  users, movies = np.array(train).T
  counts = np.bincount(movies, minlength=NUM_MOVIES)
  fit = lambda keep: ease.fit(users[keep], movies[keep], len(USER_IDS), counts, l2=l2,
                              max_items=20_000).score_fn(users, movies, len(USER_IDS))
  if not leave_user_out:
    return fit(np.ones(len(users), bool))(np.arange(len(USER_IDS)))
  return np.concatenate([fit(users != user)(np.array([user])) for user in range(len(USER_IDS))])


def _popularity_matrix(ratings=RATINGS):
  """Train counts of each catalog column, the same for every user."""
  counts = np.zeros([NUM_MOVIES])
  for _, movie, _, split in ratings:
    counts[catalog_column(movie)] += split == "train"
  return np.tile(counts, (len(USER_IDS), 1))


def test_oracle_model_is_blessed_with_expected_metrics(workdir):
  results, evaluation, blessing = run_evaluator(workdir, "oracle", workdir["oracle"])
  model = results["model"]
  # Each user's eval movies are the only unseen movies of its block, scored 1; the other
  # 30 movies of the block fill the rest of the top 100.
  assert model["hit_rate@100"] == 1.0 and model["recall@100"] == 1.0
  assert model["hit_rate@50"] == 1.0
  assert model["num_eval_users"] == 40 and model["num_eval_pairs"] == 200
  assert model["total_eval_users"] == 40 and model["sampled_eval_users"] == 0
  users, movies = oracle_embeddings()
  catalog_order = [MOVIE_IDS.index(m) for m in CATALOG]
  expected = _expected_metrics((users @ movies.T)[:, catalog_order])
  assert {k: model[k] for k in expected} == pytest.approx(expected)
  # Popularity, on the same pairs, computed independently from RATINGS.
  popularity = _popularity_matrix()
  expected_popularity = _expected_metrics(popularity)
  assert {k: results["baseline_popularity"][k] for k in expected_popularity} == (
      pytest.approx(expected_popularity))
  assert 0 < expected_popularity["hit_rate@100"] < 1 / 1.1
  # EASE, fitted on the same train pairs and scored on the same pairs and exclusions.
  expected_ease = _expected_metrics(_ease_matrix())
  # The refits' float32 weights break the fixture's exact ties differently from the
  # Evaluator's one-fit update: ndcg@10 moves by about 0.001.
  assert {k: results["baseline_ease"][k] for k in expected_ease} == (
      pytest.approx(expected_ease, abs=2e-3))
  # Left out of the fit, a user's train movies no longer crowd the all-items lists.
  in_sample = _expected_metrics(_ease_matrix(leave_user_out=False))
  assert expected_ease["top_k_accuracy@10"] > in_sample["top_k_accuracy@10"]
  assert results["ease"]["leave_user_out"] is True
  # EASE models the movies rated in train, all of them below ease_max_items.
  assert results["ease"]["num_items"] == len({m for _, m, _, s in RATINGS if s == "train"})
  assert not results["ease"]["truncated"]
  assert results["baseline_blessed"] is None
  assert results["blessed"] is True
  assert any(r.startswith("Passed") and "popularity" in r for r in results["reasons"])
  assert results["config"]["ks"] == [10, 50, 100]
  assert results["config"]["model_uri"] == workdir["oracle"].uri
  assert os.path.exists(os.path.join(blessing.uri, "BLESSED"))
  assert not os.path.exists(os.path.join(blessing.uri, "NOT_BLESSED"))
  assert blessing.get_int_custom_property("blessed") == 1
  assert blessing.get_int_custom_property("current_model_id") == 11
  assert model_utils.is_model_blessed(blessing)
  with open(os.path.join(evaluation.uri, results_lib.REPORT_FILE)) as f:
    report = f.read()
  assert report.splitlines()[0].split() == [
      "metric", "|", "model", "|", "popularity", "|", "EASE", "|", "blessed-baseline"]
  assert "hit_rate@100 " in report and "1.0000" in report and "Blessed: yes" in report


def test_model_that_learned_nothing_is_not_blessed(workdir):
  results, _, blessing = run_evaluator(workdir, "random", workdir["random"])
  model, popularity = results["model"], results["baseline_popularity"]
  assert model["hit_rate@100"] < popularity["hit_rate@100"] * 1.1
  users, movies = random_embeddings()
  catalog_order = [MOVIE_IDS.index(m) for m in CATALOG]
  expected = _expected_metrics((users @ movies.T)[:, catalog_order])
  assert model["hit_rate@100"] == pytest.approx(expected["hit_rate@100"])
  assert results["blessed"] is False
  assert any(r.startswith("Failed") and "popularity" in r for r in results["reasons"])
  assert os.path.exists(os.path.join(blessing.uri, "NOT_BLESSED"))
  assert not os.path.exists(os.path.join(blessing.uri, "BLESSED"))
  assert blessing.get_int_custom_property("blessed") == 0
  assert not model_utils.is_model_blessed(blessing)


def test_much_better_blessed_baseline_blocks_blessing(workdir):
  # Group 0's users point away from their block: 7 of 8 groups retrieved.
  alone, _, _ = run_evaluator(workdir, "broken_alone", workdir["broken"])
  assert alone["model"]["hit_rate@100"] == pytest.approx(7 / 8)
  assert alone["blessed"] is True  # Good enough against popularity alone.
  results, _, blessing = run_evaluator(workdir, "broken_vs_oracle", workdir["broken"],
                                       baseline=workdir["oracle"])
  assert results["baseline_blessed"]["hit_rate@100"] == 1.0
  assert results["model"] == alone["model"]
  assert results["blessed"] is False
  assert any(r.startswith("Failed") and "last blessed model" in r
             for r in results["reasons"])
  assert blessing.get_int_custom_property("blessed") == 0
  assert blessing.get_int_custom_property("baseline_model_id") == 11
  assert results["config"]["baseline_model_uri"] == workdir["oracle"].uri


def test_small_drop_vs_blessed_is_tolerated(workdir):
  results, _, _ = run_evaluator(workdir, "broken_tolerant", workdir["broken"],
                                baseline=workdir["oracle"],
                                max_drop_vs_blessed=0.2)
  assert results["blessed"] is True
  assert results["config"]["max_drop_vs_blessed"] == 0.2


def test_load_metrics_round_trips_metrics_json(workdir):
  results, evaluation, _ = run_evaluator(workdir, "round_trip", workdir["oracle"],
                                         ks="5,20")
  with open(os.path.join(evaluation.uri, results_lib.METRICS_FILE)) as f:
    assert json.load(f) == results
  assert set(results) == {"model", "baseline_popularity", "baseline_ease",
                          "baseline_blessed", "blessed", "reasons", "ease", "slices",
                          "curves", "popularity_histogram", "examples", "training_history",
                          "config"}
  # The gate's k=100 is always evaluated.
  assert results["config"]["ks"] == [5, 20, 100]
  assert list(results["model"])[:3] == ["hit_rate@5", "hit_rate@20", "hit_rate@100"]


def test_eval_users_are_sampled_deterministically(workdir):
  props = {"max_eval_users": 12, "eval_seed": 3}
  first, _, _ = run_evaluator(workdir, "sample_a", workdir["random"], **props)
  second, _, _ = run_evaluator(workdir, "sample_b", workdir["random"], **props)
  assert first["model"]["num_eval_users"] == 12
  assert first["model"]["num_eval_pairs"] == 12 * EVAL_PER_USER
  assert first["model"]["sampled_eval_users"] == 12
  assert first["model"]["total_eval_users"] == 40
  # Everything but EASE's measured fit time and memory is the same.
  for results in (first, second):
    del results["ease"]["fit_seconds"], results["ease"]["peak_rss_mib"]
  assert first == second


def test_query_time_is_each_users_median_eval_timestamp(workdir):
  eval_data = data.read_eval_data(workdir["examples"], "train", "eval", CATALOG,
                                  max_eval_users=0, seed=0)
  assert [u.decode() for u in eval_data.user_ids] == sorted(USER_IDS)
  for row, user_id in enumerate(eval_data.user_ids):
    user = USER_IDS.index(user_id.decode())
    times = sorted(t for u, _, t, s in RATINGS if u == user and s == "eval")
    assert eval_data.query_timestamps[row] == times[len(times) // 2]  # 5: the middle.
  # Train pairs come back in catalog columns.
  pairs = {(eval_data.user_ids[u].decode(), CATALOG[m])
           for u, m in zip(eval_data.train_users, eval_data.train_movies)}
  assert pairs == {(USER_IDS[u], MOVIE_IDS[m]) for u, m, _, s in RATINGS if s == "train"}


def test_movie_missing_from_catalog_is_named(workdir, tmp_path):
  missing = next(MOVIE_IDS[m] for _, m, _, s in RATINGS if s == "eval")
  model = write_model(str(tmp_path / "model"), *oracle_embeddings(),
                       catalog=[m for m in CATALOG if m != missing])
  with pytest.raises(ValueError, match=f"Movie '{missing}' of the eval split is not in"):
    run_evaluator(workdir, "missing", model)


def test_blessing_is_found_by_latest_blessed_model_strategy(workdir):
  _, _, blessed = run_evaluator(workdir, "strategy_oracle", workdir["oracle"])
  _, _, not_blessed = run_evaluator(workdir, "strategy_random", workdir["random"])
  strategy = latest_blessed_model_strategy.LatestBlessedModelStrategy()
  resolved = strategy._resolve(  # pylint: disable=protected-access
      {"model": [workdir["oracle"], workdir["random"]],
       "model_blessing": [blessed, not_blessed]}, "model", "model_blessing")
  # The random model is newer (larger id) but not blessed.
  assert [m.id for m in resolved["model"]] == [11]
  assert resolved["model_blessing"] == [blessed]


def test_component_takes_a_latest_blessed_model_resolver_as_baseline():
  # As the pipeline wires it (tfx.dsl.Resolver is this class).
  latest_blessed = resolver.Resolver(
      strategy_class=latest_blessed_model_strategy.LatestBlessedModelStrategy,
      model=types.Channel(type=standard_artifacts.Model),
      model_blessing=types.Channel(type=standard_artifacts.ModelBlessing),
  ).with_id("latest_blessed_model_resolver")
  evaluator = component.RetrievalEvaluator(
      examples=types.Channel(type=standard_artifacts.Examples),
      model=types.Channel(type=standard_artifacts.Model),
      baseline_model=latest_blessed.outputs["model"],
      config=configs.EvaluatorConfig(ks="20,5", max_eval_users=0))
  assert evaluator.outputs[executor.EVALUATION_KEY].type is standard_artifacts.ModelEvaluation
  assert evaluator.outputs[executor.BLESSING_KEY].type is standard_artifacts.ModelBlessing
  options = component_params.config_from_exec_properties(configs.EvaluatorConfig,
                                                         evaluator.exec_properties)
  assert options.evaluated_ks == (5, 20, 100)
  assert options.max_eval_users == 0 and options.max_drop_vs_blessed == 0.02
  with pytest.raises(ValueError, match="max_drop_vs_blessed"):
    component.RetrievalEvaluator(
        examples=types.Channel(type=standard_artifacts.Examples),
        model=types.Channel(type=standard_artifacts.Model),
        config=configs.EvaluatorConfig(max_drop_vs_blessed=1.5))


def test_kfp_v2_entrypoint_treats_it_as_an_evaluator():
  # TFX's KFP v2 container entrypoint rewrites a blessing's current_model_id into the ML
  # Metadata resource name, which Vertex AI's latest-blessed-model resolution matches,
  # only for subclasses of TFX's Evaluator executor.
  import inspect  # pylint: disable=g-import-not-at-top
  from tfx.components.evaluator import executor as tfx_evaluator  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor  # pylint: disable=g-import-not-at-top
  assert "issubclass(executor_cls, evaluator_executor.Executor)" in inspect.getsource(
      kubeflow_v2_run_executor)
  assert issubclass(executor.Executor, tfx_evaluator.Executor)
  assert executor.BLESSING_KEY == "blessing"  # The key the entrypoint looks up.


def test_blessing_against_ease_uses_its_own_lift_and_names_ease(workdir):
  # Group 0's users point away from their block: hit_rate@100 = 7/8. EASE cannot retrieve
  # eval movies nobody rated in train, so here it is a little below that.
  results, _, blessing = run_evaluator(workdir, "broken_vs_ease", workdir["broken"],
                                       bless_against="ease", min_lift_over_ease=0.1)
  model, ease_value = results["model"]["hit_rate@100"], results["baseline_ease"]["hit_rate@100"]
  assert model == pytest.approx(7 / 8)
  assert ease_value < model < ease_value * 1.1
  assert results["blessed"] is False
  assert results["reasons"][0].startswith("Failed") and "1.10x the EASE baseline's" in (
      results["reasons"][0])
  assert any(r.startswith("Not gated (bless_against=ease)") and "popularity baseline's" in r
             for r in results["reasons"])
  assert blessing.get_int_custom_property("blessed") == 0
  # The default lift over EASE, 0, only asks the model to match it.
  level, _, _ = run_evaluator(workdir, "broken_vs_ease_level", workdir["broken"],
                              bless_against="ease")
  assert level["blessed"] is True
  assert level["config"]["bless_against"] == "ease"
  assert level["reasons"][0].startswith("Passed") and "EASE" in level["reasons"][0]
  # Gating on popularity (the default), EASE is still reported, with the ratio.
  default, _, _ = run_evaluator(workdir, "broken_vs_popularity", workdir["broken"],
                                min_lift_over_ease=0.1)
  assert default["blessed"] is True
  assert any(r.startswith("Not gated (bless_against=popularity)")
             and f"{model / ease_value:.2f}x the EASE baseline's" in r
             for r in default["reasons"])


def test_gate_metric_is_configurable(workdir):
  results, _, _ = run_evaluator(workdir, "gate_recall", workdir["random"],
                                gate_metric="recall", blessing_k=50)
  assert results["config"]["gate_metric"] == "recall@50"
  assert results["config"]["ks"] == [10, 50, 100]
  assert "the model's recall@50" in results["reasons"][0]


def test_slices_and_curves_agree_with_the_overall_metrics(workdir):
  results, _, _ = run_evaluator(workdir, "slices", workdir["random"])
  sections = ("model", "baseline_popularity", "baseline_ease")
  definitions = results["slices"]["definitions"]
  buckets = definitions["user_activity"]["buckets"]
  # Every user has TRAIN_PER_USER train ratings: one count, so "few" holds everyone.
  assert definitions["user_activity"]["boundaries"] == [TRAIN_PER_USER, TRAIN_PER_USER]
  assert [b["num_users"] for b in buckets.values()] == [40, 0, 0]
  assert definitions["long_tail"]["num_head_movies"] + (
      definitions["long_tail"]["num_tail_movies"]) == NUM_MOVIES
  for section in sections:
    slices_ = results["slices"][section]
    overall = results[section]
    # The only non-empty bucket is everyone: its metrics are the overall ones.
    shared = [name for name in slices_["few_ratings"] if name in overall]
    assert len(shared) == len(metric_names.user_slice_names((10, 50, 100)))
    assert {k: slices_["few_ratings"][k] for k in shared} == pytest.approx(
        {k: overall[k] for k in shared})
    assert slices_["some_ratings"]["num_eval_users"] == 0
    assert slices_["some_ratings"]["hit_rate@10"] is None
    curves = results["curves"][section]
    for k in (10, 50, 100):
      assert curves["hit_rate"][k - 1] == pytest.approx(overall[f"hit_rate@{k}"])
      assert curves["recall"][k - 1] == pytest.approx(overall[f"recall@{k}"])
  assert results["curves"]["k"] == list(range(1, 101))
  # Popularity recommends the head only; the histogram's shares sum to 1.
  assert results["baseline_popularity"]["tail_share@10"] == 0.0
  histogram = results["popularity_histogram"]
  for key in ("catalog",) + sections:
    assert sum(histogram[key]) == pytest.approx(1.0)


def test_ease_max_items_cuts_the_catalog_and_the_report_says_so(workdir):
  results, evaluation, _ = run_evaluator(workdir, "ease_cut", workdir["random"],
                                         ease_max_items=100)
  assert results["ease"]["truncated"] is True and results["ease"]["num_items"] == 100
  with open(os.path.join(evaluation.uri, results_lib.REPORT_FILE)) as f:
    assert "covers the 100 most rated movies only (ease_max_items" in f.read()
  # EASE never recommends the movies it does not model: fewer than 100 are covered.
  assert results["baseline_ease"]["coverage@10"] <= 100 / NUM_MOVIES


def test_eval_users_without_train_ratings_get_popularitys_list_from_ease(workdir, tmp_path):
  # After a temporal cutoff most eval users are new. EASE, a model of the history, scores
  # every movie 0 for them (a list in catalog order); they get the popularity baseline's.
  cold = set(range(0, len(USER_IDS), 4))
  ratings = [r for r in RATINGS if not (r[0] in cold and r[3] == "train")]
  examples = write_examples(str(tmp_path / "examples"), ratings)
  results, evaluation, _ = run_evaluator({**workdir, "examples": examples}, "cold_users",
                                         workdir["oracle"])
  assert results["ease"][results_lib.EASE_USERS_WITHOUT_HISTORY] == len(cold)
  expected_scores = _ease_matrix(ratings=ratings)
  expected_scores[sorted(cold)] = _popularity_matrix(ratings)[sorted(cold)]
  expected = _expected_metrics(expected_scores, ratings=ratings)
  # abs: ties broken apart by the refits (test_oracle_model_is_blessed_with_expected_metrics).
  assert {k: results["baseline_ease"][k] for k in expected} == pytest.approx(expected,
                                                                             abs=2e-3)
  # Without the fallback the cold users' hits would be those of the catalog order.
  assert expected != pytest.approx(_expected_metrics(_ease_matrix(ratings=ratings),
                                                     ratings=ratings))
  with open(os.path.join(evaluation.uri, results_lib.REPORT_FILE)) as f:
    assert (f"The {len(cold)} eval users without train ratings get the popularity "
            "baseline's list from it.") in f.read()


def test_html_report_images_decode_and_every_number_matches_metrics_json(workdir, tmp_path):
  model_dir = tmp_path / "model_with_history"
  shutil.copytree(workdir["oracle"].uri, model_dir)
  history = {"mean_loss": [5.5, 4.25, 3.875], "val_mean_loss": [5.75, 5.0, 4.5],
             "examples_per_second": [30123.5, 35210.25, 36000.0],
             "ease_factor_weight": [0.5], "ease_factor_rank": [256.0],
             "ease_factor_weights": [0.0, 0.5, 2.0],
             "ease_factor_validation_hit_rates": [0.3696, 0.3774, 0.3755],
             "ease_factor_level_weights": [0.5],
             "ease_factor_session_weight": [0.25], "ease_factor_session_weights": [0.0, 0.25],
             "ease_factor_session_validation_hit_rates": [0.3701, 0.3774]}
  (model_dir / artifacts.TRAINING_HISTORY_FILE).write_text(json.dumps(history))
  model = standard_artifacts.Model()
  model.uri, model.id = str(model_dir), 21
  movies = write_catalog(str(tmp_path / "movies"))
  results, evaluation, _ = run_evaluator(workdir, "html", model, baseline=workdir["broken"],
                                         movies=movies, report_users=3)
  with open(results_lib.html_report_path(evaluation.uri), encoding="utf-8") as f:
    page = f.read()
  parser = ReportParser()
  parser.feed(page)
  assert parser.external == []
  # Curves, slices, popularity histogram and loss: each a PNG embedded in the page.
  assert len(parser.images) == 4
  for src in parser.images:
    assert src.startswith("data:image/png;base64,")
    with PIL.Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
      assert image.format == "PNG" and image.width > 300 and image.height > 200
      image.verify()
  keyed = [(attrs["data-key"], text) for attrs, text in parser.cells if "data-key" in attrs]
  for key, text in keyed:
    assert_shown_as(text, value_at(results, key), key)
  # Every number in a table cell is one of them.
  unkeyed = [text for attrs, text in parser.cells if "data-key" not in attrs]
  assert not [t for t in unkeyed if re.fullmatch(r"[-+]?[\d.,]+%?", t)]
  keys = {key for key, _ in keyed}
  assert {"model/hit_rate@100", "baseline_ease/hit_rate@100", "baseline_blessed/hit_rate@100",
          "slices/baseline_ease/many_ratings/recall@10", "ease/l2",
          "training_history/val_mean_loss/2", "examples/2/user_id"} <= keys
  assert len(keyed) > 150
  # Example users: titles from the catalog (escaped), each model's top 10.
  assert len(results["examples"]) == 3
  example = results["examples"][0]
  assert len(example["top"]["model"]) == 10 and len(example["top"]["baseline_ease"]) == 10
  assert example["last_rated"][0].startswith("Película")
  assert html.escape(example["last_rated"][0]) in page
  assert results["training_history"] == history
  assert ("EASE factor (rank 256): served at weight 0.5, the middle one of the weights whose "
          "validation hit rate is level with the best (0.5; the weights tried: 0.3696 at 0, "
          "0.3774 at 0.5, 0.3755 at 2); EASE fitted with session "
          "rows weighted 0.25, the best of the session weights tried (0.3701 at 0, 0.3774 at "
          "0.25).") in page


def test_html_report_says_when_the_training_history_is_missing(workdir):
  results, evaluation, _ = run_evaluator(workdir, "no_history", workdir["random"])
  assert results["training_history"] is None
  with open(results_lib.html_report_path(evaluation.uri), encoding="utf-8") as f:
    page = f.read()
  assert "Training history: not available" in page
  assert page.count("<img ") == 3
  # Without the catalog, the example users' movies are shown by id.
  assert results["examples"][0]["top"]["model"][0]["title"] in MOVIE_IDS


@pytest.mark.parametrize("change,message", [
    (dict(bless_against="random"), "bless_against"),
    (dict(gate_metric="ndcg"), "gate_metric"),
    (dict(ks="10,x"), "ks must be"),
    (dict(ks=""), "ks must list"),
    (dict(ease_l2=0.0), "ease_l2"),
    (dict(ease_max_items=0), "ease_max_items"),
    (dict(min_lift_over_ease=-1.0), "min_lift_over_ease"),
    (dict(max_drop_vs_blessed=1.5), "max_drop_vs_blessed"),
])
def test_bad_evaluator_config_is_rejected_at_construction(change, message):
  with pytest.raises(ValueError, match=message):
    component.RetrievalEvaluator(examples=types.Channel(type=standard_artifacts.Examples),
                                 model=types.Channel(type=standard_artifacts.Model),
                                 config=configs.EvaluatorConfig(**change))


def test_config_choices_match_the_evaluator_names():
  # configs.py cannot import the evaluator (it is a lower layer); the names must agree.
  for family in metric_names.GATE_FAMILIES:
    assert configs.EvaluatorConfig(gate_metric=family).gate_metric == family
  for baseline in blessing_lib.BASELINES:
    assert configs.EvaluatorConfig(bless_against=baseline).bless_against == baseline
  assert set(configs.GATE_METRICS) == set(metric_names.GATE_FAMILIES)
  assert set(configs.BLESSING_BASELINES) == set(blessing_lib.BASELINES)


def test_tfma_reads_the_metrics_per_slice_and_model(workdir):
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  results, evaluation, _ = run_evaluator(workdir, "tfma", workdir["broken"],
                                         baseline=workdir["oracle"])
  records = list(tfma.load_metrics(evaluation.uri))
  by_slice = {tuple((k.column, k.bytes_value.decode()) for k in r.slice_key.single_slice_keys):
              {(e.key.model_name, e.key.name): e.value.double_value.value
               for e in r.metric_keys_and_values} for r in records}
  assert set(by_slice) == {(), (("user_activity", "few_ratings"),),
                           (("user_activity", "some_ratings"),),
                           (("user_activity", "many_ratings"),),
                           (("movie_popularity", "long_tail"),)}
  overall = by_slice[()]
  assert overall[("candidate", "hit_rate@100")] == results["model"]["hit_rate@100"]
  assert overall[("ease_baseline", "ndcg@10")] == results["baseline_ease"]["ndcg@10"]
  assert overall[("baseline", "recall@50")] == results["baseline_blessed"]["recall@50"]
  tail = by_slice[(("movie_popularity", "long_tail"),)]
  assert tail[("popularity_baseline", "hit_rate@10")] == (
      results["slices"]["baseline_popularity"]["long_tail"]["hit_rate@10"])
  # Empty buckets have no rates, only their counts.
  some = by_slice[(("user_activity", "some_ratings"),)]
  assert some == {(model, "num_eval_users"): 0.0 for model in (
      "candidate", "popularity_baseline", "ease_baseline", "baseline")} | {
          (model, "num_eval_pairs"): 0.0 for model in (
              "candidate", "popularity_baseline", "ease_baseline", "baseline")}
