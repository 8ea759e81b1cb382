"""Asks a pushed (or freshly trained) serving model for recommendations.

  python -m trainer_module.recommend --model_dir tfx_root/serving_model --user_id 42
  python -m trainer_module.recommend --model_dir DIR --user_id 42 --k 5 --exclude_seen
  python -m trainer_module.recommend --model_dir DIR --user_id new --history 1,260,1196
  python -m trainer_module.recommend --model_dir DIR --user_id 42 --ranked

--ranked asks a model trained with a ranking stage (--ranking_model dcn) for its
`serving_ranked` answer: the retrieved movies re-ordered by the blend of retrieval score
and predicted rating the model was trained with (--ranking_weight), each shown with its
predicted rating. With --history, --timestamp or --exclude_seen it asks the ranked
signature that takes them (`serving_ranked_with_context`, ...,
`serving_ranked_exclude_seen`).

--history gives the user's recent movies (ids, most recent first): a user never seen in
training gets recommendations from them, without retraining, and a known user's stored
history is replaced by them. The history's movies are left out of the results.

--model_dir is a SavedModel directory or a TF Serving base directory (<dir>/<version>/),
in which case the highest version is used. The same model answers
`saved_model_cli run --dir DIR/<version> --tag_set serve --signature_def serving_default
 --input_exprs 'user_id=["42"]'`.
"""
import sys
import warnings
from typing import List, Mapping, NamedTuple, Optional, Sequence

# google-api-core (imported by TFX) warns at import that it will drop Python 3.11 in
# 2027; nothing a user of this command can act on.
warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")

from absl import app
from absl import flags
from absl import logging
import numpy as np

from contracts import artifacts
from contracts import features
from contracts import serving
from contracts import terminal
import trainer_module  # pylint: disable=unused-import  # Sets TF_USE_LEGACY_KERAS first.
from trainer_module import artifact_files

import tensorflow as tf  # pylint: disable=g-import-not-at-top,g-bad-import-order

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """CLI flags; defined only when run as a script, since this module is also a library
  (the run summary uses it) and TFX executors parse sys.argv against global flags."""
  flags.DEFINE_string("model_dir", None, "SavedModel or TF Serving base dir.")
  flags.DEFINE_list("user_id", None, "User id(s), comma-separated.")
  flags.DEFINE_integer("k", 10, "Recommendations per user (at most the model's top-k).")
  flags.DEFINE_bool("exclude_seen", False, "Leave out movies the user rated in training.")
  flags.DEFINE_integer("timestamp", None,
                       "Query time, Unix seconds; default: the model's reference time.")
  flags.DEFINE_list("history", None,
                    "The user's recent movie ids, most recent first, comma-separated (one "
                    "history for every --user_id); default: the history stored in the "
                    "model for users seen in training.")
  flags.DEFINE_bool("ranked", False,
                    "Re-order the retrieved movies by the ranking stage: the blend of "
                    "retrieval score and predicted rating set at training by "
                    "--ranking_weight (models trained with --ranking_model dcn).")
  flags.mark_flags_as_required(["model_dir", "user_id"])


class Recommendation(NamedTuple):
  movie_id: str
  title: str
  score: float  # The retrieval score.
  predicted_rating: Optional[float] = None  # The ranking stage's, with --ranked.


def resolve_model_dir(model_dir: str) -> str:
  """`model_dir` if it holds a SavedModel, else its highest numeric version subdirectory."""
  if tf.io.gfile.exists(f"{model_dir}/saved_model.pb"):
    return model_dir
  versions = sorted((int(name.rstrip("/")) for name in tf.io.gfile.listdir(model_dir)
                     if name.rstrip("/").isdigit()
                     and tf.io.gfile.exists(f"{model_dir}/{name.rstrip('/')}/saved_model.pb")),
                    reverse=True) if tf.io.gfile.isdir(model_dir) else []
  if not versions:
    pushed = f"{model_dir.rstrip('/')}/{artifacts.DEFAULT_SERVING_DIR}"
    hint = (f" {model_dir} looks like a pipeline root: pass {pushed}."
            if tf.io.gfile.isdir(pushed) else "")
    raise FileNotFoundError(
        f"No SavedModel in {model_dir} nor in a numeric version directory under it. Run the "
        "pipeline (make run) and pass its --serving_dir, or a Trainer's Format-Serving dir."
        + hint)
  return f"{model_dir}/{versions[0]}"


def check_request(user_ids: Sequence[str], k: int,
                  history: Optional[Sequence[str]] = None, exclude_seen: bool = False,
                  timestamp: Optional[int] = None) -> None:
  """Raises ValueError naming the flag for requests no model can answer."""
  if not user_ids:
    raise ValueError("--user_id: give at least one user id.")
  if any(not user_id.strip() for user_id in user_ids):
    raise ValueError(f"--user_id: user ids must be non-empty, got {list(user_ids)}.")
  if k < 1:
    raise ValueError(f"--k must be >= 1, got {k}.")
  if history is not None:
    if not history or any(not movie_id.strip() for movie_id in history):
      raise ValueError(f"--history: give movie ids, non-empty, got {list(history)}.")
    if exclude_seen:
      raise ValueError("--history leaves the history's movies out already; --exclude_seen "
                       "would leave out the stored training history instead: use one.")
  if exclude_seen and timestamp is not None:
    raise ValueError("--exclude_seen uses the model's reference time; drop --timestamp.")


def recommend(model_dir: str, user_ids: Sequence[str], k: int = 10, exclude_seen: bool = False,
              timestamp: Optional[int] = None,
              history: Optional[Sequence[str]] = None,
              ranked: bool = False) -> List[List[Recommendation]]:
  """Top-k recommendations per user from the serving model in `model_dir`.

  Args:
    model_dir: SavedModel or TF Serving base directory.
    user_ids: Users to recommend for (unknown ids are fine).
    k: Movies per user.
    exclude_seen: Leave out each user's training movies.
    timestamp: Query time; default: the model's reference time.
    history: Recent movie ids, most recent first, used as every user's context instead
      of the stored history; these movies are left out of the results.
    ranked: Ask the ranking stage (`serving_ranked`, or the ranked signature taking the
      history or the time given): the retrieved movies re-ordered, each with its
      predicted rating.

  Fewer than k come back when the model returns fewer (its serving_top_k, or the catalog
  left after exclusions); blank slots are never returned.
  """
  check_request(user_ids, k, history, exclude_seen, timestamp)
  # Whitespace around an id is not part of it (serving.ID_INPUTS), here too: the seen
  # movies are looked up by the id.
  user_ids = [user_id.strip() for user_id in user_ids]
  model_dir = resolve_model_dir(model_dir)
  model = tf.saved_model.load(model_dir)
  _check_serving_model(model, model_dir)
  if ranked and serving.SERVING_RANKED not in model.signatures:
    raise ValueError(f"--ranked: {model_dir} has no ranking stage; train with "
                     "--ranking_model dcn.")
  query = {features.USER_ID: tf.constant(list(user_ids))}
  if timestamp is not None:
    query[features.TIMESTAMP] = tf.fill([len(user_ids)], tf.constant(timestamp, tf.int64))
  if history is not None:
    _warn_unknown_movies(model, [m.strip() for m in history])
    query[features.CONTEXT_MOVIE_IDS] = tf.constant([[m.strip() for m in history]]
                                                    * len(user_ids))
  if exclude_seen:
    seen = artifact_files.read_seen_movies(model_dir)
    exclude = tf.ragged.constant([seen.get(u, []) for u in user_ids], dtype=tf.string)
    query[serving.EXCLUDE_MOVIE_IDS] = exclude.to_tensor(default_value="")
  name = _signature_for(query, ranked)
  if name not in model.signatures:
    # A model exported before the ranked signatures took a history, a time or exclusions.
    raise ValueError(f"{model_dir} has no {name} signature: train it again to serve this "
                     "request ranked.")
  result = model.signatures[name](**query)
  ids, titles, scores = (result[name].numpy() for name in serving.SERVING_OUTPUTS)
  ratings = result.get(serving.PREDICTED_RATING_OUTPUT)
  ratings = ratings.numpy() if ratings is not None else np.full(scores.shape, np.nan)
  left_out = {m.strip().encode() for m in history or ()}
  return [[Recommendation(i.decode(), t.decode(), float(s), None if np.isnan(r) else float(r))
           for i, t, s, r in zip(ids[row], titles[row], scores[row], ratings[row])
           if i and i not in left_out][:k]
          for row in range(len(user_ids))]


def _check_serving_model(model, model_dir: str) -> None:
  """ValueError unless `model` answers serving_default with movies (a query model or a
  ranking model, say, is another SavedModel of the pipeline)."""
  signature = model.signatures.get(serving.SERVING_DEFAULT)
  outputs = sorted(signature.structured_outputs) if signature is not None else []
  if not set(serving.SERVING_OUTPUTS) <= set(outputs):
    raise ValueError(
        f"{model_dir} is not a serving model: its {serving.SERVING_DEFAULT} returns "
        f"{outputs or 'nothing'}, not {', '.join(serving.SERVING_OUTPUTS)}. Pass the "
        f"Pusher's --serving_dir (default <pipeline_root>/{artifacts.DEFAULT_SERVING_DIR}) "
        "or a Trainer model's Format-Serving directory.")


def _warn_unknown_movies(model, movie_ids: Sequence[str]) -> None:
  """Logs a warning naming the history's movie ids the model's catalog lacks: the model
  reads each as its out-of-vocabulary movie, not as the movie meant."""
  # A restored StaticHashTable has no lookup method; its kernel takes the resource.
  positions = tf.raw_ops.LookupTableFindV2(
      table_handle=model.position_by_id.resource_handle,
      keys=tf.constant(list(movie_ids)), default_value=tf.constant(-1)).numpy()
  unknown = [m for m, position in zip(movie_ids, positions) if position < 0]
  if unknown:
    logging.warning("--history: %d of %d movie ids are not in the model's catalog and "
                    "count as an unknown movie: %s", len(unknown), len(movie_ids),
                    ", ".join(unknown[:10]))


def _signature_for(request: Mapping[str, tf.Tensor], ranked: bool = False) -> str:
  """The retrieval signature whose inputs are exactly the request's, or with `ranked` its
  ranking-stage twin."""
  excluding = serving.EXCLUDE_MOVIE_IDS in request
  query = set(request) - {serving.EXCLUDE_MOVIE_IDS}
  for name, twin in serving.RANKED_TWINS.items():
    if ((name in serving.EXCLUDING_SIGNATURES) == excluding
        and set(serving.QUERY_SIGNATURE_INPUTS[name]) == query):
      return twin if ranked else name
  raise ValueError(f"No serving signature takes exactly {sorted(request)}.")


def main(argv) -> int:
  del argv
  try:
    rows = recommend(FLAGS.model_dir, FLAGS.user_id, FLAGS.k, FLAGS.exclude_seen,
                     FLAGS.timestamp, FLAGS.history, FLAGS.ranked)
  except (ValueError, FileNotFoundError) as error:
    # A bad request or model directory: one line, not a traceback or the whole usage.
    print(f"ERROR: {error}", file=sys.stderr)
    return 1
  returned = max(len(recommendations) for recommendations in rows)
  if returned < FLAGS.k:
    print(f"Note: --k {FLAGS.k} asked for more movies than the model returns ({returned}: "
          "its serving_top_k, or the catalog left after exclusions).", file=sys.stderr)
  for line in format_recommendations(FLAGS.user_id, rows):
    print(line)
  return 0


def format_recommendations(user_ids: Sequence[str],
                           rows: Sequence[Sequence[Recommendation]]) -> List[str]:
  """The lines `main` prints: per user, its ranked movies. Ids and titles are data, shown
  with control characters escaped (contracts.terminal)."""
  lines = []
  for user_id, recommendations in zip(user_ids, rows):
    lines.append(f"user {terminal.for_terminal(user_id)}:")
    for rank, rec in enumerate(recommendations, start=1):
      rating = "" if rec.predicted_rating is None else f"  {rec.predicted_rating:4.2f} stars"
      lines.append(f"  {rank:3d}. {rec.score:7.4f}{rating}  "
                   f"[{terminal.for_terminal(rec.movie_id)}] {terminal.for_terminal(rec.title)}")
  return lines


if __name__ == "__main__":
  _define_flags()
  app.run(main)
