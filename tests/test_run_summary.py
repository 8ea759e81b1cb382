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
