"""MovieLensExampleGen: a custom ExampleGen for every GroupLens MovieLens format."""
from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts

from components import component_params
from components.movielens_example_gen import executor
from contracts import artifacts
from contracts import configs
from movielens import sources


class MovieLensExampleGenSpec(types.ComponentSpec):
  """Parameters (the data location and the `configs.DataConfig` fields) and outputs."""
  PARAMETERS = {
      executor.DATA_DIR_KEY: component_spec.ExecutionParameter(type=str),
      **component_params.execution_parameters(configs.DataConfig),
      # Changes when the content of local data files changes (sources.content_fingerprint),
      # so TFX's cache is not reused for new data.
      executor.INPUT_FINGERPRINT_KEY: component_spec.ExecutionParameter(
          type=str, optional=True),
  }
  INPUTS = {}
  OUTPUTS = {
      artifacts.EXAMPLES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples),
      artifacts.MOVIES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples),
  }


class MovieLensExampleGen(base_beam_component.BaseBeamComponent):
  """Turns MovieLens files into a ratings stream and a movie catalog of tf.Examples.

  Reads ml-100k, ml-1m and the ml-latest / ml-20m / ml-25m CSV family, from a directory
  or the official zip (auto-detected). Outputs:
    examples: ratings with `features.RATING_FEATURES`, splits 'train' and 'eval'.
    movies: the whole catalog (rated or not) with `features.CANDIDATE_FEATURES`, split
      'catalog'.
  """
  SPEC_CLASS = MovieLensExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, data_dir: str, config: configs.DataConfig = configs.DataConfig()):
    """Constructs the component.

    Args:
      data_dir: A MovieLens directory or zip (local, gs:// or another TF filesystem).
      config: How to split and filter the ratings; see `configs.DataConfig`.
    """
    spec = MovieLensExampleGenSpec(
        data_dir=data_dir, **component_params.as_exec_properties(config),
        input_fingerprint=sources.content_fingerprint(data_dir),
        examples=types.Channel(type=standard_artifacts.Examples),
        movies=types.Channel(type=standard_artifacts.Examples))
    super().__init__(spec=spec)
