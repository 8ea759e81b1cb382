"""UserContext: the validation split, and each user's history for the context towers."""
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
      executor.HISTORIES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Examples),
  }


class UserContext(base_beam_component.BaseBeamComponent):
  """Carves the validation split from train and writes each user's history.

  Sits between ExampleGen and StatisticsGen. Outputs: `ratings` (splits 'train',
  'validation', 'eval': the same examples, the validation ratings a seeded share of
  train's) and `user_histories` (one example per user: the most recent train movies,
  `features.HISTORY_FEATURES`; rule in `context.py`). The Trainer joins a rating's
  context from the histories by user, so statistics, schema and Transform read each
  rating once, without a copy of its user's history.
  """
  SPEC_CLASS = UserContextSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel,
               config: configs.ContextConfig = configs.ContextConfig()):
    """Constructs the component.

    Args:
      examples: Ratings Examples with splits 'train' and 'eval' (MovieLensExampleGen).
      config: `max_context`, `validation_fraction`, `validation_seed`; see
        `configs.ContextConfig`.
    """
    spec = UserContextSpec(
        examples=examples, **component_params.as_exec_properties(config),
        **{executor.OUTPUT_KEY: types.Channel(type=standard_artifacts.Examples),
           executor.HISTORIES_KEY: types.Channel(type=standard_artifacts.Examples)})
    super().__init__(spec=spec)
