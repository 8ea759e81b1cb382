"""Trainer throughput: training examples per second of the two-tower model on the
streamed training input, and of that input alone.

Reads the Transform output and UserContext's user histories of a local pipeline run
(`make run` first, or point --pipeline_root at one) and builds the training input as
run_fn does (trainer_module/trainer.py): the train split's transformed examples streamed
through the default shuffle buffer, each batch's context joined from the user histories
when the query tower reads it (`inputs.TrainingInput`). For each batch size it then times
--epochs passes of

  * the input alone: iterating the dataset without a model, so that a reader sees whether
    the input or the model bounds training (an input / training ratio near 1 means the
    input does; the two share the CPUs when training);
  * `model.fit` of the model `training.build_model` builds, after one warm-up epoch (which
    includes tf.function tracing), without validation or callbacks.

Prints one line per batch size, and writes them to docs/benchmarks/trainer_throughput.md,
or trainer_throughput-<data set>.md for a root that ran on another data set than the
built-in one (benchmarks/results.py).

  python benchmarks/trainer_throughput.py [--pipeline_root tfx_root] [--batch_sizes 1024]
      [--epochs 3]
"""
import os
import time
from typing import List

from absl import app
from absl import flags

import pipeline_outputs
import results

from contracts import artifacts
from contracts import configs
from trainer_module import data
from trainer_module import inputs
from trainer_module import towers
from trainer_module import training

import tensorflow as tf  # pylint: disable=g-bad-import-order
import tensorflow_transform as tft  # pylint: disable=g-bad-import-order

_ROOT = flags.DEFINE_string("pipeline_root", "tfx_root", "Root of a local pipeline run.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", None,
                                 "Batch sizes to time; default: the configured one.")
_EPOCHS = flags.DEFINE_integer("epochs", 3, "Timed epochs (after one warm-up epoch).")
# Issue 34's target, at the default batch size of 1,024.
TARGET_EXAMPLES_PER_SECOND = 40_000


def _split_files(root: str, node_id: str, output_key: str, split: str) -> List[str]:
  """The file pattern of one split of the newest run's output, as the Trainer gets it."""
  directory = pipeline_outputs.latest_output(root, node_id, output_key)
  return [os.path.join(directory, f"Split-{split}", "*")]


def training_input(root: str, tft_output: tft.TFTransformOutput,
                   config: configs.TrainerConfig) -> inputs.TrainingInput:
  """The train split's streamed input of the run under `root`, built as run_fn builds it
  (the default transform and context configs): the histories joined when `config`'s
  query tower reads the context."""
  train_files = _split_files(root, "Transform", "transformed_examples", artifacts.TRAIN_SPLIT)
  max_context = configs.ContextConfig().max_context
  histories = None
  if config.towers.query_tower in towers.CONTEXT_QUERY_TOWERS:
    sizes = training.vocabulary_sizes(tft_output, configs.TransformConfig())
    histories = data.read_user_histories(
        _split_files(root, "UserContext", artifacts.USER_HISTORIES_KEY, artifacts.USERS_SPLIT),
        tft_output, sizes.users, max_context).fitted
  return inputs.TrainingInput(
      train_files=train_files,
      num_examples=len(data.read_interactions(train_files, tft_output)),
      tft_output=tft_output, max_title_tokens=config.towers.max_title_tokens,
      histories=histories, max_context=max_context)


def input_rate(dataset: tf.data.Dataset, num_examples: int, epochs: int) -> float:
  """Examples per second of iterating `dataset` (no model) `epochs` times, after one
  warm-up pass."""
  for _ in dataset:
    pass
  start = time.perf_counter()
  for _ in range(epochs):
    for _ in dataset:
      pass
  return num_examples * epochs / (time.perf_counter() - start)


def training_rate(model: tf.keras.Model, dataset: tf.data.Dataset, num_examples: int,
                  epochs: int) -> float:
  """Examples per second of `epochs` epochs of `model.fit`, after one warm-up epoch."""
  model.fit(dataset, epochs=1, verbose=0)  # Tracing and first allocations.
  start = time.perf_counter()
  model.fit(dataset, epochs=epochs, verbose=0)
  return num_examples * epochs / (time.perf_counter() - start)


def measure(train_input: inputs.TrainingInput, batch_size: int, epochs: int) -> List[str]:
  """One table row: the input's and training's examples per second at `batch_size`."""
  config = towers.resolve_config(configs.TrainerConfig.from_flags(batch_size=batch_size))
  optimization = config.optimization
  model = training.build_model(train_input.tft_output, config, configs.TransformConfig(),
                               train_input.max_context)
  dataset = train_input.batches(batch_size, optimization.shuffle_buffer, optimization.seed)
  streamed = input_rate(dataset, train_input.num_examples, epochs)
  trained = training_rate(model, dataset, train_input.num_examples, epochs)
  print(f"batch_size={batch_size}: input alone {streamed:,.0f} examples/s, training "
        f"{trained:,.0f} examples/s (target >= {TARGET_EXAMPLES_PER_SECOND:,})", flush=True)
  return [batch_size, f"{streamed:,.0f}", f"{trained:,.0f}", f"{streamed / trained:.1f}x",
          f">= {TARGET_EXAMPLES_PER_SECOND:,}",
          "met" if trained >= TARGET_EXAMPLES_PER_SECOND else "MISSED"]


def main(argv):
  del argv
  name = results.results_name(__file__, results.run_data_set(_ROOT.value))
  base = configs.TrainerConfig()
  tft_output = tft.TFTransformOutput(
      pipeline_outputs.latest_output(_ROOT.value, "Transform", "transform_graph"))
  train_input = training_input(_ROOT.value, tft_output, base)
  print(f"{train_input.num_examples:,} training examples, {base.towers.query_tower} query "
        f"tower, {os.cpu_count()} CPUs, TF {tf.__version__}")
  batch_sizes = [int(b) for b in (_BATCH_SIZES.value or [base.optimization.batch_size])]
  rows = [measure(train_input, batch_size, _EPOCHS.value) for batch_size in batch_sizes]
  results.write(name, "Trainer throughput", [(
      "Training examples per second",
      f"{train_input.num_examples:,} training examples streamed as run_fn streams them "
      f"(shuffle buffer {base.optimization.shuffle_buffer:,}, "
      + ("context joined from the user histories" if train_input.histories is not None
         else "no context") +
      f"), {base.towers.query_tower} query tower, {_EPOCHS.value} timed epochs after one "
      f"warm-up, TF {tf.__version__}. Input alone: the dataset iterated without a model; "
      "a ratio near 1 means the input bounds training.\n\n"
      + results.table(["batch size", "input alone examples/s", "training examples/s",
                       "input / training", "target", "verdict"], rows))])


if __name__ == "__main__":
  app.run(main)
