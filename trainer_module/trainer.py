"""The Trainer's run_fn: train the two-tower model, then export it for serving.

The Trainer's `custom_config` carries {"trainer": TrainerConfig fields, "transform":
TransformConfig fields} from contracts/configs.py, and `catalog_files` (the movie catalog
examples), which components.retrieval_trainer adds at run time.
"""
import json
import os
import time
from typing import Any, Dict, List, Mapping

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from contracts import artifacts
from contracts import configs
from contracts import features
from contracts import progress
from trainer_module import data
from trainer_module import export
from trainer_module import model as model_lib

def vocabulary_sizes(tft_output: tft.TFTransformOutput,
                     transform_config: configs.TransformConfig) -> model_lib.VocabularySizes:
  """Embedding table sizes from the Transform output, OOV buckets included."""
  def size(name: str) -> int:
    return tft_output.vocabulary_size_by_name(name) + transform_config.num_oov_buckets
  return model_lib.VocabularySizes(
      users=size(features.USER_ID_VOCAB), movies=size(features.MOVIE_ID_VOCAB),
      title_tokens=size(features.TITLE_TOKEN_VOCAB), genres=size(features.GENRE_VOCAB),
      timestamp_buckets=transform_config.timestamp_buckets,
      num_oov_buckets=transform_config.num_oov_buckets)


def make_optimizer(config: configs.TrainerConfig) -> tf.keras.optimizers.Optimizer:
  optimizers = {"adam": tf.keras.optimizers.Adam, "adagrad": tf.keras.optimizers.Adagrad}
  if config.optimizer not in optimizers:
    raise ValueError(f"optimizer must be one of {sorted(optimizers)}, got {config.optimizer!r}.")
  return optimizers[config.optimizer](learning_rate=config.learning_rate)


def build_model(tft_output: tft.TFTransformOutput, trainer_config: configs.TrainerConfig,
                transform_config: configs.TransformConfig) -> model_lib.RetrievalModel:
  """A compiled, untrained RetrievalModel sized from the Transform output."""
  model = model_lib.RetrievalModel(
      vocabulary_sizes(tft_output, transform_config), trainer_config,
      data.movie_sampling_probability(tft_output, transform_config.num_oov_buckets))
  model.compile(optimizer=make_optimizer(trainer_config))
  return model


class _Throughput(tf.keras.callbacks.Callback):
  """Logs training examples per second of each epoch (the first includes tracing).

  The clock stops when validation starts, so the rate counts training steps only.
  """

  def __init__(self, examples_per_epoch: int):
    super().__init__()
    self._examples = examples_per_epoch
    self.per_epoch = []
    self._start = 0.0
    self._train_seconds = 0.0

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.perf_counter()
    self._train_seconds = 0.0

  def on_test_begin(self, logs=None):
    self._train_seconds = time.perf_counter() - self._start

  def on_epoch_end(self, epoch, logs=None):
    seconds = self._train_seconds or (time.perf_counter() - self._start)
    rate = self._examples / seconds
    self.per_epoch.append(rate)
    logs = logs or {}
    progress.LOGGER.info(
        "Epoch %d: %.0f training examples/s, mean loss %.4f, eval mean loss %.4f",
        epoch + 1, rate, logs.get("mean_loss", float("nan")),
        logs.get("val_mean_loss", float("nan")))


def train(model: model_lib.RetrievalModel, train_data: Mapping[str, tf.Tensor],
          eval_data: Mapping[str, tf.Tensor], config: configs.TrainerConfig,
          log_dir: str) -> Dict[str, Any]:
  """Fits `model`; returns the Keras history plus throughput per epoch."""
  throughput = _Throughput(data.num_examples(train_data))
  history = model.fit(
      data.training_dataset(train_data, config.batch_size, config.seed),
      validation_data=data.training_dataset(eval_data, config.batch_size, config.seed,
                                            shuffle=False),
      epochs=config.epochs, verbose=2,
      callbacks=[throughput, tf.keras.callbacks.TensorBoard(log_dir=log_dir)])
  return {**history.history, "examples_per_second": throughput.per_epoch}


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains on the transformed train split and exports the serving model.

  Args:
    fn_args: From the TFX Trainer; see the module docstring for `custom_config`.
  """
  custom_config = fn_args.custom_config or {}
  trainer_config = configs.TrainerConfig.from_dict(custom_config.get(configs.TRAINER_KEY))
  transform_config = configs.TransformConfig.from_dict(custom_config.get(configs.TRANSFORM_KEY))
  if configs.CATALOG_FILES_KEY not in custom_config:
    raise ValueError(f"custom_config has no {configs.CATALOG_FILES_KEY!r}: use "
                     "components.retrieval_trainer.RetrievalTrainer, which adds the catalog.")
  tf.keras.utils.set_random_seed(trainer_config.seed)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)

  train_data = data.load_transformed(fn_args.train_files, tft_output,
                                     trainer_config.max_title_tokens)
  eval_data = data.load_transformed(fn_args.eval_files, tft_output,
                                    trainer_config.max_title_tokens)
  logging.info("Training on %d examples, validating on %d.", data.num_examples(train_data),
               data.num_examples(eval_data))
  model = build_model(tft_output, trainer_config, transform_config)
  history = train(model, train_data, eval_data, trainer_config, fn_args.model_run_dir)
  # TFX puts the serving model in <model uri>/Format-Serving (path_utils).
  model_uri = os.path.dirname(fn_args.serving_model_dir.rstrip("/"))
  write_history(model_uri, history)

  export.export_all(
      model_uri=model_uri,
      serving_model_dir=fn_args.serving_model_dir, tft_output=tft_output,
      retrieval_model=model,
      raw_catalog=data.read_raw_catalog(custom_config[configs.CATALOG_FILES_KEY]),
      max_title_tokens=trainer_config.max_title_tokens, top_k=trainer_config.serving_top_k,
      reference_timestamp=int(tf.reduce_max(train_data[features.TIMESTAMP_SECONDS])),
      seen_movies=seen_movies(train_data, tft_output))


def write_history(model_uri: str, history: Mapping[str, List[float]]) -> None:
  """Per-epoch training history as JSON, where `artifacts.training_history_path` says."""
  path = artifacts.training_history_path(model_uri)
  tf.io.gfile.makedirs(model_uri)
  with tf.io.gfile.GFile(path, "w") as f:
    json.dump({name: [float(value) for value in values] for name, values in history.items()},
              f, indent=1)


def seen_movies(train_data: Mapping[str, tf.Tensor],
                tft_output: tft.TFTransformOutput) -> Dict[str, List[str]]:
  """User id -> ids of the movies they rated in training, from the vocabulary indices.

  Vectorized: ml-25m has 20M training pairs, too many for Python tuples.
  """
  users = tft_output.vocabulary_by_name(features.USER_ID_VOCAB)
  movies = tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB)
  user_index = train_data[features.USER_ID_INDEX].numpy().astype(np.int64)
  movie_index = train_data[features.MOVIE_ID_INDEX].numpy().astype(np.int64)
  # Indices past a vocabulary are OOV buckets: no id to report.
  known = (user_index < len(users)) & (movie_index < len(movies))
  pairs = np.unique(user_index[known] * len(movies) + movie_index[known])
  pair_users, pair_movies = np.divmod(pairs, len(movies))
  starts = np.flatnonzero(np.diff(pair_users, prepend=-1))
  ends = np.append(starts[1:], len(pairs))
  return {users[pair_users[start]].decode(): [movies[m].decode()
                                              for m in pair_movies[start:end]]
          for start, end in zip(starts, ends)}
