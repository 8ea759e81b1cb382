"""Names and layouts of what the components hand each other: artifact keys, splits, files.

Imports nothing heavy, so runners and components can share it without loading
TensorFlow or Beam.

Examples artifacts (MovieLensExampleGen):
  EXAMPLES_KEY  ratings, splits TRAIN_SPLIT and EVAL_SPLIT, every raw feature; skipped
                malformed lines listed in BAD_LINES_FILE at the artifact root.
  MOVIES_KEY    the whole catalog (rated or not), split CATALOG_SPLIT, candidate features.

Model artifact (the Trainer writes, the RetrievalEvaluator and run summary read), paths
relative to `model.uri`:

  Format-Serving/                     The serving SavedModel (TFX's path_utils).
  query_model/                        SavedModel of the query tower, Transform included.
      signature `serving_default`:    the query features of a request (contracts.features.
                                      REQUEST_QUERY_FEATURES), each [None] ->
                                      {"embedding": tf.float32 [None, d]}, or [None, H, d]
                                      for a multi-vector query (scored as `query_scores`
                                      says). The context
                                      (CONTEXT_FEATURES) is the user's stored training
                                      history. Unknown users get the OOV embedding and an
                                      empty history (never fails).
      signature `with_context`:       every query feature; the context [None, n] string,
                                      rows padded with "" (an all-"" row: stored history).
  candidate_embeddings/movie_ids.txt  The whole catalog, one movie id a line (UTF-8).
  candidate_embeddings/embeddings.npy float32 [num_movies, d]; row i is line i above.
                                      With an EASE factor, d is the towers' size + its
                                      rank (the query model's embeddings likewise).
  training_history.json               Per-epoch lists: "mean_loss", "val_mean_loss",
                                      "examples_per_second"; with a ranking stage also
                                      "ranking_root_mean_squared_error" (and "val_...").
                                      One-value lists: "epoch_kept", "ease_factor_weight"
                                      (0: no EASE factor served) and with a factor
                                      "ease_factor_rank" and
                                      "ease_factor_session_weight" (0: plain EASE); when
                                      the validation slice chose the weight,
                                      "ease_factor_weights" and
                                      "ease_factor_validation_hit_rates" (one each),
                                      "ease_factor_level_weights" (those level with the
                                      best, the middle one served), and
                                      "ease_factor_session_weights" and
                                      "ease_factor_session_validation_hit_rates" (one
                                      each: the best over the weights).
  ranking_model/                      Only with a ranking stage (--ranking_model dcn):
                                      SavedModel of the rating model, Transform included.
      signature `serving_default`:    contracts.features.RANKING_FEATURES, raw, one rating
                                      a row: each [None], movie_genres [None, n] string
                                      padded with "" -> {"predicted_rating":
                                      tf.float32 [None]}, in the data's stars. A ranker
                                      that reads the context reads the user's stored
                                      history here.
      signature `with_context`:       Only when the ranker reads the context: the same
                                      and the context [None, n] string, rows padded
                                      with "" (an all-"" row: stored history).
  ranking_config.json                 Only with a ranking stage: {"ranking_model": its
                                      family, "ranking_candidates": how many retrieved
                                      movies serving_ranked re-orders, "ranking_weight":
                                      the w of `ranked_order_key`}. The Evaluator
                                      re-orders as serving_ranked does.

ModelEvaluation artifact (RetrievalEvaluator): METRICS_FILE and REPORT_FILE at its root.

Pushed models: <serving dir>/<version>/, TF Serving's layout; the serving dir defaults to
<pipeline root>/DEFAULT_SERVING_DIR.
"""
import os

import numpy as np

# Splits.
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
CATALOG_SPLIT = "catalog"

# MovieLensExampleGen outputs.
EXAMPLES_KEY = "examples"
MOVIES_KEY = "movies"
# Every line skipped under the bad-line tolerance is listed here, in the examples artifact.
BAD_LINES_FILE = "bad_lines.txt"

# Under the pipeline root: where the Pusher writes when no serving dir is given.
DEFAULT_SERVING_DIR = "serving_model"
# The serving model's outputs, each [batch, k]: the top-k movies' ids, titles and scores.
MOVIE_ID_OUTPUT = "movie_id"
MOVIE_TITLE_OUTPUT = "movie_title"
SCORE_OUTPUT = "score"
SERVING_OUTPUTS = (MOVIE_ID_OUTPUT, MOVIE_TITLE_OUTPUT, SCORE_OUTPUT)

# Model artifact layout.
QUERY_MODEL_DIR = "query_model"
CANDIDATES_DIR = "candidate_embeddings"
MOVIE_IDS_FILE = "movie_ids.txt"
EMBEDDINGS_FILE = "embeddings.npy"
TRAINING_HISTORY_FILE = "training_history.json"
QUERY_SIGNATURE = "serving_default"
QUERY_WITH_CONTEXT_SIGNATURE = "with_context"
EMBEDDING_OUTPUT = "embedding"
RANKING_MODEL_DIR = "ranking_model"
RANKING_SIGNATURE = "serving_default"
RANKING_WITH_CONTEXT_SIGNATURE = "with_context"
PREDICTED_RATING_OUTPUT = "predicted_rating"
RANKING_CONFIG_FILE = "ranking_config.json"
RANKING_MODEL_FIELD = "ranking_model"
RANKING_CANDIDATES_FIELD = "ranking_candidates"
RANKING_WEIGHT_FIELD = "ranking_weight"
# Added to a standard deviation before dividing by it: a row of equal values stays finite.
STD_EPSILON = 1e-6

# ModelEvaluation artifact files.
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.txt"


def query_scores(queries, candidates_t):
  """Scores of query embeddings against candidate embeddings, as the serving index ranks.

  A query is one vector or several (a multi-vector query); a movie's score is the dot
  product with its best-matching query vector.

  Args:
    queries: numpy float32 [U, d] or [U, H, d], the query model's "embedding" output.
    candidates_t: numpy float32 [d, M], the candidate embeddings transposed.

  Returns:
    float32 [U, M].
  """
  if queries.ndim == 2:
    return queries @ candidates_t
  users, heads, dim = queries.shape
  per_vector = queries.reshape(users * heads, dim) @ candidates_t
  return per_vector.reshape(users, heads, -1).max(axis=1)


def ranked_order_key(scores: np.ndarray, ratings: np.ndarray, weight: float) -> np.ndarray:
  """The key serving_ranked orders each row's retrieved movies by, highest first.

  (1 - weight) x standardized retrieval score + weight x standardized predicted rating,
  both standardized over the row (mean 0, std 1). The serving model computes the same in
  TensorFlow (trainer_module/export.py); this is the Evaluator's copy and the tests' oracle.

  Args:
    scores: float [U, N], the retrieval scores of each row's N retrieved movies.
    ratings: float [U, N], their predicted ratings.
    weight: In [0, 1]: 1 orders by predicted rating alone, 0 keeps retrieval's order.
  """
  def standardized(values):
    values = np.asarray(values, np.float64)
    mean = values.mean(axis=-1, keepdims=True)
    return (values - mean) / (values.std(axis=-1, keepdims=True) + STD_EPSILON)

  return ((1 - weight) * standardized(scores) + weight * standardized(ratings)).astype(
      np.float32)


def query_time_rows(users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
  """The row that sets each user's query time: the lower median of their held-out times.

  The Evaluator queries an eval user at the median time of their eval ratings (the lower
  of the two middle ones for an even count, so a real rating time), and the Trainer's
  validation queries a validation user the same way, so a tower that reads the time
  (`user_id`, `--history_time`) is chosen by validation as it is then evaluated.

  Args:
    users: int [N], the user position of each held-out rating; every position in
      [0, max + 1) has at least one.
    timestamps: int [N], each rating's time.

  Returns:
    int64 [num users], for each user position the index of a row in `users` whose time
    is that user's query time (rows with equal times count in row order, so the
    choice is deterministic).
  """
  order = np.lexsort((timestamps, users))  # A stable sort: equal times keep row order.
  counts = np.bincount(users)
  if not counts.all():
    raise ValueError(f"User positions {np.flatnonzero(counts == 0)[:5].tolist()} have no "
                     "held-out ratings; every position needs one to set a query time.")
  starts = np.cumsum(counts) - counts
  return order[starts + (counts - 1) // 2].astype(np.int64)


def query_model_path(model_uri: str) -> str:
  """Directory of the query-tower SavedModel inside a Model artifact."""
  return os.path.join(model_uri, QUERY_MODEL_DIR)


def ranking_model_path(model_uri: str) -> str:
  """Directory of the ranking (rating) SavedModel inside a Model artifact; it exists only
  when the Trainer ran a ranking stage."""
  return os.path.join(model_uri, RANKING_MODEL_DIR)


def ranking_config_path(model_uri: str) -> str:
  """The ranking stage's serving settings (JSON) inside a Model artifact; it exists only
  when the Trainer ran a ranking stage."""
  return os.path.join(model_uri, RANKING_CONFIG_FILE)


def movie_ids_path(model_uri: str) -> str:
  """Catalog movie ids file inside a Model artifact."""
  return os.path.join(model_uri, CANDIDATES_DIR, MOVIE_IDS_FILE)


def embeddings_path(model_uri: str) -> str:
  """Candidate embeddings (.npy) inside a Model artifact."""
  return os.path.join(model_uri, CANDIDATES_DIR, EMBEDDINGS_FILE)


def training_history_path(model_uri: str) -> str:
  """Per-epoch training history (JSON) inside a Model artifact."""
  return os.path.join(model_uri, TRAINING_HISTORY_FILE)
