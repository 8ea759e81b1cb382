"""The Trainer's run_fn: train the two-tower model, then export it for serving.

The stages, each in its own module: load the transformed train split and carve the
validation slice (data.py); fit the towers, the epoch chosen on the slice (training.py,
validation.py); fit and choose the EASE factor (ease_factor_selection.py); train the
optional ranking stage (ranking.py); export the serving model, the query model and the
candidate embeddings (export.py).

The Trainer's `custom_config` carries {"trainer": TrainerConfig fields, "transform":
TransformConfig fields, "context": ContextConfig fields, "data": DataConfig fields} from
contracts/configs.py (`pipeline.trainer_custom_config`), and `catalog_files` (the movie
catalog examples), which components.retrieval_trainer adds at run time.
"""
import dataclasses
import os
from typing import Any, Mapping

from absl import logging
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from contracts import configs
from contracts import features
from trainer_module import artifact_files
from trainer_module import data
from trainer_module import ease_factor_selection
from trainer_module import export
from trainer_module import histories
from trainer_module import ranking
from trainer_module import towers
from trainer_module import training
from trainer_module import validation as validation_lib


@dataclasses.dataclass(frozen=True)
class RunConfigs:
  """The config groups of one Trainer run, rebuilt from its `custom_config`."""
  trainer: configs.TrainerConfig
  transform: configs.TransformConfig
  context: configs.ContextConfig
  data: configs.DataConfig
  catalog_files: Any

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
        catalog_files=custom_config[configs.CATALOG_FILES_KEY])


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains on the transformed train split and exports the serving model.

  The eval split (`fn_args.eval_files`) is the Evaluator's and is never read: the epoch is
  chosen on a validation slice of the train split (`validation_fraction`).

  Args:
    fn_args: From the TFX Trainer; see the module docstring for `custom_config`.
  """
  run = RunConfigs.from_custom_config(fn_args.custom_config or {})
  config, optimization = run.trainer, run.trainer.optimization
  targets_ratio = validation_lib.validation_targets_ratio(optimization.validation_fraction,
                                                          run.data)
  tf.keras.utils.set_random_seed(optimization.seed)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  max_context = run.context.max_context

  train_data = data.load_transformed(fn_args.train_files, tft_output,
                                     config.towers.max_title_tokens, max_context)
  if config.ranking.model == configs.NO_RANKING:
    # Only the ranking stage reads the rating; retrieval's batches stay as they were.
    train_data.pop(features.RATING_LABEL, None)
  model = training.build_model(tft_output, config, run.transform, max_context)
  if model.uses_context and features.CONTEXT_MOVIE_INDICES not in train_data:
    raise ValueError(f"The {config.towers.query_tower!r} query tower reads "
                     f"{features.CONTEXT_MOVIE_IDS!r}, which the transformed examples lack: "
                     "run the UserContext component before Transform.")
  sizes = training.vocabulary_sizes(tft_output, run.transform)
  validation = None
  if optimization.validation_fraction > 0:
    validation = data.split_validation(train_data, optimization.validation_fraction,
                                       optimization.seed, sizes.movies)
    # The slice has its own cleaned contexts and shares the other features; of the whole
    # split, the export reads only users, movies and times, so the uncleaned contexts are
    # freed before training.
    train_data = data.without_lists(train_data)
  logging.info("Training %s/%s on %d examples, validating on %s (the eval split is left "
               "to the Evaluator).", config.towers.query_tower, config.towers.candidate_tower,
               len(validation.train) if validation else data.num_examples(train_data),
               data.num_examples(validation.validation) if validation else "none")
  history = training.train(model, train_data, validation, config, fn_args.model_run_dir,
                           targets_ratio)
  factor, selection = ease_factor_selection.select(model, train_data, validation, config,
                                                   sizes, targets_ratio)
  history.update(ease_factor_selection.history_entries(selection))
  ranker = None
  if config.ranking.model != configs.NO_RANKING:
    ranker, ranking_history = ranking.train_stage(train_data, validation, config, sizes)
    history.update(ranking_history)
  # TFX puts the serving model in <model uri>/Format-Serving (path_utils).
  model_uri = os.path.dirname(fn_args.serving_model_dir.rstrip("/"))
  artifact_files.write_history(model_uri, history)
  if ranker is not None:
    ranking.write_serving_config(model_uri, config)

  export.export_all(export.ExportInputs(
      model_uri=model_uri,
      serving_model_dir=fn_args.serving_model_dir, tft_output=tft_output,
      retrieval_model=model, ranker=ranker,
      ranking_candidates=config.ranking.candidates, ranking_weight=config.ranking.weight,
      raw_catalog=data.read_raw_catalog(run.catalog_files),
      max_title_tokens=config.towers.max_title_tokens, top_k=config.serving.top_k,
      reference_timestamp=int(tf.reduce_max(train_data[features.TIMESTAMP_SECONDS])),
      seen_movies=histories.seen_movies(train_data, tft_output),
      user_histories=data.user_histories(
          train_data, tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB), sizes.users,
          max_context),
      ease_factor=factor.for_serving(train_data[features.USER_ID_INDEX].numpy(),
                                     train_data[features.MOVIE_ID_INDEX].numpy(), sizes.users)
      if factor else None))
