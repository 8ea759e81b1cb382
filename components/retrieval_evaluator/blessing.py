"""The blessing policy: does the model beat its baseline, and keep up with the last blessed one?

One gate metric, `<gate_metric>@<blessing_k>` (default hit_rate@100), compared with:
  * the baseline named by `bless_against` (popularity or EASE): the model must reach
    baseline * (1 + its minimum lift);
  * the last blessed model, when there is one: at most `max_drop_vs_blessed` below it.
With a ranking stage (metrics.json's "ranking" section), its eval RMSE must also be below
the global-mean baseline's: a rating model worse than predicting the mean train rating
never ships; the movie-mean baseline is reported, not gated.
A model that retrieves nothing is never blessed. Every check, passed or failed, and where
the model stands against the baseline that is not gated, becomes one line of `reasons`.
"""
import dataclasses
from typing import Any, List, Mapping, Optional, Tuple

from components.retrieval_evaluator import metric_names as names

POPULARITY = "popularity"
EASE = "ease"
BASELINES = (POPULARITY, EASE)
# How the reasons and reports name each baseline.
BASELINE_LABELS = {POPULARITY: "popularity", EASE: "EASE"}


@dataclasses.dataclass(frozen=True)
class Decision:
  """The verdict and one plain-words line per check, passed or failed."""
  blessed: bool
  reasons: List[str]


def gate_metric(config) -> str:
  """The metric the blessing compares, e.g. 'hit_rate@100' (an EvaluatorConfig)."""
  return names.gate_name(config.gate_metric, config.blessing_k)


def min_lift(config, baseline: str) -> float:
  """The relative margin by which the model must beat `baseline`."""
  return {POPULARITY: config.min_lift_over_popularity,
          EASE: config.min_lift_over_ease}[baseline]


def decide_blessing(model: Mapping[str, float], baselines: Mapping[str, Mapping[str, float]],
                    blessed_baseline: Optional[Mapping[str, float]], config,
                    catalog_size: Optional[int] = None,
                    ranking: Optional[Mapping[str, Any]] = None) -> Decision:
  """Blesses iff the model beats the gated baseline by its lift, keeps up with the
  blessed one and, with a ranking stage, predicts ratings better than the global mean.

  Args:
    model: The model's metrics.
    baselines: {POPULARITY: metrics, EASE: metrics}; the one `config.bless_against`
      names is gated on, the others are reported.
    blessed_baseline: The last blessed model's metrics, or None.
    config: An EvaluatorConfig (gate_metric, blessing_k, bless_against,
      min_lift_over_popularity, min_lift_over_ease, max_drop_vs_blessed).
    catalog_size: Movies ranked. When it is not larger than blessing_k, every model ranks
      the whole catalog in its top k, the gate cannot tell models apart, and the model is
      not blessed, with that reason.
    ranking: metrics.json's ranking section (ranking.evaluate), or None without a
      ranking stage.
  """
  metric = gate_metric(config)
  value = model[metric]
  against = config.bless_against
  if against not in baselines:
    raise ValueError(f"bless_against is {against!r} but there are only the "
                     f"{sorted(baselines)} baselines.")
  checks = [_lift_check(metric, value, baselines[against][metric], min_lift(config, against),
                        against)]
  checks += [(True, _standing(metric, value, values[metric], name, against))
             for name, values in baselines.items() if name != against]
  if blessed_baseline is None:
    checks.append((True, f"No blessed baseline model yet: only the "
                   f"{BASELINE_LABELS[against]} check applies."))
  else:
    checks.append(_blessed_check(metric, value, blessed_baseline[metric],
                                 config.max_drop_vs_blessed))
  if catalog_size is not None and catalog_size <= config.blessing_k:
    checks.append((False, f"Failed: the catalog has {catalog_size} movies, not more than "
                   f"blessing_k={config.blessing_k}, so every model (and baseline) ranks "
                   f"all of them in its top {config.blessing_k} and {metric} cannot tell "
                   f"them apart. Set --blessing_k below the catalog size."))
  if value <= 0:
    checks.append((False, f"Failed: the model retrieved none of the eval movies in its "
                   f"users' top {config.blessing_k} ({metric} = 0)."))
  if ranking is not None:
    checks += _ranking_checks(ranking)
  return Decision(all(ok for ok, _ in checks), [reason for _, reason in checks])


def _lift_check(metric: str, value: float, baseline: float, lift: float,
                name: str) -> Tuple[bool, str]:
  needed = baseline * (1 + lift)
  ok = value >= needed
  return ok, (f"{'Passed' if ok else 'Failed'}: the model's {metric} ({value:.4f}) "
              f"is {'at least' if ok else 'below'} {1 + lift:.2f}x the "
              f"{BASELINE_LABELS[name]} baseline's ({baseline:.4f}, so at least "
              f"{needed:.4f} is needed).")


def _standing(metric: str, value: float, baseline: float, name: str, against: str) -> str:
  """Where the model stands against a baseline the gate does not use."""
  label = BASELINE_LABELS[name]
  if baseline <= 0:
    return (f"Not gated (bless_against={against}): the model's {metric} is {value:.4f}, "
            f"the {label} baseline's is 0.")
  return (f"Not gated (bless_against={against}): the model's {metric} ({value:.4f}) is "
          f"{value / baseline:.2f}x the {label} baseline's ({baseline:.4f}).")


def _blessed_check(metric: str, value: float, baseline: float,
                   max_drop: float) -> Tuple[bool, str]:
  needed = baseline * (1 - max_drop)
  ok = value >= needed
  return ok, (f"{'Passed' if ok else 'Failed'}: the model's {metric} ({value:.4f}) "
              f"is {'within' if ok else 'more than'} {max_drop:.1%} "
              f"{'of' if ok else 'below'} the last blessed model's ({baseline:.4f}, so at "
              f"least {needed:.4f} is needed).")


def _ranking_checks(ranking: Mapping[str, Any]) -> List[Tuple[bool, str]]:
  """The ranking model's RMSE against the global mean (gated) and the movie means."""
  rmse = ranking[names.RMSE]
  baselines = ranking[names.RATING_BASELINES]
  global_rmse = baselines[names.GLOBAL_MEAN][names.RMSE]
  movie_rmse = baselines[names.MOVIE_MEAN][names.RMSE]
  ok = rmse < global_rmse
  gated = (ok, f"{'Passed' if ok else 'Failed'}: the ranking model's eval RMSE "
           f"({rmse:.4f}) is {'below' if ok else 'not below'} the global-mean baseline's "
           f"({global_rmse:.4f}, the mean train rating predicted for every rating).")
  return [gated, (True, f"Not gated: the ranking model's eval RMSE ({rmse:.4f}) is "
                  f"{'below' if rmse < movie_rmse else 'not below'} the movie-mean "
                  f"baseline's ({movie_rmse:.4f}).")]
