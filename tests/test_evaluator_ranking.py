"""The ranking stage's evaluation: errors against hand-computed numbers, the blessing gate,
the reports, and a malformed ranking model. The ranking models are small tf.Modules that
honour the contract (contracts/artifacts.py) and predict a fixed function of the inputs.
"""
import math
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.retrieval_evaluator import blessing
from components.retrieval_evaluator import ranking
from components.retrieval_evaluator import results as results_lib
from contracts import artifacts
from contracts import configs
from contracts import features
from contracts import serving
from tests import evaluator_fixtures as fixtures
from trainer_module import ranking as ranking_stage

# A hand-made problem. Train: movie 10 rated 5 and 4, movie 20 rated 2, movie 30 rated 1,
# so the global mean is 12 / 4 = 3. Eval rows: (user, movie, timestamp, genres, rating).
CATALOG = ["10", "20", "30", "40"]
TRAIN = [("1", "10", 0, ("Drama",), 5.0), ("2", "10", 0, ("Drama",), 4.0),
         ("1", "20", 0, ("Drama",), 2.0), ("2", "30", 0, ("Drama",), 1.0)]
EVAL = [("1", "10", 1, ("Drama", "Comedy"), 4.0),
        ("2", "20", 0, ("Drama",), 3.0),
        ("3", "40", 0, ("Horror", "Comedy", "Drama"), 1.0)]  # 40: no train rating.


def _example(user_id: str, movie_id: str, timestamp: int, genres, rating: float) -> bytes:
  def strings(*values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))

  feature = {
      features.USER_ID: strings(user_id),
      features.MOVIE_ID: strings(movie_id),
      features.MOVIE_TITLE: strings(f"Movie {movie_id} (1999)"),
      features.MOVIE_GENRES: strings(*genres),
      features.TIMESTAMP: tf.train.Feature(int64_list=tf.train.Int64List(value=[timestamp])),
      features.USER_RATING: tf.train.Feature(float_list=tf.train.FloatList(value=[rating])),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_examples(uri: str, train, eval_) -> standard_artifacts.Examples:
  artifact = standard_artifacts.Examples()
  artifact.uri = uri
  artifact.split_names = artifact_utils.encode_split_names(["train", "eval"])
  for split, rows in (("train", train), ("eval", eval_)):
    split_dir = artifact_utils.get_split_uri([artifact], split)
    os.makedirs(split_dir)
    with tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000.gz"),
                              options="GZIP") as writer:
      for row in rows:
        writer.write(_example(*row))
  return artifact


class _RankingModel(tf.Module):
  """The ranking signature of the contract around `predict(inputs) -> ratings`."""

  def __init__(self, predict, output=serving.PREDICTED_RATING_OUTPUT):
    super().__init__()
    self._predict, self._output = predict, output

  @tf.function(input_signature=features.serving_specs(features.RANKING_FEATURES))
  def serve(self, user_id, timestamp, movie_id, movie_title, movie_genres):
    inputs = dict(zip(features.RANKING_FEATURES,
                      (user_id, timestamp, movie_id, movie_title, movie_genres)))
    return {self._output: self._predict(inputs)}


def _write_ranking_model(model_uri: str, predict, **kwargs) -> str:
  module = _RankingModel(predict, **kwargs)
  path = artifacts.ranking_model_path(model_uri)
  tf.saved_model.save(module, path, signatures={serving.RANKING_SIGNATURE: module.serve})
  return path


def _genres_plus_time(inputs):
  """Non-empty genres plus the timestamp: 3, 1 and 3 on EVAL (wrong if padding is not "")."""
  genres = tf.reduce_sum(tf.cast(inputs[features.MOVIE_GENRES] != "", tf.float32), axis=1)
  return genres + tf.cast(inputs[features.TIMESTAMP], tf.float32)


def _evaluate(tmp_path, predict=_genres_plus_time, **kwargs):
  examples = _write_examples(str(tmp_path / "examples"), TRAIN, EVAL)
  model_uri = str(tmp_path / "model")
  _write_ranking_model(model_uri, predict, **kwargs)
  assert ranking.has_ranking_model(model_uri)
  return ranking.evaluate(model_uri, examples, "train", "eval", CATALOG)


def test_errors_of_the_model_and_baselines_match_hand_computation(tmp_path, monkeypatch):
  # Batches of 2 and 1: the genres of the first batch are padded to 2, of the second to 3.
  monkeypatch.setattr(ranking, "_PREDICT_BATCH_SIZE", 2)
  section = _evaluate(tmp_path)
  # Model: 3, 1, 3 against 4, 3, 1 -> errors -1, -2, +2.
  # Global mean 3 -> errors -1, 0, +2.
  # Movie means shrunk by 10 pseudo-ratings at 3: movie 10 (9 + 30) / 12 = 3.25, movie 20
  # (2 + 30) / 11 = 32/11, movie 40 unrated: 3 -> errors -0.75, -1/11, +2.
  assert section == {
      "rmse": pytest.approx(math.sqrt((1 + 4 + 4) / 3)),
      "mae": pytest.approx(5 / 3),
      "count": 3,
      "baselines": {
          "global_mean": {"rmse": pytest.approx(math.sqrt((1 + 0 + 4) / 3)),
                          "mae": pytest.approx(1.0)},
          "movie_mean": {"rmse": pytest.approx(math.sqrt((0.75**2 + (1 / 11)**2 + 4) / 3)),
                         "mae": pytest.approx((0.75 + 1 / 11 + 2) / 3)},
      },
  }
  assert ranking.MOVIE_MEAN_PRIOR_RATINGS == 10  # The shrinkage the numbers above use.


def _constant(value):
  return lambda inputs: tf.fill(tf.shape(inputs[features.USER_ID]), value)


@pytest.mark.parametrize("kwargs,message", [
    (dict(output="rating"), "returns \\['rating'\\], not 'predicted_rating'"),
    (dict(predict=lambda inputs: tf.reshape(_constant(3.0)(inputs), [-1, 1])),
     "of shape \\(3, 1\\) for 3 ratings; expected \\[3\\]"),
    (dict(predict=_constant(float("nan"))), "NaN or infinite ratings for 3 of 3"),
])
def test_a_malformed_ranking_model_is_named(tmp_path, kwargs, message):
  path = artifacts.ranking_model_path(str(tmp_path / "model"))
  with pytest.raises(ValueError, match=f"ranking model {re.escape(path)} .*{message}"):
    _evaluate(tmp_path, **kwargs)


# The blessing on hand-written sections; the retrieval metrics pass their checks.
_RETRIEVAL = {"hit_rate@100": 0.5}


def _ranking_section(rmse, global_rmse=1.0, movie_rmse=0.9):
  return {"rmse": rmse, "mae": rmse * 0.8, "count": 10, "baselines": {
      "global_mean": {"rmse": global_rmse, "mae": 0.8},
      "movie_mean": {"rmse": movie_rmse, "mae": 0.7}}}


def _decide(section):
  return blessing.decide_blessing(
      _RETRIEVAL, {blessing.POPULARITY: {"hit_rate@100": 0.1},
                   blessing.EASE: {"hit_rate@100": 0.1}}, None, configs.EvaluatorConfig(),
      ranking=section)


def test_blessing_needs_a_ranking_rmse_below_the_global_mean():
  assert _decide(None).blessed
  better = _decide(_ranking_section(0.85))
  assert better.blessed
  assert better.reasons[-2:] == [
      "Passed: the ranking model's eval RMSE (0.8500) is below the global-mean baseline's "
      "(1.0000, the mean train rating predicted for every rating).",
      "Not gated: the ranking model's eval RMSE (0.8500) is below the movie-mean "
      "baseline's (0.9000).",
  ]
  # Worse than the movie means is reported, not gated.
  assert _decide(_ranking_section(0.95)).blessed
  for rmse in (1.0, 1.2):  # Equal to the mean is not better than it.
    worse = _decide(_ranking_section(rmse))
    assert not worse.blessed
    assert worse.reasons[-2] == (
        f"Failed: the ranking model's eval RMSE ({rmse:.4f}) is not below the global-mean "
        "baseline's (1.0000, the mean train rating predicted for every rating).")


# Through the executor, on the evaluator fixtures' ratings (the oracle query model passes
# the retrieval checks) with a rating of 1 + movie % 5.
def _rating(movie: int) -> float:
  return 1.0 + movie % 5


def _exact(inputs):
  """1 + movie % 5, exactly the rating (movie ids are 1000 + movie)."""
  movie_ids = tf.strings.to_number(inputs[features.MOVIE_ID], tf.int64)
  return tf.cast(movie_ids % 5 + 1, tf.float32)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  root = tmp_path_factory.mktemp("evaluator_ranking")
  rows = {split: [(fixtures.USER_IDS[user], fixtures.MOVIE_IDS[movie], timestamp,
                   ("Drama",), _rating(movie))
                  for user, movie, timestamp, s in fixtures.RATINGS if s == split]
          for split in ("train", "eval")}
  models = {}
  for name, predict in (("none", None), ("exact", _exact), ("five_stars", _constant(5.0))):
    models[name] = fixtures.write_model(
        str(root / name), *fixtures.oracle_embeddings())
    if predict is not None:
      _write_ranking_model(models[name].uri, predict)
      _write_ranking_config(models[name].uri, weight=1.0)
  return {"root": root, "examples": _write_examples(str(root / "examples"), rows["train"],
                                                    rows["eval"]),
          "movies": fixtures.write_catalog(str(root / "movies")),
          **models}


# Retrieved movies the ranking stage re-orders: more than 10, so its order changes which
# eval movies make a top 10.
RANKING_CANDIDATES = 20


def _write_ranking_config(model_uri: str, weight: float) -> None:
  """The Trainer's ranking_config.json (written by the Trainer's own function)."""
  ranking_stage.write_serving_config(model_uri, configs.TrainerConfig.from_flags(
      ranking_model=configs.DCN_RANKING, ranking_candidates=RANKING_CANDIDATES,
      ranking_weight=weight))


def _expected_ranked_order(depth: int):
  """The oracle's top `depth` unseen movies of each user re-ordered by `_exact`'s rating
  alone (weight 1), ties by catalog column as the Evaluator breaks them, scored by plain
  loops."""
  users, movies = fixtures.oracle_embeddings()
  catalog = fixtures.CATALOG
  retrieval_scores = users @ movies.T  # [user, movie index]
  seen = {(u, m) for u, m, _, s in fixtures.RATINGS if s == "train"}
  eval_movies = {}
  for u, m, _, s in fixtures.RATINGS:
    if s == "eval":
      eval_movies.setdefault(u, set()).add(m)
  hits, recalls, ndcgs = 0, [], []
  for user, relevant in eval_movies.items():
    columns = [c for c in range(len(catalog))
               if (user, fixtures.MOVIE_IDS.index(catalog[c])) not in seen]
    movie_of = lambda c: fixtures.MOVIE_IDS.index(catalog[c])
    retrieved = sorted(columns, key=lambda c: (-retrieval_scores[user, movie_of(c)], c))[:depth]
    reordered = sorted(retrieved, key=lambda c: (-_rating(movie_of(c)), c))
    top10 = [movie_of(c) for c in reordered[:10]]
    hits += sum(m in relevant for m in top10)
    recalls.append(sum(m in relevant for m in top10) / len(relevant))
    dcg = sum(1 / np.log2(i + 2) for i, m in enumerate(top10) if m in relevant)
    ndcgs.append(dcg / sum(1 / np.log2(i + 2) for i in range(min(len(relevant), 10))))
  num_pairs = sum(len(r) for r in eval_movies.values())
  return {"hit_rate@10": hits / num_pairs, "recall@10": float(np.mean(recalls)),
          "ndcg@10": float(np.mean(ndcgs))}


def _reports(evaluation):
  with open(os.path.join(evaluation.uri, results_lib.REPORT_FILE)) as f:
    text = f.read()
  with open(results_lib.html_report_path(evaluation.uri), encoding="utf-8") as f:
    return text, f.read()


def test_without_a_ranking_model_there_is_no_ranking_section(workdir):
  assert not ranking.has_ranking_model(workdir["none"].uri)
  results, evaluation, _ = fixtures.run_evaluator(workdir, "none", workdir["none"])
  assert "ranking" not in results
  assert results["blessed"] is True
  assert not [r for r in results["reasons"] if "ranking model" in r]
  text, page = _reports(evaluation)
  assert "Ranking stage" not in text and "rating model" not in text
  assert "Ranking stage" not in page and 'data-key="ranking/' not in page


def test_a_ranking_model_is_evaluated_on_every_eval_rating_and_reported(workdir):
  results, evaluation, blessing_artifact = fixtures.run_evaluator(
      workdir, "exact", workdir["exact"], max_eval_users=12, movies=workdir["movies"])
  assert results["model"]["num_eval_users"] == 12  # Retrieval: the sampled users.
  train = [_rating(m) for _, m, _, s in fixtures.RATINGS if s == "train"]
  eval_ = [(m, _rating(m)) for _, m, _, s in fixtures.RATINGS if s == "eval"]
  labels = np.array([rating for _, rating in eval_])
  global_mean = np.mean(train)
  movie_means = {m: (sum(_rating(m) for _, mm, _, s in fixtures.RATINGS
                         if mm == m and s == "train") + 10 * global_mean)
                 / (sum(mm == m and s == "train" for _, mm, _, s in fixtures.RATINGS) + 10)
                 for m, _ in eval_}
  movie_errors = np.array([movie_means[m] for m, _ in eval_]) - labels
  section = dict(results["ranking"])
  assert section.pop("ranked_order")["candidates"] == RANKING_CANDIDATES
  assert section == {
      "rmse": 0.0, "mae": 0.0, "count": len(eval_),  # Every eval rating: 40 users x 5.
      "baselines": {
          "global_mean": {"rmse": pytest.approx(np.sqrt(np.mean((labels - global_mean)**2))),
                          "mae": pytest.approx(np.mean(np.abs(labels - global_mean)))},
          "movie_mean": {"rmse": pytest.approx(np.sqrt(np.mean(movie_errors**2))),
                         "mae": pytest.approx(np.mean(np.abs(movie_errors)))}}}
  assert len(eval_) == 200 and section["baselines"]["global_mean"]["rmse"] > 1
  assert results["blessed"] is True
  assert blessing_artifact.get_int_custom_property("blessed") == 1
  global_rmse = section["baselines"]["global_mean"]["rmse"]
  assert (f"Passed: the ranking model's eval RMSE (0.0000) is below the global-mean "
          f"baseline's ({global_rmse:.4f}, ") in "\n".join(results["reasons"])
  text, page = _reports(evaluation)
  table = text.split("Ranking stage: predicted ratings on all 200 eval ratings")[1]
  rows = [line.split() for line in table.splitlines()[1:6]]
  assert rows[0] == ["rating", "model", "|", "rmse", "|", "mae"]
  assert rows[2] == ["model", "|", "0.0000", "|", "0.0000"]
  assert rows[3] == ["movie", "mean", "|",
                     f"{section['baselines']['movie_mean']['rmse']:.4f}", "|",
                     f"{section['baselines']['movie_mean']['mae']:.4f}"]
  assert rows[4] == ["global", "mean", "|", f"{global_rmse:.4f}", "|",
                     f"{section['baselines']['global_mean']['mae']:.4f}"]
  assert "<h2>Ranking stage</h2>" in page
  parser = fixtures.ReportParser()
  parser.feed(page)
  keyed = {attrs["data-key"]: text for attrs, text in parser.cells if "data-key" in attrs}
  for key in ("ranking/rmse", "ranking/mae", "ranking/baselines/movie_mean/rmse",
              "ranking/baselines/movie_mean/mae", "ranking/baselines/global_mean/rmse",
              "ranking/baselines/global_mean/mae"):
    fixtures.assert_shown_as(
        keyed[key], fixtures.value_at(results, key), key)


def test_a_ranking_model_worse_than_the_global_mean_is_not_blessed(workdir):
  results, evaluation, blessing_artifact = fixtures.run_evaluator(
      workdir, "five_stars", workdir["five_stars"])
  section = results["ranking"]
  global_rmse = section["baselines"]["global_mean"]["rmse"]
  assert section["rmse"] > global_rmse
  assert results["model"]["hit_rate@100"] == 1.0  # Retrieval alone would be blessed.
  assert results["blessed"] is False
  assert (f"Failed: the ranking model's eval RMSE ({section['rmse']:.4f}) is not below the "
          f"global-mean baseline's ({global_rmse:.4f}, the mean train rating predicted for "
          "every rating).") in results["reasons"]
  assert blessing_artifact.get_int_custom_property("blessed") == 0
  assert os.path.exists(os.path.join(blessing_artifact.uri, "NOT_BLESSED"))
  text, _ = _reports(evaluation)
  assert "Blessed: no" in text


def test_the_re_ordered_lists_are_measured_as_serving_ranked_returns_them(workdir):
  results, evaluation, _ = fixtures.run_evaluator(workdir, "exact_ranked", workdir["exact"],
                                                   movies=workdir["movies"])
  ranked = results["ranking"]["ranked_order"]
  # Only the cutoffs within the 20 re-ordered movies (the evaluated ks are 10, 50, 100).
  assert ranked == pytest.approx({"candidates": RANKING_CANDIDATES, "weight": 1.0,
                                  **_expected_ranked_order(RANKING_CANDIDATES)})
  # Re-ordering changed which eval movies made the top 10.
  assert ranked["hit_rate@10"] != results["model"]["hit_rate@10"]
  text, page = _reports(evaluation)
  table = text.split("Ranked order: each eval user's 20 best retrieved movies (train movies "
                     "excluded) re-ordered by 1 x predicted rating + 0 x retrieval score")[1]
  rows = [line.split(" | ") for line in table.splitlines()[1:5]]
  assert [cell.strip() for cell in rows[0]] == [
      "list order", "hit_rate@10", "recall@10", "ndcg@10"]
  for row, section in ((rows[2], results["model"]), (rows[3], ranked)):
    assert [cell.strip() for cell in row[1:]] == [
        f"{section[name]:.4f}" for name in ("hit_rate@10", "recall@10", "ndcg@10")]
  assert rows[3][0].strip() == "re-ordered (serving_ranked)"
  parser = fixtures.ReportParser()
  parser.feed(page)
  keyed = {attrs["data-key"]: text for attrs, text in parser.cells if "data-key" in attrs}
  for key in ("ranking/ranked_order/hit_rate@10", "ranking/ranked_order/ndcg@10",
              "model/hit_rate@10"):
    fixtures.assert_shown_as(
        keyed[key], fixtures.value_at(results, key), key)
  # TFMA's reader sees the ranking stage in the overall record, under its own model names.
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  records = {tuple(k.column for k in r.slice_key.single_slice_keys): {
      (e.key.model_name, e.key.name): e.value.double_value.value
      for e in r.metric_keys_and_values} for r in tfma.load_metrics(evaluation.uri)}
  overall = records[()]
  section = results["ranking"]
  assert overall[("candidate", "rmse")] == pytest.approx(section["rmse"])
  assert overall[("candidate", "hit_rate@10")] == results["model"]["hit_rate@10"]
  assert overall[("global_mean_baseline", "mae")] == pytest.approx(
      section["baselines"]["global_mean"]["mae"])
  assert overall[("movie_mean_baseline", "rmse")] == pytest.approx(
      section["baselines"]["movie_mean"]["rmse"])
  assert {name for model, name in overall if model == "candidate_ranked"} == {
      "hit_rate@10", "recall@10", "ndcg@10"}
  assert overall[("candidate_ranked", "ndcg@10")] == pytest.approx(ranked["ndcg@10"])
  assert all(model != "candidate_ranked" and name != "rmse"
             for key, values in records.items() if key for model, name in values)


def test_a_zero_ranking_weight_keeps_the_retrieval_order(workdir, tmp_path):
  # The oracle's scores tie within a block; with weight 0 the key ties too, and ties go to
  # the lower catalog column in both orders.
  model = fixtures.write_model(
      str(tmp_path / "model"), *fixtures.oracle_embeddings())
  _write_ranking_model(model.uri, _exact)
  _write_ranking_config(model.uri, weight=0.0)
  results, _, _ = fixtures.run_evaluator(workdir, "exact_w0", model, movies=workdir["movies"])
  ranked = results["ranking"]["ranked_order"]
  assert ranked["weight"] == 0.0
  for name in ("hit_rate@10", "recall@10", "ndcg@10"):
    assert ranked[name] == pytest.approx(results["model"][name])


def test_a_catalog_movie_without_features_is_named(workdir, tmp_path):
  movies = fixtures.write_catalog(str(tmp_path / "movies"), left_out=(7,))
  with pytest.raises(ValueError, match="1 of the model's 420 catalog movies are missing "
                                       "from the movie catalog .*, e.g. '1007'"):
    fixtures.run_evaluator(workdir, "exact_missing", workdir["exact"], movies=movies)


def test_without_the_movie_catalog_the_re_ordered_lists_are_not_measured(workdir):
  results, _, _ = fixtures.run_evaluator(workdir, "exact_no_movies", workdir["exact"])
  assert results["ranking"]["ranked_order"] is None
  assert results["ranking"]["rmse"] == 0.0


def test_a_ranking_model_without_its_config_is_refused_by_name(tmp_path):
  model_uri = str(tmp_path / "model")
  with pytest.raises(ValueError, match="has a ranking model but no ranking_config.json; it "
                                       "predates the ranked-order evaluation"):
    ranking.serving_order(model_uri)
  os.makedirs(model_uri)
  for config, message in (
      ('{"ranking_candidates": 0, "ranking_weight": 0.5}',
       "'ranking_candidates' must be a positive integer, got 0"),
      ('{"ranking_candidates": 10, "ranking_weight": 1.5}',
       "'ranking_weight' must be a number in \\[0, 1\\], got 1.5"),
      ('{"ranking_candidates": 10}', "'ranking_weight' must be a number in \\[0, 1\\], got None")):
    with open(artifacts.ranking_config_path(model_uri), "w") as f:
      f.write(config)
    with pytest.raises(ValueError, match=message):
      ranking.serving_order(model_uri)
  with open(artifacts.ranking_config_path(model_uri), "w") as f:
    f.write('{"ranking_candidates": 10, "ranking_weight": 0.25}')
  assert ranking.serving_order(model_uri) == (10, 0.25)
