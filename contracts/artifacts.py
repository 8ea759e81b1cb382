"""Names and layouts of what the components hand each other: artifact keys, splits, files.

Imports nothing heavy, so runners and components can share it without loading
TensorFlow or Beam.

Examples artifacts (MovieLensExampleGen):
  EXAMPLES_KEY  ratings, splits TRAIN_SPLIT and EVAL_SPLIT, every raw feature; skipped
                malformed lines listed in BAD_LINES_FILE at the artifact root.
  MOVIES_KEY    the whole catalog (rated or not), split CATALOG_SPLIT, candidate features.

Examples artifacts (UserContext):
  RATINGS_KEY         the same ratings, splits TRAIN_SPLIT, VALIDATION_SPLIT (carved from
                      train) and EVAL_SPLIT, each written in a seeded hash order.
  USER_HISTORIES_KEY  one example per user with a train rating, split USERS_SPLIT:
                      features.USER_ID and features.HISTORY_FEATURES.

Model artifact (the Trainer writes, the RetrievalEvaluator and run summary read), paths
relative to `model.uri`:

  Format-Serving/                     The serving SavedModel (TFX's path_utils); its
                                      signatures, and the seen-movies file beside
                                      them, are contracts/serving.py's.
  query_model/                        SavedModel of the query tower, Transform included;
                                      its signatures: contracts/serving.py.
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
                                      SavedModel of the rating model, Transform
                                      included; its signatures: contracts/serving.py.
  ranking_config.json                 Only with a ranking stage: {"ranking_model": its
                                      family, "ranking_candidates": how many retrieved
                                      movies serving_ranked re-orders, "ranking_weight":
                                      the w of ranking_core.scores.ranked_order_key}. The Evaluator
                                      re-orders as serving_ranked does.

ModelEvaluation artifact (RetrievalEvaluator): METRICS_FILE and REPORT_FILE at its root.

Pushed models: <serving dir>/<version>/, TF Serving's layout; the serving dir defaults to
<pipeline root>/DEFAULT_SERVING_DIR.
"""
import os

# Splits.
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
CATALOG_SPLIT = "catalog"
# Carved from the train split by UserContext: the Trainer chooses its epoch on it.
VALIDATION_SPLIT = "validation"
# UserContext's user histories: one example per user.
USERS_SPLIT = "users"

# MovieLensExampleGen outputs.
EXAMPLES_KEY = "examples"
MOVIES_KEY = "movies"
# UserContext outputs: the ratings (splits TRAIN, VALIDATION, EVAL) and the user
# histories (split USERS_SPLIT; features.HISTORY_FEATURES), which the Trainer reads.
RATINGS_KEY = "ratings"
USER_HISTORIES_KEY = "user_histories"
# Every line skipped under the bad-line tolerance is listed here, in the examples artifact.
BAD_LINES_FILE = "bad_lines.txt"

# Under the pipeline root: where the Pusher writes when no serving dir is given.
DEFAULT_SERVING_DIR = "serving_model"

# Model artifact layout.
QUERY_MODEL_DIR = "query_model"
CANDIDATES_DIR = "candidate_embeddings"
MOVIE_IDS_FILE = "movie_ids.txt"
EMBEDDINGS_FILE = "embeddings.npy"
TRAINING_HISTORY_FILE = "training_history.json"
RANKING_MODEL_DIR = "ranking_model"
RANKING_CONFIG_FILE = "ranking_config.json"
RANKING_MODEL_FIELD = "ranking_model"
RANKING_CANDIDATES_FIELD = "ranking_candidates"
RANKING_WEIGHT_FIELD = "ranking_weight"
# Keys of training_history.json (the Model layout above says what each holds).
HISTORY_EPOCH_KEPT = "epoch_kept"
HISTORY_EASE_FACTOR_WEIGHT = "ease_factor_weight"
HISTORY_EASE_FACTOR_RANK = "ease_factor_rank"
HISTORY_EASE_FACTOR_SESSION_WEIGHT = "ease_factor_session_weight"
HISTORY_EASE_FACTOR_WEIGHTS = "ease_factor_weights"
HISTORY_EASE_FACTOR_VALIDATION_HIT_RATES = "ease_factor_validation_hit_rates"
HISTORY_EASE_FACTOR_LEVEL_WEIGHTS = "ease_factor_level_weights"
HISTORY_EASE_FACTOR_SESSION_WEIGHTS = "ease_factor_session_weights"
HISTORY_EASE_FACTOR_SESSION_VALIDATION_HIT_RATES = "ease_factor_session_validation_hit_rates"

# ModelEvaluation artifact files.
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.txt"


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
