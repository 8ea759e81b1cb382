"""RetrievalEvaluator: evaluates a two-tower retrieval model against the whole catalog."""
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts

from components import component_params
from components.retrieval_evaluator import executor
from contracts import configs


class RetrievalEvaluatorSpec(types.ComponentSpec):
  """Inputs, parameters (the `configs.EvaluatorConfig` fields) and outputs."""
  PARAMETERS = component_params.execution_parameters(configs.EvaluatorConfig)
  INPUTS = {
      executor.EXAMPLES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples),
      executor.MODEL_KEY: component_spec.ChannelParameter(type=standard_artifacts.Model),
      executor.BASELINE_MODEL_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Model, optional=True),
      executor.MOVIES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Examples, optional=True),
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
  graph) and the Trainer's query tower and candidate embeddings (contracts/artifacts.py).
  Outputs:
    evaluation: metrics.json (model, popularity, EASE and blessed-baseline metrics,
      slices, curves, verdict, reasons, config), report.txt and report.html; read
      metrics.json with `results.load`.
    blessing: a ModelBlessing (BLESSED / NOT_BLESSED file, custom property `blessed`)
      as the stock Evaluator writes it, for the stock Pusher and
      LatestBlessedModelStrategy.
  """
  SPEC_CLASS = RetrievalEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
               baseline_model: Optional[types.BaseChannel] = None,
               movies: Optional[types.BaseChannel] = None,
               config: configs.EvaluatorConfig = configs.EvaluatorConfig()):
    """Constructs the component.

    Args:
      examples: Raw ratings Examples (MovieLensExampleGen), splits 'train' and 'eval'.
      model: The Trainer's Model (layout in contracts/artifacts.py).
      baseline_model: The latest blessed Model (a LatestBlessedModelStrategy Resolver's
        output), or None to compare with the popularity and EASE baselines only.
      movies: The movie catalog Examples (MovieLensExampleGen's `movies`), for the
        titles in the HTML report; without it the report shows movie ids.
      config: Cutoffs, sample size, baselines, report and blessing thresholds; see
        `configs.EvaluatorConfig` (validated when it is built).
    """
    spec = RetrievalEvaluatorSpec(
        examples=examples, model=model, baseline_model=baseline_model, movies=movies,
        **component_params.as_exec_properties(config),
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing))
    super().__init__(spec=spec)
