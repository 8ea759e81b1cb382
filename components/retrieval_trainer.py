"""RetrievalTrainer: the stock TFX Trainer plus two inputs, the catalog and the histories.

A retrieval model's serving index must cover every movie, including ones never rated in
training, so `run_fn` needs the catalog examples that MovieLensExampleGen writes as a
second output; the context towers need UserContext's user histories, joined to the
ratings by user. The stock Trainer has no slot for more Examples channels; this adds them
and hands their files to `run_fn` as `custom_config["catalog_files"]` and
`custom_config["history_files"]`. Everything else is
the stock GenericExecutor (run_fn, FnArgs, train/eval splits, model outputs).
"""
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import json_utils

from contracts import artifacts
from contracts import configs


class RetrievalTrainerSpec(standard_component_specs.TrainerSpec):
  INPUTS = {
      **standard_component_specs.TrainerSpec.INPUTS,
      artifacts.MOVIES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples),
      artifacts.USER_HISTORIES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Examples),
  }


class Executor(trainer_executor.GenericExecutor):
  """GenericExecutor that adds the catalog's and the user histories' files to
  `fn_args.custom_config`."""

  def _GetFnArgs(self, input_dict: Dict[str, List[types.Artifact]],
                 output_dict: Dict[str, List[types.Artifact]],
                 exec_properties: Dict[str, Any]):
    fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
    catalog_dir = artifact_utils.get_split_uri(input_dict[artifacts.MOVIES_KEY],
                                               artifacts.CATALOG_SPLIT)
    histories_dir = artifact_utils.get_split_uri(input_dict[artifacts.USER_HISTORIES_KEY],
                                                 artifacts.USERS_SPLIT)
    fn_args.custom_config = {**(fn_args.custom_config or {}),
                             configs.CATALOG_FILES_KEY: [f"{catalog_dir}/*"],
                             configs.HISTORY_FILES_KEY: [f"{histories_dir}/*"]}
    return fn_args


class RetrievalTrainer(base_component.BaseComponent):
  """Trains with a `run_fn` on transformed examples; also reads the movie catalog and
  UserContext's user histories."""
  SPEC_CLASS = RetrievalTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel,
               schema: types.BaseChannel, movies: types.BaseChannel,
               user_histories: types.BaseChannel, run_fn: str,
               custom_config: Optional[Dict[str, Any]] = None,
               train_args: Optional[trainer_pb2.TrainArgs] = None,
               eval_args: Optional[trainer_pb2.EvalArgs] = None):
    """Constructs the component.

    Args:
      examples: Transformed examples (Transform's `transformed_examples`).
      transform_graph: Transform's `transform_graph`.
      schema: The raw data schema.
      movies: The catalog examples (MovieLensExampleGen's `movies`).
      user_histories: UserContext's `user_histories` (each user's recent movies).
      run_fn: Import path of the run function, e.g. 'trainer_module.trainer.run_fn'.
      custom_config: JSON-serializable dict passed to run_fn.
      train_args: Train splits (default 'train').
      eval_args: Eval splits (the pipeline gives 'validation').
    """
    spec = RetrievalTrainerSpec(
        examples=examples, transform_graph=transform_graph, schema=schema, movies=movies,
        user_histories=user_histories,
        run_fn=run_fn, custom_config=json_utils.dumps(custom_config or {}),
        train_args=train_args or trainer_pb2.TrainArgs(),
        eval_args=eval_args or trainer_pb2.EvalArgs(),
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun))
    super().__init__(spec=spec)
