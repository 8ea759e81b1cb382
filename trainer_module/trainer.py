"""The Trainer's run_fn: train the two-tower model, then export it for serving.

The stages, each in its own module: read the ratings' columns and the user histories
(data.py) and the validation split (validation_slice.py); fit the towers on the streamed
train split (inputs.py, training.py), the epoch chosen on the validation split
(validation.py); fit and choose the EASE factor (ease_factor_selection.py); train the
optional ranking stage (ranking.py); export the serving model, the query model and the
candidate embeddings (export.py).

The Trainer's `custom_config` carries {"trainer": TrainerConfig fields, "transform":
TransformConfig fields, "context": ContextConfig fields, "data": DataConfig fields} from
contracts/configs.py (`pipeline.trainer_custom_config`), and `catalog_files` (the movie
catalog examples) and `history_files` (UserContext's user histories), which
components.retrieval_trainer adds at run time.
"""
import dataclasses
import os
from typing import Any, Mapping, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from contracts import configs
from trainer_module import artifact_files
from trainer_module import data
from trainer_module import distribution
from trainer_module import ease_factor_selection
from trainer_module import export
from trainer_module import histories as histories_lib
from trainer_module import inputs
from trainer_module import model as model_lib
from trainer_module import ranking
from trainer_module import towers
from trainer_module import training
from trainer_module import validation as validation_lib
from trainer_module import validation_slice


@dataclasses.dataclass(frozen=True)
class RunConfigs:
  """The config groups of one Trainer run, rebuilt from its `custom_config`."""
  trainer: configs.TrainerConfig
  transform: configs.TransformConfig
  context: configs.ContextConfig
  data: configs.DataConfig
  catalog_files: Any
  history_files: Optional[Any] = None

  def user_histories(self, tft_output: tft.TFTransformOutput,
                     num_users: int) -> Optional[data.UserHistories]:
    """UserContext's user histories in vocabulary indices, or None without them."""
    if not self.history_files:
      return None
    return data.read_user_histories(self.history_files, tft_output, num_users,
                                    self.context.max_context)

  @classmethod
  def from_custom_config(cls, custom_config: Mapping[str, Any]) -> "RunConfigs":
    if configs.CATALOG_FILES_KEY not in custom_config:
      raise ValueError(f"custom_config has no {configs.CATALOG_FILES_KEY!r}: use "
                       "components.retrieval_trainer.RetrievalTrainer, which adds the "
                       "catalog.")
    return cls(
        trainer=towers.resolve_config(
            configs.TrainerConfig.from_dict(custom_config.get(configs.TRAINER_KEY))),
        transform=configs.TransformConfig.from_dict(custom_config.get(configs.TRANSFORM_KEY)),
        context=configs.ContextConfig.from_dict(custom_config.get(configs.CONTEXT_KEY)),
        data=configs.DataConfig.from_dict(custom_config.get(configs.DATA_KEY)),
        catalog_files=custom_config[configs.CATALOG_FILES_KEY],
        history_files=custom_config.get(configs.HISTORY_FILES_KEY))


def _read_ratings(fn_args: tfx.components.FnArgs, tft_output: tft.TFTransformOutput,
                  has_validation: bool, with_ratings: bool
                  ) -> Tuple[data.Interactions, data.Interactions]:
  """(whole, fitted): the columns of the train and validation splits' ratings, and the
  train split's alone (a view of the first, held once)."""
  fitted = data.read_interactions(fn_args.train_files, tft_output, with_ratings)
  if not has_validation:
    return fitted, fitted
  count = len(fitted)
  whole = data.Interactions.concat(
      [fitted, data.read_interactions(fn_args.eval_files, tft_output, with_ratings)])
  return whole, whole.head(count)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains on the transformed train split and exports the serving model.

  The eval files the Trainer is given (`fn_args.eval_files`) are the validation split
  that UserContext carved from train (the pipeline's EvalArgs); they choose the epoch. The
  Evaluator's eval split is never read.

  Args:
    fn_args: From the TFX Trainer; see the module docstring for `custom_config`.
  """
  # First: a multi-worker strategy must configure TensorFlow before any op runs.
  strategy = distribution.strategy_from_tf_config()
  run = RunConfigs.from_custom_config(fn_args.custom_config or {})
  config, optimization = run.trainer, run.trainer.optimization
  has_validation = run.context.validation_fraction > 0
  targets_ratio = validation_lib.validation_targets_ratio(run.context.validation_fraction,
                                                          run.data)
  tf.keras.utils.set_random_seed(optimization.seed)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  max_context, max_title_tokens = run.context.max_context, config.towers.max_title_tokens
  sizes = training.vocabulary_sizes(tft_output, run.transform)
  with strategy.scope():
    model = training.build_model(tft_output, config, run.transform, max_context)
  with_ranking = config.ranking.model != configs.NO_RANKING

  histories = run.user_histories(tft_output, sizes.users)
  whole, fitted = _read_ratings(fn_args, tft_output, has_validation, with_ranking)
  raw_catalog = data.read_raw_catalog(run.catalog_files)
  # The ranking stage reads the context whenever there are histories, whatever the tower.
  reads_context = model.uses_context or with_ranking
  if model.uses_context and histories is None:
    raise ValueError(f"The {config.towers.query_tower!r} query tower reads the context: "
                     f"custom_config needs {configs.HISTORY_FILES_KEY!r} (UserContext's user "
                     "histories, which components.retrieval_trainer adds).")
  training_input = inputs.TrainingInput(
      train_files=fn_args.train_files, num_examples=len(fitted), tft_output=tft_output,
      max_title_tokens=max_title_tokens,
      histories=histories.fitted if reads_context and histories else None,
      max_context=max_context)
  validation = None
  if has_validation:
    validation = validation_slice.build(
        fn_args.eval_files, tft_output, fitted,
        data.transformed_catalog(tft_output, raw_catalog, max_title_tokens),
        max_title_tokens, histories.fitted if model.uses_context else None, max_context)
  logging.info("Training %s/%s on %d examples, validating on %s (the eval split is left "
               "to the Evaluator).", config.towers.query_tower, config.towers.candidate_tower,
               len(fitted), validation.num_examples if validation else "none")
  history = training.train(model, training_input, validation, config, fn_args.model_run_dir,
                           targets_ratio)
  factor, selection = ease_factor_selection.select(model, whole, fitted, validation, config,
                                                   sizes, targets_ratio)
  history.update(ease_factor_selection.history_entries(selection))
  ranker = None
  if with_ranking:
    ranker, ranking_history = ranking.train_stage(training_input, fitted, validation, config,
                                                  sizes)
    history.update(ranking_history)
  # TFX puts the serving model in <model uri>/Format-Serving (path_utils). Every worker
  # exports (saving runs collective ops), only the chief into the Model artifact.
  model_uri = os.path.dirname(fn_args.serving_model_dir.rstrip("/"))
  serving_dir_name = os.path.basename(fn_args.serving_model_dir.rstrip("/"))
  with distribution.saving_model_dir(model_uri, strategy) as export_uri:
    artifact_files.write_history(export_uri, history)
    if ranker is not None:
      ranking.write_serving_config(export_uri, config)
    export.export_all(export.ExportInputs(
        model_uri=export_uri,
        serving_model_dir=os.path.join(export_uri, serving_dir_name), tft_output=tft_output,
        retrieval_model=model, ranker=ranker,
        ranking_candidates=config.ranking.candidates, ranking_weight=config.ranking.weight,
        raw_catalog=raw_catalog, max_title_tokens=max_title_tokens,
        top_k=config.serving.top_k, reference_timestamp=int(whole.times.max()),
        seen_movies=histories_lib.seen_movies(whole, tft_output),
        user_histories=(histories.whole if histories else
                        np.full([sizes.users, max_context], model_lib.PADDING, np.int64)),
        ease_factor=factor.for_serving(whole.users, whole.movies, sizes.users)
        if factor else None))
