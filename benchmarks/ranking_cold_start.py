"""The ranking stage for users it never saw: how much does the history they give help?

Reads a finished local run made with `--ranking_model dcn` and predicts every rating of
the eval split with the ranking model export three ways:

  known user                  the user id as trained, the context the stored history
                              (the export's default signature, what the Evaluator scores)
  unknown, no history         the user id replaced by one unknown to training: the OOV
                              user embedding and no context, i.e. each movie's general appeal
  unknown, history given      the same unknown id, with the user's `max_context` most
                              recent train movies given as the context (the export's
                              `with_context` signature, what `serving_ranked_with_context`
                              rates with)

and prints RMSE and MAE of each. The second and third rows bound what a new user who
brings a history gets from the ranking stage, without retraining. The rows also go to
docs/benchmarks/ranking_cold_start-<data set>.md (ranking_cold_start.md on the built-in
data; benchmarks/results.py).

  python local_runner.py --data_dir ../shared/data/ml-latest-small --pipeline_root /tmp/mlsr \
      --ranking_model dcn
  python benchmarks/ranking_cold_start.py --pipeline_root /tmp/mlsr
"""
from typing import Dict, List

from absl import app
from absl import flags

import pipeline_outputs
import results
import trainer_module  # pylint: disable=unused-import  # Sets TF_USE_LEGACY_KERAS first.
from components.retrieval_evaluator import data
from components.user_context import context as user_context
from contracts import artifacts
from contracts import configs
from contracts import features
from contracts import serving

import numpy as np  # pylint: disable=g-bad-import-order
import tensorflow as tf  # pylint: disable=g-bad-import-order

_ROOT = flags.DEFINE_string("pipeline_root", "tfx_root",
                            "Root of a finished local run made with --ranking_model dcn.")
_MAX_CONTEXT = flags.DEFINE_integer("max_context", configs.ContextConfig().max_context,
                                    "Movies of each user's history given as the context.")
_UNKNOWN_USER = "ranking-cold-start-unknown-user"
_BATCH_SIZE = 4096


def recent_histories(examples, movie_table, max_context: int) -> Dict[bytes, List[str]]:
  """Each train user's `max_context` most recent train movies, in UserContext's order."""
  histories: Dict[bytes, list] = {}
  names = (features.USER_ID, features.MOVIE_ID, features.TIMESTAMP)
  for batch in data.read_ratings(examples, artifacts.TRAIN_SPLIT, names, movie_table):
    for user, movie, timestamp in zip(*(batch[name] for name in names)):
      histories.setdefault(user, []).append((int(timestamp), movie))
  return {user: [movie.decode() for movie in user_context.recent_first(pairs)[:max_context]]
          for user, pairs in histories.items()}


def _padded(rows: List[List[str]]) -> tf.Tensor:
  width = max(1, max(len(row) for row in rows))
  return tf.constant([row + [""] * (width - len(row)) for row in rows])


def main(argv):
  del argv
  results_file = results.results_name(__file__, results.run_data_set(_ROOT.value))
  examples = pipeline_outputs.rating_examples(_ROOT.value)
  model_uri = pipeline_outputs.latest_output(_ROOT.value, "RetrievalTrainer", "model")
  path = artifacts.ranking_model_path(model_uri)
  if not tf.io.gfile.exists(path):
    raise app.UsageError(f"{model_uri} has no ranking model: run the pipeline with "
                         "--ranking_model dcn.")
  loaded = tf.saved_model.load(path)
  if serving.RANKING_WITH_CONTEXT_SIGNATURE not in loaded.signatures:
    raise app.UsageError(f"The ranking model {path} does not read the context (no "
                         f"'{serving.RANKING_WITH_CONTEXT_SIGNATURE}' signature).")
  default = loaded.signatures[serving.RANKING_SIGNATURE]
  with_context = loaded.signatures[serving.RANKING_WITH_CONTEXT_SIGNATURE]
  movie_table = data.lookup_table(data.Candidates.load(model_uri).movie_ids)
  histories = recent_histories(examples, movie_table, _MAX_CONTEXT.value)

  predicted = {"known user": [], "unknown, no history": [], "unknown, history given": []}
  labels = []
  names = features.RANKING_FEATURES + (features.USER_RATING,)
  for batch in data.read_ratings(examples, artifacts.EVAL_SPLIT, names, movie_table,
                                 batch_size=_BATCH_SIZE):
    inputs = {name: tf.constant(batch[name], features.RAW_FEATURES[name].dtype)
              for name in features.RANKING_FEATURES}
    unknown = {**inputs, features.USER_ID: tf.fill(tf.shape(inputs[features.USER_ID]),
                                                   _UNKNOWN_USER)}
    context = _padded([histories.get(user, []) for user in batch[features.USER_ID]])
    for name, outputs in (("known user", default(**inputs)),
                          ("unknown, no history", default(**unknown)),
                          ("unknown, history given", with_context(
                              **unknown, **{features.CONTEXT_MOVIE_IDS: context}))):
      predicted[name].append(outputs[serving.PREDICTED_RATING_OUTPUT].numpy())
    labels.append(batch[features.USER_RATING])
  labels = np.concatenate(labels)
  print(f"{len(labels)} eval ratings; model {model_uri}; histories of at most "
        f"{_MAX_CONTEXT.value} movies")
  print(f"{'ranking stage rates':<26} {'RMSE':>7} {'MAE':>7}")
  rows = []
  for name, values in predicted.items():
    errors = np.concatenate(values) - labels
    rmse, mae = np.sqrt(np.mean(errors ** 2)), np.mean(np.abs(errors))
    print(f"{name:<26} {rmse:>7.4f} {mae:>7.4f}")
    rows.append([name, f"{rmse:.4f}", f"{mae:.4f}"])
  results.write(results_file, "The ranking stage for users it never saw", [(
      "Rating errors on the eval split",
      f"{len(labels):,} eval ratings; histories of at most {_MAX_CONTEXT.value} movies (the "
      "rows are the module docstring's).\n\n"
      + results.table(["ranking stage rates", "RMSE", "MAE"], rows))])


if __name__ == "__main__":
  app.run(main)
