"""How personalized a serving model's lists stay for query times outside its training range.

For --num_users training users (the first ones in the model's seen-movies file, sorted),
asks for the top 10 with `serving_default` (the model's reference time, its latest training
rating) and with `serving_at_time` at today's date, 30 years later and the Unix epoch, and
prints how many distinct top-10 lists come back at each and how many of each user's 10
movies are also in their serving_default list. A model whose time feature is not bounded to
the training range gives nearly one list to everybody far outside it. The rows also go to
docs/benchmarks/time_range_personalization.md, or -<data set>.md for a model trained on
another data set (benchmarks/results.py).

  python benchmarks/time_range_personalization.py --model_dir tfx_root/serving_model
"""
import time
from typing import List, Optional, Sequence

from absl import app
from absl import flags

import results
import trainer_module  # pylint: disable=unused-import  # Sets TF_USE_LEGACY_KERAS first.
from contracts import features
from contracts import serving
from trainer_module import artifact_files
from trainer_module import recommend

import tensorflow as tf  # pylint: disable=g-import-not-at-top,g-bad-import-order

_MODEL_DIR = flags.DEFINE_string("model_dir", "tfx_root/serving_model",
                                 "TF Serving base directory or SavedModel directory.")
_NUM_USERS = flags.DEFINE_integer("num_users", 200, "Training users asked.")
_TOP = 10
_THIRTY_YEARS = 30 * 365 * 86_400


def top_lists(model, users: List[str], timestamp: Optional[int]) -> List[tuple]:
  """Each user's top-10 movie ids at `timestamp` (None: serving_default's own time)."""
  query = {features.USER_ID: tf.constant(users)}
  if timestamp is None:
    result = model.signatures[serving.SERVING_DEFAULT](**query)
  else:
    query[features.TIMESTAMP] = tf.fill([len(users)], tf.constant(timestamp, tf.int64))
    result = model.signatures[serving.SERVING_AT_TIME](**query)
  return [tuple(row[:_TOP]) for row in result["movie_id"].numpy().tolist()]


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  results_file = results.results_name(__file__, results.run_data_set(_MODEL_DIR.value))
  model_dir = recommend.resolve_model_dir(_MODEL_DIR.value)
  model = tf.saved_model.load(model_dir)
  users = sorted(artifact_files.read_seen_movies(model_dir))[:_NUM_USERS.value]
  today = int(time.time())
  default = top_lists(model, users, None)
  print(f"model: {model_dir}; {len(users)} training users")
  print(f"  {'query time':<18} {'distinct top-10 lists':>22} {'mean overlap with default':>26}")
  rows = []
  for label, timestamp in (("serving_default", None), ("today", today),
                           ("today + 30 years", today + _THIRTY_YEARS),
                           ("Unix epoch (0)", 0)):
    lists = default if timestamp is None else top_lists(model, users, timestamp)
    overlap = sum(len(set(a) & set(b)) for a, b in zip(lists, default)) / len(users)
    print(f"  {label:<18} {len(set(lists)):>15} of {len(users):<4} {overlap:>20.1f} of {_TOP}")
    rows.append([label, len(set(lists)), f"{overlap:.1f}"])
  results.write(results_file, "Personalization outside the training time range", [(
      f"Top-{_TOP} lists of {len(users)} training users",
      "The query time of each row (today: the day of the run) against serving_default's "
      "(the model's reference time).\n\n" + results.table(
          ["query time", f"distinct top-{_TOP} lists", f"mean overlap with serving_default, "
           f"of {_TOP}"], rows))])


if __name__ == "__main__":
  app.run(main)
