"""Trainer memory: peak RSS of streaming the training input, of reading the ratings'
columns, and of the export's seen-movies lists, by number of training ratings.

The Trainer streams its training batches (trainer_module/inputs.py, `batches`): a shuffle
buffer of serialized records, a few batches in flight and the per-user history table that
each batch's context is joined from. None of these grows with the number of ratings, so
the streaming pass's peak should stay flat as --rows grows. What still grows is
`data.read_interactions`, which run_fn calls on the train and validation splits for the
closed-form parts (EASE factor, seen movies, validation exclusions): it holds 16 bytes a
rating (user and movie int32, time int64), and this script reports its peak honestly.

The script writes one file of synthetic transformed examples (the Transform output's
feature names and types; no context, which the examples no longer carry) and a synthetic
history table of --users rows (`data.UserHistories.fitted`: int32 [users, max_context +
1], padded with -1). For each size in --rows (the file repeated, rounded up to whole
copies of its 65,536 rows) it runs, each in a process of its own so that the peaks do
not mix:

  * one full pass of `inputs.batches` as run_fn streams it: the default shuffle buffer
    (configs.OptimizationConfig), batches of 1,024, the context joined from the
    history table, no model: peak RSS and seconds;
  * `data.read_interactions` over the same files: peak RSS, the bytes it returns, seconds;
  * the export's list of each user's rated movies (`histories.seen_movies`, written by
    `artifact_files.write_seen_movies`), which holds one entry per distinct training pair.
    The repeated file repeats its pairs, so these are measured on as many distinct random
    pairs (100 per user): the RSS the lists add, and the seconds to build and write them.

  python benchmarks/trainer_memory.py [--rows=1m,4m] [--max_context=50] [--users=160000]

The table is printed and written to docs/benchmarks/trainer_memory.md
(benchmarks/results.py). ml-25m has about 20M training ratings and 162k users; the
interactions and seen lists grow linearly in ratings, so their figures extrapolate.
"""
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

from absl import app
from absl import flags
from absl import logging

import results
from contracts import configs
from contracts import features
from trainer_module import artifact_files
from trainer_module import data
from trainer_module import histories as histories_lib
from trainer_module import inputs
from trainer_module import model as model_lib

import numpy as np  # pylint: disable=g-bad-import-order
import tensorflow as tf  # pylint: disable=g-bad-import-order

_ROWS = flags.DEFINE_list("rows", ["1m", "4m"], "Training ratings to measure, e.g. 1m,4m.")
_MAX_CONTEXT = flags.DEFINE_integer("max_context", configs.ContextConfig().max_context,
                                    "Context movies per rating (the history table's width "
                                    "less one).")
_USERS = flags.DEFINE_integer("users", 160_000, "Users of the history table.")
_CHILD = flags.DEFINE_enum("child", None, ["stream", "interactions", "seen"],
                           "Internal: the measurement a child process makes.")
_CHILD_DIR = flags.DEFINE_string("child_dir", None, "Internal: the synthetic files.")
_CHILD_ROWS = flags.DEFINE_integer("child_rows", 0, "Internal: rows of the measured size.")

_FILE_ROWS = 65_536
_MOVIES, _TITLE_TOKENS, _GENRES = 60_000, 5, 3
_PAIRS_PER_USER = 100
_BATCH_SIZE = 1024
_EXAMPLES_FILE = "transformed.tfrecord.gz"
_HISTORIES_FILE = "histories.npy"

# The transformed feature spec of the pipeline's Transform output (names from
# contracts.features; list features are VarLen, as tft writes them). No context: the
# Trainer joins it from the user histories.
_SPEC = {
    features.USER_ID_INDEX: tf.io.FixedLenFeature([], tf.int64),
    features.MOVIE_ID_INDEX: tf.io.FixedLenFeature([], tf.int64),
    features.TIMESTAMP_SECONDS: tf.io.FixedLenFeature([], tf.int64),
    features.TIMESTAMP_BUCKET: tf.io.FixedLenFeature([], tf.int64),
    features.TIMESTAMP_NORMALIZED: tf.io.FixedLenFeature([], tf.float32),
    features.RATING_LABEL: tf.io.FixedLenFeature([], tf.float32),
    features.TITLE_TOKENS: tf.io.VarLenFeature(tf.int64),
    features.GENRE_INDICES: tf.io.VarLenFeature(tf.int64),
}


class _TransformOutput:
  """What the Trainer reads of a TFTransformOutput here: the feature spec (for
  `inputs.batches`, `data.read_interactions`) and the id vocabularies (for
  `histories.seen_movies`)."""

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


def _write_examples(path: str, num_users: int) -> None:
  """`_FILE_ROWS` random transformed examples with `_SPEC`'s features."""
  rng = np.random.default_rng(0)
  def ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))
  def floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for _ in range(_FILE_ROWS):
      example = tf.train.Example(features=tf.train.Features(feature={
          features.USER_ID_INDEX: ints([rng.integers(num_users)]),
          features.MOVIE_ID_INDEX: ints([rng.zipf(1.3) % _MOVIES]),
          features.TIMESTAMP_SECONDS: ints([1_500_000_000 + rng.integers(10**8)]),
          features.TIMESTAMP_BUCKET: ints([rng.integers(32)]),
          features.TIMESTAMP_NORMALIZED: floats([rng.normal()]),
          features.RATING_LABEL: floats([rng.integers(1, 11) / 2]),
          features.TITLE_TOKENS: ints(rng.integers(5_000, size=_TITLE_TOKENS)),
          features.GENRE_INDICES: ints(rng.integers(20, size=_GENRES)),
      }))
      writer.write(example.SerializeToString())


def _history_table(num_users: int, max_context: int) -> np.ndarray:
  """As `data.UserHistories.fitted`: int32 [users, max_context + 1], each row a random
  number of random movies, then padding."""
  rng = np.random.default_rng(1)
  table = rng.integers(_MOVIES, size=[num_users, max_context + 1]).astype(np.int32)
  lengths = rng.integers(1, max_context + 2, size=[num_users, 1])
  table[np.arange(max_context + 1)[None, :] >= lengths] = model_lib.PADDING
  return table


def _peak_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mib() -> float:
  with open("/proc/self/status") as f:
    return int(f.read().split("VmRSS:")[1].split()[0]) / 1024.0


def _files(directory: str, rows: int) -> List[str]:
  return [os.path.join(directory, _EXAMPLES_FILE)] * math.ceil(rows / _FILE_ROWS)


def _measure_stream(directory: str, rows: int) -> Dict[str, float]:
  """One pass of the streamed training input, as run_fn builds it, without a model."""
  table = np.load(os.path.join(directory, _HISTORIES_FILE))
  start_mib, start = _peak_mib(), time.perf_counter()
  dataset = inputs.batches(
      _files(directory, rows), _TransformOutput(), _BATCH_SIZE,
      configs.TowerConfig().max_title_tokens, histories=table,
      max_context=table.shape[1] - 1,
      shuffle_buffer=configs.OptimizationConfig().shuffle_buffer, seed=42)
  count = 0
  for batch in dataset:
    count += int(batch[features.MOVIE_ID_INDEX].shape[0])
  return {"rows": count, "start_mib": start_mib, "peak_mib": _peak_mib(),
          "seconds": time.perf_counter() - start}


def _measure_interactions(directory: str, rows: int) -> Dict[str, float]:
  """`data.read_interactions` over the same files, as run_fn reads the train split."""
  start_mib, start = _peak_mib(), time.perf_counter()
  ratings = data.read_interactions(_files(directory, rows), _TransformOutput())
  held = sum(column.nbytes for column in (ratings.users, ratings.movies, ratings.times))
  return {"rows": len(ratings), "start_mib": start_mib, "peak_mib": _peak_mib(),
          "seconds": time.perf_counter() - start, "held_mib": held / 2**20}


def _measure_seen(rows: int) -> Dict[str, float]:
  """MiB added by the seen-movies lists of `rows` distinct pairs, and seconds to build and
  write them. The repeated file's pairs repeat with each copy, so the pairs are made here.

  Runs in a process of its own: after other steps' frees, new lists would reuse freed
  memory and barely move the RSS.
  """
  num_users = -(-rows // _PAIRS_PER_USER)
  users = np.repeat(np.arange(num_users, dtype=np.int32), _PAIRS_PER_USER)[:rows]
  # Distinct movies per user: a random offset, then a stride of 7 that never wraps onto it.
  offsets = np.random.default_rng(0).integers(_MOVIES, size=num_users)[users]
  steps = np.tile(np.arange(_PAIRS_PER_USER) * 7, num_users)[:rows]
  ratings = data.Interactions(users=users,
                              movies=((offsets + steps) % _MOVIES).astype(np.int32),
                              times=np.zeros(rows, np.int64))
  vocabularies = _TransformOutput(num_users)
  before, start = _rss_mib(), time.perf_counter()
  seen = histories_lib.seen_movies(ratings, vocabularies)
  added = _rss_mib() - before
  with tempfile.TemporaryDirectory() as tmp:
    artifact_files.write_seen_movies(tmp, seen)
  return {"added_mib": added, "seconds": time.perf_counter() - start}


def _child(*args: str) -> Tuple[Dict[str, float], Optional[str]]:
  """Runs this script with `args` in a new process: (its figures, None), or ({}, what
  went wrong) when it failed."""
  child = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         check=False)
  if child.returncode:
    last_line = (child.stderr.strip().splitlines() or [""])[-1]
    return {}, f"failed (exit {child.returncode}): {last_line}"
  figures = child.stdout.strip().splitlines()[-1].split("\t")
  return {key: float(value) for key, value in (field.split("=") for field in figures)}, None


def _run_child() -> None:
  """The measurement of --child, printed as one line of tab-separated key=value."""
  if _CHILD.value == "stream":
    figures = _measure_stream(_CHILD_DIR.value, _CHILD_ROWS.value)
  elif _CHILD.value == "interactions":
    figures = _measure_interactions(_CHILD_DIR.value, _CHILD_ROWS.value)
  else:
    figures = _measure_seen(_CHILD_ROWS.value)
  print("\t".join(f"{key}={value}" for key, value in figures.items()), flush=True)


def _gib(mib: float) -> str:
  return f"{mib / 1024:.2f}"


def _measure_size(directory: str, text: str) -> List[str]:
  """One table row: the three measurements of one --rows size, each in its own process."""
  rows = _parse_rows(text)
  stream, error = _child("--child=stream", f"--child_dir={directory}", f"--child_rows={rows}")
  if error:
    return [text, error] + [""] * 7
  interactions, error = _child("--child=interactions", f"--child_dir={directory}",
                               f"--child_rows={rows}")
  if error:
    interactions = {}
  seen, seen_error = _child("--child=seen", f"--child_rows={int(stream['rows'])}")
  return [f"{int(stream['rows']):,}", _gib(stream["start_mib"]), _gib(stream["peak_mib"]),
          f"{stream['seconds']:.1f}",
          error or _gib(interactions["peak_mib"]),
          "" if error else f"{interactions['held_mib']:.0f}",
          "" if error else f"{interactions['seconds']:.1f}",
          seen_error or f"{seen['added_mib']:.0f}", "" if seen_error else f"{seen['seconds']:.1f}"]


def main(argv):
  del argv
  if _CHILD.value:
    _run_child()
    return
  header = ["rows", "start GiB", "streaming pass peak GiB", "streaming pass s",
            "interactions peak GiB", "interactions held MiB", "interactions s",
            "seen lists MiB", "seen s"]
  table_rows = []
  with tempfile.TemporaryDirectory() as tmp:
    _write_examples(os.path.join(tmp, _EXAMPLES_FILE), _USERS.value)
    np.save(os.path.join(tmp, _HISTORIES_FILE), _history_table(_USERS.value, _MAX_CONTEXT.value))
    for text in _ROWS.value:
      table_rows.append(_measure_size(tmp, text))
      logging.info("%s: %s", text, dict(zip(header, table_rows[-1])))
  body = results.table(header, table_rows)
  print(body)
  shuffle_buffer = configs.OptimizationConfig().shuffle_buffer
  results.write(results.results_name(__file__), "Trainer memory", [(
      "Peak resident memory by training ratings",
      f"Synthetic transformed examples (no context), a history table of {_USERS.value:,} "
      f"users x {_MAX_CONTEXT.value + 1} movies; each measurement in its own process. "
      "start: RSS after the imports (and the history table), before the measured step. "
      f"Streaming pass: one pass of `inputs.batches` (shuffle buffer {shuffle_buffer:,}, "
      f"batch {_BATCH_SIZE:,}, context joined), no model. Interactions: "
      "`data.read_interactions`, held = the bytes of the arrays it returns. Seen lists: "
      "the RSS `histories.seen_movies` adds, on as many distinct pairs.\n\n" + body)])


if __name__ == "__main__":
  app.run(main)
