"""The run summary's terminal text (pipeline/run_summary.format_text)."""
from pipeline import run_summary


def _summary():
  model = {"hit_rate@10": 0.1, "hit_rate@50": 0.3, "hit_rate@100": 0.4, "ndcg@10": 0.2,
           "top_k_accuracy@100": 0.25, "coverage@10": 0.05, "num_eval_pairs": 20}
  return {"model": model,
          "baseline_popularity": {name: value / 2 for name, value in model.items()},
          "baseline_ease": {},
          "blessed": True, "blessing_reasons": ["Passed: because."],
          "pushed_model": "/serving/7", "example_recommendations": {"5": ["A (1999)"]},
          "evaluation_report": "/eval/report.html"}


def test_the_table_shows_the_smallest_and_largest_cutoffs_in_the_evaluators_order():
  lines = run_summary.format_text(_summary()).splitlines()
  assert lines[0].split() == ["metric", "model", "popularity"]  # Empty EASE: no column.
  assert [line.split()[0] for line in lines[1:6]] == [
      "hit_rate@10", "hit_rate@100", "ndcg@10", "top_k_accuracy@100", "coverage@10"]
  assert lines[2].split()[1:] == ["0.4000", "0.2000"]
  assert "hit_rate@50" not in "\n".join(lines)
  assert lines[6:] == ["blessed: True", "  Passed: because.", "pushed model: /serving/7",
                       "user 5: A (1999)", "evaluation report: /eval/report.html"]


def test_one_cutoff_is_shown_alone():
  summary = _summary()
  summary["model"] = {"hit_rate@20": 0.5}
  assert run_summary.format_text(summary).splitlines()[1].split() == [
      "hit_rate@20", "0.5000", "-"]


def test_a_ranking_stage_shows_its_rmse_and_the_served_orders_hit_rate():
  summary = _summary()
  summary["ranking"] = {
      "rmse": 0.87, "mae": 0.67, "count": 100,
      "baselines": {"global_mean": {"rmse": 1.05, "mae": 0.85},
                    "movie_mean": {"rmse": 0.98, "mae": 0.77}},
      "ranked_order": {"candidates": 100, "weight": 0.25, "hit_rate@10": 0.09,
                       "recall@10": 0.15, "ndcg@10": 0.31}}
  lines = run_summary.format_text(summary).splitlines()
  assert lines[6:9] == [
      "ranking stage RMSE 0.8700 (movie mean 0.9800, global mean 1.0500)",
      "serving_ranked order: hit_rate@10 0.0900 (retrieval 0.1000), ndcg@10 0.3100 "
      "(retrieval 0.2000)",
      "blessed: True"]
  # Without the catalog the order is not measured: the RMSE line alone.
  summary["ranking"]["ranked_order"] = None
  lines = run_summary.format_text(summary).splitlines()
  assert lines[6:8] == ["ranking stage RMSE 0.8700 (movie mean 0.9800, global mean 1.0500)",
                        "blessed: True"]
