"""UserContext: each rating gets the user's other train movies, for the context towers."""
from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts

from components import component_params
from components.user_context import executor
from contracts import configs


class UserContextSpec(types.ComponentSpec):
  """Parameters (the `configs.ContextConfig` fields), the ratings in, the ratings out."""
  PARAMETERS = component_params.execution_parameters(configs.ContextConfig)
  INPUTS = {
      executor.EXAMPLES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples),
  }
  OUTPUTS = {
      executor.OUTPUT_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples),
  }


class UserContext(base_beam_component.BaseBeamComponent):
  """Adds `context_movie_ids` to every rating, built from the train split only.

  Sits between ExampleGen and StatisticsGen: statistics, schema, validation and Transform
  all see the context like any raw feature. For each rating, the context is the user's
  train movies other than the rating's own, most recent first, up to `max_context`,
  padded with "" to exactly `max_context` values (rule in `context.py`). Output:
  `examples_with_context`, splits 'train' and 'eval', every input feature kept.
  """
  SPEC_CLASS = UserContextSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel,
               config: configs.ContextConfig = configs.ContextConfig()):
    """Constructs the component.

    Args:
      examples: Ratings Examples with splits 'train' and 'eval' (MovieLensExampleGen).
      config: `max_context`; see `configs.ContextConfig`.
    """
    spec = UserContextSpec(
        examples=examples, **component_params.as_exec_properties(config),
        examples_with_context=types.Channel(type=standard_artifacts.Examples))
    super().__init__(spec=spec)
