"""The blessing policy on hand-written metrics: gated baseline, lifts, blessed model."""
import pytest

from components.retrieval_evaluator import blessing
from contracts import configs

POPULARITY = {"hit_rate@100": 0.30, "recall@100": 0.20}
EASE = {"hit_rate@100": 0.40, "recall@100": 0.35}


def _decide(model, blessed=None, **config):
  return blessing.decide_blessing(model, {blessing.POPULARITY: POPULARITY,
                                          blessing.EASE: EASE}, blessed,
                                  configs.EvaluatorConfig(**config))


def test_default_gates_on_popularity_and_reports_ease():
  decision = _decide({"hit_rate@100": 0.34, "recall@100": 0.3})
  assert decision.blessed  # 0.34 >= 0.30 * 1.1 = 0.33.
  assert decision.reasons == [
      "Passed: the model's hit_rate@100 (0.3400) is at least 1.10x the popularity "
      "baseline's (0.3000, so at least 0.3300 is needed).",
      "Not gated (bless_against=popularity): the model's hit_rate@100 (0.3400) is 0.85x "
      "the EASE baseline's (0.4000).",
      "No blessed baseline model yet: only the popularity check applies.",
  ]
  assert not _decide({"hit_rate@100": 0.32, "recall@100": 0.3}).blessed


def test_bless_against_ease_with_its_own_lift():
  model = {"hit_rate@100": 0.41, "recall@100": 0.3}
  decision = _decide(model, bless_against="ease")
  assert decision.blessed
  assert decision.reasons[0].startswith("Passed") and "1.00x the EASE baseline's" in (
      decision.reasons[0])
  assert decision.reasons[1].startswith("Not gated (bless_against=ease)")
  assert "1.37x the popularity baseline's" in decision.reasons[1]
  assert decision.reasons[2] == "No blessed baseline model yet: only the EASE check applies."
  # 0.41 < 0.40 * 1.05; the popularity lift does not apply to EASE.
  failed = _decide(model, bless_against="ease", min_lift_over_ease=0.05,
                   min_lift_over_popularity=0.0)
  assert not failed.blessed
  assert failed.reasons[0] == ("Failed: the model's hit_rate@100 (0.4100) is below 1.05x "
                               "the EASE baseline's (0.4000, so at least 0.4200 is needed).")


def test_gate_metric_family_at_blessing_k():
  # recall@100: 0.3 passes popularity's 0.2 * 1.1 but not EASE's 0.35.
  model = {"hit_rate@100": 0.1, "recall@100": 0.3}
  assert _decide(model, gate_metric="recall").blessed
  assert not _decide(model, gate_metric="recall", bless_against="ease").blessed
  assert blessing.gate_metric(configs.EvaluatorConfig(gate_metric="recall", blessing_k=50)) == (
      "recall@50")


def test_blessed_model_check_and_zero_model():
  model = {"hit_rate@100": 0.5, "recall@100": 0.4}
  kept_up = _decide(model, blessed={"hit_rate@100": 0.51})
  assert kept_up.blessed and kept_up.reasons[-1].startswith("Passed")
  dropped = _decide(model, blessed={"hit_rate@100": 0.6})
  assert not dropped.blessed
  assert "last blessed model's (0.6000, so at least 0.5880 is needed)" in dropped.reasons[-1]
  # Against zero baselines a model that retrieves nothing still fails.
  zero = blessing.decide_blessing({"hit_rate@100": 0.0}, {
      blessing.POPULARITY: {"hit_rate@100": 0.0}, blessing.EASE: {"hit_rate@100": 0.0}},
                                  None, configs.EvaluatorConfig())
  assert not zero.blessed
  assert "the EASE baseline's is 0" in zero.reasons[1]
  assert zero.reasons[-1].startswith("Failed: the model retrieved none")


def test_unknown_baseline_is_rejected():
  with pytest.raises(ValueError, match="bless_against"):
    blessing.decide_blessing({"hit_rate@100": 0.5}, {blessing.POPULARITY: POPULARITY},
                             None, configs.EvaluatorConfig(bless_against="ease"))


def test_a_catalog_not_larger_than_blessing_k_is_named_as_the_reason():
  # Everything hits when the top k is the whole catalog: equal to the baselines.
  equal = {"hit_rate@100": 1.0, "recall@100": 1.0}
  decision = blessing.decide_blessing(
      equal, {blessing.POPULARITY: equal, blessing.EASE: equal}, None,
      configs.EvaluatorConfig(min_lift_over_popularity=0.0), catalog_size=80)
  assert not decision.blessed
  assert any("the catalog has 80 movies, not more than blessing_k=100" in reason
             and "--blessing_k below the catalog size" in reason
             for reason in decision.reasons)
  larger = blessing.decide_blessing(
      equal, {blessing.POPULARITY: equal, blessing.EASE: equal}, None,
      configs.EvaluatorConfig(min_lift_over_popularity=0.0), catalog_size=101)
  assert larger.blessed
