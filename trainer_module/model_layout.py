"""Layout of the Trainer's Model artifact that the RetrievalEvaluator reads.

The Trainer writes, and the evaluator reads, these paths relative to `model.uri`:

  Format-Serving/                     The serving SavedModel (not read by the evaluator).
  query_model/                        SavedModel of the query tower, Transform included.
      signature `serving_default`:    user_id tf.string [None], timestamp tf.int64 [None]
                                      -> {"embedding": tf.float32 [None, d]}.
                                      Unknown users get the OOV embedding (never fails).
  candidate_embeddings/movie_ids.txt  The whole catalog, one movie id a line (UTF-8).
  candidate_embeddings/embeddings.npy float32 [num_movies, d]; row i is line i above.

It is the contract between the Trainer (which writes) and the RetrievalEvaluator (which
reads); it imports nothing heavy.
"""
import os

QUERY_MODEL_DIR = "query_model"
CANDIDATES_DIR = "candidate_embeddings"
MOVIE_IDS_FILE = "movie_ids.txt"
EMBEDDINGS_FILE = "embeddings.npy"
QUERY_SIGNATURE = "serving_default"
EMBEDDING_OUTPUT = "embedding"


def query_model_path(model_uri: str) -> str:
  """Directory of the query-tower SavedModel inside a Model artifact."""
  return os.path.join(model_uri, QUERY_MODEL_DIR)


def movie_ids_path(model_uri: str) -> str:
  """Catalog movie ids file inside a Model artifact."""
  return os.path.join(model_uri, CANDIDATES_DIR, MOVIE_IDS_FILE)


def embeddings_path(model_uri: str) -> str:
  """Candidate embeddings (.npy) inside a Model artifact."""
  return os.path.join(model_uri, CANDIDATES_DIR, EMBEDDINGS_FILE)
