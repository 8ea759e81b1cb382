"""Trainer throughput: training examples per second of the two-tower model.

Reads the Transform output of a local pipeline run (`make run` first, or point
--pipeline_root at one), carves the validation slice and builds the model exactly as run_fn
does, and times epochs over the fitted rows after the first (which includes tf.function
tracing). Prints one line per configuration, and writes them to docs/benchmarks/
trainer_throughput.md, or trainer_throughput-<data set>.md for a root that ran on another
data set than the built-in one (benchmarks/results.py).

  python benchmarks/trainer_throughput.py [--pipeline_root tfx_root] [--batch_sizes 4096]
"""
import os
import time

from absl import app
from absl import flags

import pipeline_outputs
import results

from contracts import configs
from trainer_module import data
from trainer_module import training

import tensorflow as tf  # pylint: disable=g-import-not-at-top
import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top

_ROOT = flags.DEFINE_string("pipeline_root", "tfx_root", "Root of a local pipeline run.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", None,
                                 "Batch sizes to time; default: the configured one.")
_EPOCHS = flags.DEFINE_integer("epochs", 3, "Timed epochs (after one warm-up epoch).")
TARGET_EXAMPLES_PER_SECOND = 30_000


def main(argv):
  del argv
  name = results.results_name(__file__, results.run_data_set(_ROOT.value))
  transform_graph = pipeline_outputs.latest_output(_ROOT.value, "Transform", "transform_graph")
  examples = pipeline_outputs.latest_output(_ROOT.value, "Transform", "transformed_examples")
  tft_output = tft.TFTransformOutput(transform_graph)
  base = configs.TrainerConfig()
  train_data = data.load_transformed([os.path.join(examples, "Split-train", "*")], tft_output,
                                     base.towers.max_title_tokens)
  fitted = data.Rows(train_data)
  if base.optimization.validation_fraction > 0:
    sizes = training.vocabulary_sizes(tft_output, configs.TransformConfig())
    fitted = data.split_validation(train_data, base.optimization.validation_fraction,
                                   base.optimization.seed, sizes.movies).train
  count = len(fitted)
  print(f"{count} training examples, {os.cpu_count()} CPUs, TF {tf.__version__}")
  rows = []
  for batch_size in [int(b) for b in (_BATCH_SIZES.value or [base.optimization.batch_size])]:
    config = configs.TrainerConfig.from_flags(batch_size=batch_size)
    model = training.build_model(tft_output, config, configs.TransformConfig())
    dataset = data.training_dataset(fitted, batch_size, config.optimization.seed)
    model.fit(dataset, epochs=1, verbose=0)  # Warm-up: tracing and first allocations.
    start = time.perf_counter()
    model.fit(dataset, epochs=_EPOCHS.value, verbose=0)
    rate = count * _EPOCHS.value / (time.perf_counter() - start)
    print(f"batch_size={batch_size}: {rate:,.0f} training examples/s "
          f"(target >= {TARGET_EXAMPLES_PER_SECOND:,})")
    rows.append([batch_size, f"{rate:,.0f}", f">= {TARGET_EXAMPLES_PER_SECOND:,}",
                 "met" if rate >= TARGET_EXAMPLES_PER_SECOND else "MISSED"])
  results.write(name, "Trainer throughput", [(
      "Training examples per second",
      f"{count:,} fitted training examples (validation slice carved as run_fn does), "
      f"{_EPOCHS.value} timed epochs after one warm-up, TF {tf.__version__}.\n\n"
      + results.table(["batch size", "training examples/s", "target", "verdict"], rows))])


if __name__ == "__main__":
  app.run(main)
