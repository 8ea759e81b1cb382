"""RetrievalEvaluator: evaluates a two-tower retrieval model against the whole catalog."""
import json
from typing import Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts

from components.retrieval_evaluator import executor


class RetrievalEvaluatorSpec(types.ComponentSpec):
  """Inputs, parameters and outputs of RetrievalEvaluator (see `executor.Options`)."""
  PARAMETERS = {
      # A JSON list of ints: a plain string keeps every orchestrator's IR happy.
      executor.KS_KEY: component_spec.ExecutionParameter(type=str),
      executor.MIN_LIFT_OVER_POPULARITY_KEY: component_spec.ExecutionParameter(type=float),
      executor.MAX_DROP_VS_BLESSED_KEY: component_spec.ExecutionParameter(type=float),
      executor.MAX_EVAL_USERS_KEY: component_spec.ExecutionParameter(type=int),
      executor.SEED_KEY: component_spec.ExecutionParameter(type=int),
      executor.BLESSING_K_KEY: component_spec.ExecutionParameter(type=int),
  }
  INPUTS = {
      executor.EXAMPLES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples),
      executor.MODEL_KEY: component_spec.ChannelParameter(type=standard_artifacts.Model),
      executor.BASELINE_MODEL_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Model, optional=True),
  }
  OUTPUTS = {
      executor.EVALUATION_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelEvaluation),
      executor.BLESSING_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelBlessing),
  }


class RetrievalEvaluator(base_beam_component.BaseBeamComponent):
  """Ranks the whole catalog for each eval user; blesses models that beat the baselines.

  Reads the raw ratings (not Transform's output: the query tower holds the Transform
  graph) and the Trainer's query tower and candidate embeddings (trainer_module/model_layout.py).
  Outputs:
    evaluation: metrics.json (model, popularity and blessed-baseline metrics, verdict,
      reasons, config) and report.txt; read it with `executor.load_metrics`.
    blessing: a ModelBlessing (BLESSED / NOT_BLESSED file, custom property `blessed`)
      as the stock Evaluator writes it, for the stock Pusher and
      LatestBlessedModelStrategy.
  """
  SPEC_CLASS = RetrievalEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
               baseline_model: Optional[types.BaseChannel] = None,
               ks: Sequence[int] = executor.Options.ks,
               min_lift_over_popularity: float = executor.Options.min_lift_over_popularity,
               max_drop_vs_blessed: float = executor.Options.max_drop_vs_blessed,
               max_eval_users: int = executor.Options.max_eval_users,
               seed: int = executor.Options.seed,
               blessing_k: int = executor.Options.blessing_k):
    """Constructs the component.

    Args:
      examples: Raw ratings Examples (MovieLensExampleGen), splits 'train' and 'eval'.
      model: The Trainer's Model (layout in trainer_module/model_layout.py).
      baseline_model: The latest blessed Model (a LatestBlessedModelStrategy Resolver's
        output), or None to compare with popularity only.
      ks: Cutoffs of hit_rate, recall and top_k_accuracy; blessing_k is always added.
      min_lift_over_popularity: Relative margin by which hit_rate@blessing_k must beat
        the popularity baseline (0.1: at least 1.1x).
      max_drop_vs_blessed: Largest relative drop of hit_rate@blessing_k allowed against
        the blessed baseline (0.02: at least 0.98x).
      max_eval_users: Evaluate a seeded sample of this many eval users when there are
        more; <= 0 evaluates all.
      seed: Seed of that sample.
      blessing_k: The blessing compares hit_rate@blessing_k. Keep it well below the
        catalog size: at 100 on a catalog of a few hundred movies every model hits.
    """
    options = executor.Options(  # Fails at pipeline construction on bad values.
        ks=tuple(ks), min_lift_over_popularity=min_lift_over_popularity,
        max_drop_vs_blessed=max_drop_vs_blessed, max_eval_users=max_eval_users, seed=seed,
        blessing_k=blessing_k)
    spec = RetrievalEvaluatorSpec(
        examples=examples, model=model, baseline_model=baseline_model,
        ks=json.dumps([int(k) for k in options.ks]),
        min_lift_over_popularity=float(min_lift_over_popularity),
        max_drop_vs_blessed=float(max_drop_vs_blessed), max_eval_users=int(max_eval_users),
        seed=int(seed), blessing_k=int(blessing_k),
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing))
    super().__init__(spec=spec)
