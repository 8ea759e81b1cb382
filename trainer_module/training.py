"""Building and fitting the two-tower retrieval model.

The model is sized from the Transform output (vocabularies, OOV buckets) and fitted with
Keras `fit` on the streamed train split (trainer_module/inputs.py); with a validation
slice, `validation.ValidationHitRate` chooses the epoch.
"""
import time
from typing import Any, Dict, Optional, Tuple

import tensorflow as tf
import tensorflow_transform as tft

from contracts import artifacts
from contracts import configs
from contracts import features
from contracts import progress
from trainer_module import data
from trainer_module import distribution
from trainer_module import inputs
from trainer_module import model as model_lib
from trainer_module import towers
from trainer_module import validation as validation_lib
from trainer_module import validation_slice


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
  return model_lib.make_optimizer(config.optimization.optimizer, config.optimization.learning_rate)


def build_model(tft_output: tft.TFTransformOutput, trainer_config: configs.TrainerConfig,
                transform_config: configs.TransformConfig,
                max_context: int = configs.ContextConfig().max_context,
                ) -> model_lib.RetrievalModel:
  """A compiled, untrained RetrievalModel sized from the Transform output.

  learning_rate, temperature and epochs left at 0 take the query tower's defaults.
  """
  trainer_config = towers.resolve_config(trainer_config)
  model = model_lib.RetrievalModel(
      vocabulary_sizes(tft_output, transform_config), trainer_config,
      data.movie_sampling_probability(tft_output, transform_config.num_oov_buckets),
      max_context=max_context)
  model.compile(optimizer=make_optimizer(trainer_config))
  # The logged losses are metrics, already the whole step's on every worker; Keras's
  # default off TPU ("sum") would add them up across workers.
  model.distribute_reduction_method = "first"
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
    val_hit_rate = logs.get("val_hit_rate")
    progress.LOGGER.info(
        "Epoch %d: %.0f training examples/s, mean loss %.4f, validation mean loss %.4f%s",
        epoch + 1, rate, logs.get("mean_loss", float("nan")),
        logs.get("val_mean_loss", float("nan")),
        "" if val_hit_rate is None else f", validation hit rate {val_hit_rate:.4f}")


def for_strategy(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy, count: int,
                 batch_size: int) -> Tuple[tf.data.Dataset, Optional[int]]:
  """(dataset, steps per epoch) to fit under `strategy`: unchanged (None: one pass) on one
  worker; across workers sharded by element (`distribution.shard`), repeated, and cut to
  the same number of steps on every worker, since each step's collective ops need every
  worker and sharded passes may differ by a batch."""
  if not distribution.is_multi_worker(strategy):
    return dataset, None
  return distribution.shard(dataset, strategy).repeat(), max(1, count // batch_size)


def train(model: model_lib.RetrievalModel, training_input: inputs.TrainingInput,
          validation: Optional[validation_slice.ValidationSlice],
          config: configs.TrainerConfig, log_dir: str,
          targets_ratio: float = 1.0) -> Dict[str, Any]:
  """Fits `model` on the streamed train split; returns the Keras history plus
  throughput per epoch.

  Args:
    model: A compiled model.
    training_input: The train split to stream.
    validation: The validation slice, or None to train every epoch without validation.
    config: Hyperparameters, family defaults resolved or not.
    log_dir: TensorBoard logs.
    targets_ratio: Scales the validation cutoff (`validation.validation_targets_ratio`).

  Returns:
    Per-epoch lists: "mean_loss", "examples_per_second", and with validation
    "val_mean_loss", "val_hit_rate"; "epoch_kept": [the epoch whose weights were kept].
  """
  optimization = towers.resolve_config(config).optimization
  throughput = _Throughput(training_input.num_examples)
  callbacks = []
  validation_data = None
  strategy = model.distribute_strategy
  validation_steps = None
  if validation:
    validation_data, validation_steps = for_strategy(
        training_input.batches(optimization.batch_size, files=validation.files), strategy,
        validation.num_examples, optimization.batch_size)
    # Before the throughput callback, whose one line per epoch then shows the hit rate.
    callbacks.append(validation_lib.ValidationHitRate(
        validation, optimization.early_stopping_patience, optimization.seed, targets_ratio))
  callbacks += [throughput, tf.keras.callbacks.TensorBoard(log_dir=log_dir)]
  fitted, steps = for_strategy(
      training_input.batches(optimization.batch_size, optimization.shuffle_buffer,
                             optimization.seed),
      strategy, training_input.num_examples, optimization.batch_size)
  history = model.fit(fitted, validation_data=validation_data, epochs=optimization.epochs,
                      steps_per_epoch=steps, validation_steps=validation_steps, verbose=2,
                      callbacks=callbacks)
  result = {**history.history, "examples_per_second": throughput.per_epoch}
  result[artifacts.HISTORY_EPOCH_KEPT] = [callbacks[0].best_epoch if validation
                                          else len(throughput.per_epoch)]
  return result
