"""Trainer memory: peak RSS of loading the transformed train split, carving validation and
reading the fitted rows; memory of the export's seen-movies lists.

The Trainer holds every transformed training example in memory (trainer_module/data.py,
`load_transformed`), then carves the validation slice (`split_validation`, which makes a
copy of the contexts cleaned of the held-out pairs) and reads the rows it fits a batch at a
time (`training_dataset`). All three grow with the number of ratings times the context length,
so they bound the data a machine can train on. This script writes one file of synthetic
transformed examples (the Transform output's feature names and types, a context of
--max_context movies each), loads it repeated up to each size in --rows (rounded up to
whole copies of its 65,536 rows), and prints per size the peak resident memory after
loading, after the validation split and after one pass of the training input over the
fitted rows (batches of 1,024, no model), with the seconds each took. Each size runs in its
own process, so the peaks do not mix.

Last, the export's list of each user's rated movies (`histories.seen_movies`, written by
`artifact_files.write_seen_movies`) holds one entry per distinct training pair. The loaded
copies repeat their pairs, so it is measured on as many distinct random pairs (100 per
user): the resident memory the lists add, and the seconds to build and write them.

  python benchmarks/trainer_memory.py [--rows=1m,4m] [--max_context=50]

The table is printed and written to docs/benchmarks/trainer_memory.md
(benchmarks/results.py).

ml-25m has 20M training ratings (80% of 25M); memory grows linearly in rows, so the
figures extrapolate.
"""
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Tuple

from absl import app
from absl import flags
from absl import logging

import results
import trainer_module  # pylint: disable=unused-import  # Sets TF_USE_LEGACY_KERAS first.
from contracts import features
from trainer_module import data

import numpy as np  # pylint: disable=g-bad-import-order
import tensorflow as tf  # pylint: disable=g-bad-import-order

_ROWS = flags.DEFINE_list("rows", ["1m", "4m"], "Training examples to load, e.g. 1m,4m.")
_MAX_CONTEXT = flags.DEFINE_integer("max_context", 50, "Context movies per example.")
_VALIDATION_FRACTION = flags.DEFINE_float("validation_fraction", 0.05,
                                          "Share carved for validation (the default).")
_CHILD_FILE = flags.DEFINE_string("child_file", None, "Internal: measure one size.")
_CHILD_ROWS = flags.DEFINE_integer("child_rows", 0, "Internal: rows of the measured size.")
_CHILD_SEEN_ROWS = flags.DEFINE_integer("child_seen_rows", 0,
                                        "Internal: distinct pairs of the seen-movies lists.")

_FILE_ROWS = 65_536
_USERS, _MOVIES, _TITLE_TOKENS, _GENRES = 160_000, 60_000, 5, 3
_PAIRS_PER_USER = 100

# The transformed feature spec of the pipeline's Transform output (names from
# contracts.features; list features are VarLen, as tft writes them).
_SPEC = {
    features.USER_ID_INDEX: tf.io.FixedLenFeature([], tf.int64),
    features.MOVIE_ID_INDEX: tf.io.FixedLenFeature([], tf.int64),
    features.TIMESTAMP_SECONDS: tf.io.FixedLenFeature([], tf.int64),
    features.TIMESTAMP_BUCKET: tf.io.FixedLenFeature([], tf.int64),
    features.TIMESTAMP_NORMALIZED: tf.io.FixedLenFeature([], tf.float32),
    features.TITLE_TOKENS: tf.io.VarLenFeature(tf.int64),
    features.GENRE_INDICES: tf.io.VarLenFeature(tf.int64),
    features.CONTEXT_MOVIE_INDICES: tf.io.VarLenFeature(tf.int64),
}


class _TransformOutput:
  """What the Trainer reads of a TFTransformOutput here: the feature spec (for
  `data.load_transformed`) and the id vocabularies (for `histories.seen_movies`)."""

  def __init__(self, num_users: int = 0):
    self._users = [str(100_000 + user).encode() for user in range(num_users)]
    self._movies = [str(movie + 1).encode() for movie in range(_MOVIES)]

  def transformed_feature_spec(self):
    return dict(_SPEC)

  def vocabulary_by_name(self, name: str):
    return self._users if name == features.USER_ID_VOCAB else self._movies


def _parse_rows(text: str) -> int:
  text = text.strip().lower()
  scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
  return int(float(text.rstrip("km")) * scale)


def _write_file(path: str, max_context: int) -> None:
  rng = np.random.default_rng(0)
  def ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for _ in range(_FILE_ROWS):
      example = tf.train.Example(features=tf.train.Features(feature={
          features.USER_ID_INDEX: ints([rng.integers(_USERS)]),
          features.MOVIE_ID_INDEX: ints([rng.zipf(1.3) % _MOVIES]),
          features.TIMESTAMP_SECONDS: ints([1_500_000_000 + rng.integers(10**8)]),
          features.TIMESTAMP_BUCKET: ints([rng.integers(32)]),
          features.TIMESTAMP_NORMALIZED: tf.train.Feature(
              float_list=tf.train.FloatList(value=[rng.normal()])),
          features.TITLE_TOKENS: ints(rng.integers(5_000, size=_TITLE_TOKENS)),
          features.GENRE_INDICES: ints(rng.integers(20, size=_GENRES)),
          features.CONTEXT_MOVIE_INDICES: ints(rng.integers(_MOVIES, size=max_context)),
      }))
      writer.write(example.SerializeToString())


def _peak_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mib() -> float:
  with open("/proc/self/status") as f:
    return int(f.read().split("VmRSS:")[1].split()[0]) / 1024.0


def _seen_movies_cost(rows: int) -> Tuple[float, float]:
  """MiB added by the seen-movies lists of `rows` distinct pairs, and seconds to build and
  write them. The loaded file's pairs repeat with each copy, so the pairs are made here.

  Runs in a process of its own: after the other steps' frees, new lists would reuse freed
  memory and barely move the RSS.
  """
  # Imported here, not at the top: trainer_module.trainer brings tfx and tft, whose
  # memory would raise every other column's baseline.
  from trainer_module import artifact_files  # pylint: disable=g-import-not-at-top
  from trainer_module import histories  # pylint: disable=g-import-not-at-top
  num_users = -(-rows // _PAIRS_PER_USER)
  users = np.repeat(np.arange(num_users), _PAIRS_PER_USER)[:rows]
  # Distinct movies per user: a random offset, then a stride of 7 that never wraps onto it.
  offsets = np.random.default_rng(0).integers(_MOVIES, size=num_users)[users]
  steps = np.tile(np.arange(_PAIRS_PER_USER) * 7, num_users)[:rows]
  pairs = {features.USER_ID_INDEX: tf.constant(users),
           features.MOVIE_ID_INDEX: tf.constant((offsets + steps) % _MOVIES)}
  vocabularies = _TransformOutput(num_users)
  before, start = _rss_mib(), time.perf_counter()
  seen = histories.seen_movies(pairs, vocabularies)
  added = _rss_mib() - before
  with tempfile.TemporaryDirectory() as tmp:
    artifact_files.write_seen_movies(tmp, seen)
  return added, time.perf_counter() - start


def _measure(path: str, rows: int) -> None:
  """Runs in a child process; prints one tab-separated line of figures."""
  start_mib = _peak_mib()
  start = time.perf_counter()
  train = data.load_transformed([path] * math.ceil(rows / _FILE_ROWS), _TransformOutput(),
                                max_title_tokens=16)
  load_s, load_mib = time.perf_counter() - start, _peak_mib()
  held_bytes = sum(int(np.prod(t.shape)) * t.dtype.size for t in train.values())
  count = data.num_examples(train)
  start = time.perf_counter()
  validation = data.split_validation(train, _VALIDATION_FRACTION.value, seed=42,
                                     num_movies=_MOVIES + 1)
  train = data.without_lists(train)  # As run_fn does: the uncleaned contexts go.
  split_s, split_mib = time.perf_counter() - start, _peak_mib()
  start = time.perf_counter()
  for _ in data.training_dataset(validation.train, 1024, seed=42):
    pass
  read_s, read_mib = time.perf_counter() - start, _peak_mib()
  print(f"{count}\t{held_bytes / 2**20:.0f}\t{start_mib:.0f}\t"
        f"{load_mib:.0f}\t{load_s:.1f}\t{split_mib:.0f}\t{split_s:.1f}\t{read_mib:.0f}\t"
        f"{read_s:.1f}", flush=True)


def _child(*args: str) -> Tuple[List[str], Optional[str]]:
  """Runs this script with `args` in a new process: (its printed fields, None), or
  ([], what went wrong) when it failed."""
  child = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         check=False)
  if child.returncode:
    last_line = (child.stderr.strip().splitlines() or [""])[-1]
    return [], f"failed (exit {child.returncode}): {last_line}"
  return child.stdout.strip().split("\t"), None


def main(argv):
  del argv
  if _CHILD_FILE.value:
    _measure(_CHILD_FILE.value, _CHILD_ROWS.value)
    return
  if _CHILD_SEEN_ROWS.value:
    seen_mib, seen_s = _seen_movies_cost(_CHILD_SEEN_ROWS.value)
    print(f"{seen_mib:.0f}\t{seen_s:.1f}")
    return
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "transformed.tfrecord.gz")
    _write_file(path, _MAX_CONTEXT.value)
    header = (f"{'rows':>11}  {'held MiB':>8}  {'start MiB':>9}  {'peak after load':>15}  "
              f"{'load s':>6}  {'peak after split':>16}  {'split s':>7}  "
              f"{'peak after reading':>18}  {'read s':>6}  {'seen lists MiB':>14}  "
              f"{'seen s':>6}")
    lines = [header, "-" * len(header)]
    table_rows = []
    for text in _ROWS.value:
      fields, error = _child(f"--child_file={path}", f"--child_rows={_parse_rows(text)}",
                             f"--validation_fraction={_VALIDATION_FRACTION.value}")
      if error:
        lines.append(f"{text:>11}  {error}")
        table_rows.append([text, error] + [""] * 10)
        continue
      rows, held, start, load, load_s, split, split_s, read, read_s = fields
      seen, error = _child(f"--child_seen_rows={rows}")
      seen_mib, seen_s = (error, "") if error else seen
      lines.append(f"{int(rows):>11,}  {held:>8}  {start:>9}  {load:>15}  {load_s:>6}  "
                   f"{split:>16}  {split_s:>7}  {read:>18}  {read_s:>6}  {seen_mib:>14}  "
                   f"{seen_s:>6}")
      table_rows.append([text, f"{int(rows):,}", held, start, load, load_s, split, split_s,
                         read, read_s, seen_mib, seen_s])
    logging.info("Trainer memory, context of %d movies:", _MAX_CONTEXT.value)
    print("\n".join(lines))
  results.write(results.results_name(__file__), "Trainer memory", [(
      "Peak resident memory by training rows",
      f"Synthetic transformed examples with a context of {_MAX_CONTEXT.value} movies, "
      f"validation fraction {_VALIDATION_FRACTION.value}; each size in its own process. "
      "MiB are peak RSS after each step; the seen-movies lists are measured on as many "
      "distinct pairs.\n\n" + results.table(
          ["--rows", "rows", "held MiB", "start MiB", "peak after load MiB", "load s",
           "peak after split MiB", "split s", "peak after reading MiB", "read s",
           "seen lists MiB", "seen s"], table_rows))])


if __name__ == "__main__":
  app.run(main)
