"""The whole pipeline on the LocalDagRunner, on small synthetic data, as a user runs it."""
import csv
import dataclasses
import io
import json
import os
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from tfx import v1 as tfx

from components import anomalies_gate
from components import schema_curation
from components.movielens_example_gen import splits
from contracts import configs
from contracts import serving
from movielens import synthetic
from pipeline import pipeline
from pipeline import run_record
from pipeline import run_summary
from trainer_module import artifact_files
from trainer_module import recommend

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BIN = os.path.dirname(sys.executable)
_CONFIG = configs.PipelineConfig(
    trainer=configs.TrainerConfig.from_flags(epochs=4, embedding_dim=32, batch_size=512))


def _run(components, root, name="e2e"):
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      os.path.join(root, "metadata.sqlite"))
  run_id = run_record.new_run_id()
  run_record.run_local(pipeline.create_pipeline(
      pipeline_name=name, pipeline_root=root, components=components,
      metadata_connection_config=metadata), run_id)
  return run_summary.summarize(metadata, name, run_id)


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
  """One full run and one re-run with nothing changed."""
  root = str(tmp_path_factory.mktemp("pipeline_root"))
  data_dir = synthetic.generate(os.path.join(root, "data"), configs.SyntheticDataConfig(
      synthetic_users=200, synthetic_movies=400, synthetic_ratings=12_000, synthetic_seed=11))
  serving_dir = os.path.join(root, "serving_model")
  first = _run(pipeline.create_components(data_dir, serving_dir, _CONFIG), root)
  second = _run(pipeline.create_components(data_dir, serving_dir, _CONFIG), root)
  return {"root": root, "serving_dir": serving_dir, "first": first, "second": second}


def test_summary_reports_model_baseline_and_push(pipeline_run):
  summary = pipeline_run["first"]
  for name in ("hit_rate@10", "hit_rate@50", "hit_rate@100", "recall@100", "ndcg@10",
               "top_k_accuracy@100", "coverage@10"):
    assert 0.0 <= summary["model"][name] <= 1.0
    assert name in summary["baseline_popularity"]
  assert summary["blessed"] is True
  assert summary["model"]["hit_rate@100"] > 1.1 * summary["baseline_popularity"]["hit_rate@100"]
  assert summary["pushed_model"].startswith(pipeline_run["serving_dir"])
  counts = summary["data_counts"]
  assert counts["num_train_examples"] + counts["num_eval_examples"] == 12_000
  assert counts["num_bad_lines"] == 0 and counts["num_movies"] == 400
  assert summary["evaluation_report"].startswith(pipeline_run["root"])
  assert set(summary["component_seconds"]) >= {
      "MovieLensExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
      "AnomaliesGate", "Transform", "RetrievalTrainer", "RetrievalEvaluator", "Pusher"}
  assert len(summary["example_recommendations"]) == 3
  # EASE is always reported, and the HTML report's path is printed with the summary.
  assert 0.0 < summary["baseline_ease"]["hit_rate@100"] <= 1.0
  assert os.path.isfile(summary["evaluation_report"])
  assert f"evaluation report: {summary['evaluation_report']}" in run_summary.format_text(
      summary)


def test_rerun_reuses_cached_results(pipeline_run):
  second = pipeline_run["second"]
  # Each summary is its own run's: the first ran everything, the second reused it.
  assert second["run_id"] != pipeline_run["first"]["run_id"]
  assert pipeline_run["first"]["cached_components"] == []
  assert {"MovieLensExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
          "AnomaliesGate", "Transform", "RetrievalTrainer"} <= set(second["cached_components"])
  assert second["component_seconds"]["RetrievalTrainer"] < 1.0
  # The Evaluator's baseline input changed (no blessed model before the first run; the
  # first run's model now), so it evaluates again: the same model scores the same.
  assert second["baseline_blessed"]["hit_rate@100"] == pytest.approx(
      pipeline_run["first"]["model"]["hit_rate@100"])
  assert second["blessed"] is True
  # Both runs pushed, each to a version of its own.
  versions = sorted(os.listdir(pipeline_run["serving_dir"]))
  assert [os.path.join(pipeline_run["serving_dir"], v) for v in versions] == [
      pipeline_run["first"]["pushed_model"], second["pushed_model"]]


def test_pushed_model_answers_raw_user_ids(pipeline_run):
  model_dir = recommend.resolve_model_dir(pipeline_run["serving_dir"])
  assert os.path.dirname(model_dir) == pipeline_run["serving_dir"]
  model = tf.saved_model.load(model_dir)
  result = model.signatures[serving.SERVING_DEFAULT](
      user_id=tf.constant(["1", "2", "no-such-user"]))
  k = configs.TrainerConfig().serving.top_k
  assert result["movie_id"].shape == (3, k) and result["score"].shape == (3, k)
  scores = result["score"].numpy()
  assert np.all(np.diff(scores, axis=1) <= 0)
  # Raw strings in, catalog titles out: the Transform graph runs inside the model.
  assert result["movie_title"].numpy()[0][0].decode().endswith(")")
  # Known users get personal lists; they differ from each other.
  assert result["movie_id"].numpy()[0].tolist() != result["movie_id"].numpy()[1].tolist()


def test_recommend_cli_excludes_seen_movies(pipeline_run):
  out = subprocess.run(
      [sys.executable, "-m", "trainer_module.recommend", "--model_dir",
       pipeline_run["serving_dir"], "--user_id", "1", "--k", "5", "--exclude_seen"],
      cwd=_REPO, capture_output=True, text=True, check=True).stdout
  lines = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
  assert out.startswith("user 1:") and len(lines) == 5
  seen = artifact_files.read_seen_movies(
      recommend.resolve_model_dir(pipeline_run["serving_dir"]))["1"]
  shown = [line.split("[", 1)[1].split("]", 1)[0] for line in lines]
  assert seen and not set(shown) & set(seen)


def test_saved_model_cli_runs_the_export(pipeline_run):
  model_dir = recommend.resolve_model_dir(pipeline_run["serving_dir"])
  out = subprocess.run(
      [os.path.join(_BIN, "saved_model_cli"), "run", "--dir", model_dir, "--tag_set", "serve",
       "--signature_def", "serving_default", "--input_exprs", 'user_id=["1"]'],
      capture_output=True, text=True, check=True, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
  assert "movie_title" in out.stdout and "score" in out.stdout


def _write_ml_latest_with_eval_only_genre(folder):
  """ml-latest CSVs where genre 'Western' is only rated in the eval split."""
  os.makedirs(folder)
  rng = np.random.default_rng(0)
  movies = [(m, f"Movie {m} (1990)", "Drama|Comedy" if m % 2 else "Action") for m in range(1, 31)]
  movies.append((99, "High Noon (1952)", "Western"))
  rows = [(u, m, 4.0, 1_000_000 + u * 100 + m) for u in range(1, 41)
          for m in rng.choice(range(1, 31), 12, replace=False)]
  users = [str(u) for u in range(1, 41)]
  in_eval = splits.random_eval_mask(users, ["99"] * len(users), 0.2, seed=42)
  rows += [(int(u), 99, 5.0, 2_000_000) for u, e in zip(users, in_eval) if e]
  with open(os.path.join(folder, "movies.csv"), "w", newline="", encoding="utf-8") as f:
    csv.writer(f).writerows([("movieId", "title", "genres")] + movies)
  with open(os.path.join(folder, "ratings.csv"), "w", newline="", encoding="utf-8") as f:
    csv.writer(f).writerows([("userId", "movieId", "rating", "timestamp")] + rows)


def test_a_genre_rated_only_in_eval_is_a_catalog_genre_not_an_anomaly(tmp_path):
  # As new movies after a temporal cutoff are (ml-latest-small's "(no genres listed)").
  data_dir = str(tmp_path / "ml-latest-small")
  _write_ml_latest_with_eval_only_genre(data_dir)
  root = str(tmp_path / "root")
  components = pipeline.create_components(data_dir, str(tmp_path / "serving"), _CONFIG)
  transform = next(i for i, c in enumerate(components) if isinstance(c, tfx.components.Transform))
  _run(components[:transform + 1], root, name="eval-only-genre")  # The data components.
  # Past the gate: Transform ran, and its genre vocabulary, from train, lacks Western.
  [vocabulary] = tf.io.gfile.glob(os.path.join(
      root, "Transform", "transform_graph", "*", "transform_fn", "assets", "*genre*"))
  with open(vocabulary, encoding="utf-8") as f:
    genres = {line.rstrip("\n") for line in f}
  assert "Action" in genres and "Western" not in genres


def test_eval_anomaly_stops_the_pipeline_before_transform(tmp_path):
  # A genre that the schema does not know: here the catalog's genres are withheld from
  # CurateSchema, so the schema holds only the genres rated in train.
  data_dir = str(tmp_path / "ml-latest-small")
  _write_ml_latest_with_eval_only_genre(data_dir)
  root = str(tmp_path / "root")
  components = pipeline.create_components(data_dir, str(tmp_path / "serving"), _CONFIG)
  with mock.patch.object(schema_curation, "catalog_genres", return_value=set()):
    with pytest.raises(anomalies_gate.DataAnomaliesError, match=r"\[eval\] movie_genres"):
      _run(components, root, name="anomaly")
  # Nothing after the gate ran.
  assert not os.path.exists(os.path.join(root, "Transform"))
