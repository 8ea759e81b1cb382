"""The serving contract: the signatures of the exported models, their inputs and outputs.

The Trainer writes three SavedModels into its Model artifact (`contracts.artifacts` lays
them out): the serving model (Format-Serving/, what the Pusher pushes), the query model
(query_model/, what the Evaluator embeds queries with) and, with a ranking stage, the
ranking model (ranking_model/). Each contains the Transform graph, so every signature
takes raw features (strings and Unix seconds), never vocabulary indices; the inputs of
each are derived from the feature spec (`contracts.features`).

Serving model signatures (all return `movie_id` [batch, k] string, `movie_title` [batch,
k] string and `score` [batch, k] float32, best first: SERVING_OUTPUTS):
  serving_default       user_id [batch] string. The query time is the model's reference
                        time (the latest training timestamp); the context is the user's
                        stored training history.
  serving_at_time       user_id, timestamp [batch] int64 (Unix seconds; outside the
                        training range it counts as the nearest trained time).
  serving_with_context  user_id, context_movie_ids [batch, n] string: the user's recent
                        movies, most recent first, rows padded with "" (the towers
                        read the first max_context, the EASE factor every one). A row
                        of only "" uses the stored history.
  serving_with_context_at_time  every query feature.
  serving_exclude_seen  user_id [batch] string, exclude_movie_ids [batch, n] string (pad
                        rows with ""; unknown ids are ignored): these movies never appear.
                        If fewer than k movies remain, the last slots are empty: movie_id
                        and movie_title "", score -inf.
  serving_ranked        Only with a ranking stage (--ranking_model dcn): user_id [batch]
                        string. Retrieves `ranking_candidates` movies as serving_default
                        does, then returns the best k by `--ranking_weight` x the
                        ranking model's predicted rating + the rest x the retrieval
                        score, both standardized per row (ranking_core.scores.
                        ranked_order_key), best first, with `predicted_rating` [batch, k]
                        float32 beside the retrieval `score`.
  serving_ranked_at_time, serving_ranked_with_context,
  serving_ranked_with_context_at_time, serving_ranked_exclude_seen  The same re-ordering
                        of what serving_at_time, serving_with_context,
                        serving_with_context_at_time and serving_exclude_seen retrieve,
                        with their inputs (RANKED_TWINS); the ranking model rates each
                        movie at the request's time, for the user id (an unknown one as
                        the OOV user) and, when it reads the context, the context the
                        retrieval read: the given one, else the stored history.
                        serving_ranked_exclude_seen re-orders the best
                        `ranking_candidates` movies that are not excluded, as the
                        Evaluator measures the ranked order with train movies excluded.
Context query towers (history, sequential_*) recommend from the context: a user never
seen in training who gives a history gets recommendations from it, without retraining;
a known user who gives none gets their training history (the `max_context` most recent
train movies, stored in the model). The user_id tower ignores the context. An unknown
user id maps to the out-of-vocabulary user embedding (trained on a random sample of
examples) and an empty stored history, so the answer is a popularity-like list.
Beside the serving model, SEEN_MOVIES_FILE lists each training user's rated movies (for
`recommend --exclude_seen`).

Query model signatures (QUERY_MODEL_SIGNATURE_INPUTS):
  serving_default       the query features of a request (contracts.features.
                        REQUEST_QUERY_FEATURES), each [None] -> {"embedding": tf.float32
                        [None, d]}, or [None, H, d] for a multi-vector query (scored as
                        `ranking_core.scores.query_scores` says). The context
                        (CONTEXT_FEATURES) is the user's stored training history.
                        Unknown users get the OOV embedding and an empty history (never
                        fails).
  with_context          every query feature; the context [None, n] string, rows padded
                        with "" (an all-"" row: stored history).

Ranking model signatures (only with a ranking stage):
  serving_default       contracts.features.RANKING_FEATURES, raw, one rating a row: each
                        [None], movie_genres [None, n] string padded with "" ->
                        {"predicted_rating": tf.float32 [None]}, in the data's stars. A
                        ranker that reads the context reads the user's stored history
                        here.
  with_context          Only when the ranker reads the context: the same and the context
                        [None, n] string, rows padded with "" (an all-"" row: stored
                        history).

With an EASE factor (--ease_factor_rank, trainer_module/ease_factor.py) every export
appends it: the query model's embeddings and the candidate embeddings grow by its rank,
and each signature scores the towers' cosine + w x the low-rank EASE score. A given
context makes the query's factor from its movies; without one, a known user's stored
factor reads their every train rating; an unknown user without a context has none.
"""
import os
from typing import Mapping, Tuple

from contracts import features

# Serving model signatures.
SERVING_DEFAULT = "serving_default"
SERVING_AT_TIME = "serving_at_time"
SERVING_WITH_CONTEXT = "serving_with_context"
SERVING_WITH_CONTEXT_AT_TIME = "serving_with_context_at_time"
SERVING_EXCLUDE_SEEN = "serving_exclude_seen"
SERVING_RANKED = "serving_ranked"
SERVING_RANKED_AT_TIME = "serving_ranked_at_time"
SERVING_RANKED_WITH_CONTEXT = "serving_ranked_with_context"
SERVING_RANKED_WITH_CONTEXT_AT_TIME = "serving_ranked_with_context_at_time"
SERVING_RANKED_EXCLUDE_SEEN = "serving_ranked_exclude_seen"
# Each retrieval signature's ranking-stage twin: the same inputs, the retrieved movies
# re-ordered (only with a ranking stage).
RANKED_TWINS: Mapping[str, str] = {
    SERVING_DEFAULT: SERVING_RANKED,
    SERVING_AT_TIME: SERVING_RANKED_AT_TIME,
    SERVING_WITH_CONTEXT: SERVING_RANKED_WITH_CONTEXT,
    SERVING_WITH_CONTEXT_AT_TIME: SERVING_RANKED_WITH_CONTEXT_AT_TIME,
    SERVING_EXCLUDE_SEEN: SERVING_RANKED_EXCLUDE_SEEN,
}
EXCLUDE_MOVIE_IDS = "exclude_movie_ids"

# The id inputs of every signature. The one rule for whitespace around an id: it is not
# part of the id. The readers strip it from the data's ids, recommend's comma-separated
# flags strip it, and the signatures strip it from these inputs, so " 42" is user "42".
ID_INPUTS = (features.USER_ID, features.MOVIE_ID, features.CONTEXT_MOVIE_IDS,
             EXCLUDE_MOVIE_IDS)

# The serving model's outputs, each [batch, k]: the top-k movies' ids, titles and scores;
# the ranked signatures add PREDICTED_RATING_OUTPUT.
MOVIE_ID_OUTPUT = "movie_id"
MOVIE_TITLE_OUTPUT = "movie_title"
SCORE_OUTPUT = "score"
SERVING_OUTPUTS = (MOVIE_ID_OUTPUT, MOVIE_TITLE_OUTPUT, SCORE_OUTPUT)

# The raw query features each signature takes, derived from the feature spec: the
# default takes only what a request must give; the others add the request's time, its
# context, or both (every query feature). The exclude_seen ones also take
# `exclude_movie_ids` (EXCLUDING_SIGNATURES).
RETRIEVAL_SIGNATURE_INPUTS: Mapping[str, Tuple[str, ...]] = {
    SERVING_DEFAULT: features.REQUIRED_QUERY_FEATURES,
    SERVING_AT_TIME: features.REQUEST_QUERY_FEATURES,
    SERVING_WITH_CONTEXT: features.REQUIRED_QUERY_FEATURES + features.CONTEXT_FEATURES,
    SERVING_WITH_CONTEXT_AT_TIME: features.QUERY_FEATURES,
    SERVING_EXCLUDE_SEEN: features.REQUIRED_QUERY_FEATURES,
}
QUERY_SIGNATURE_INPUTS: Mapping[str, Tuple[str, ...]] = {
    **RETRIEVAL_SIGNATURE_INPUTS,
    **{RANKED_TWINS[name]: inputs for name, inputs in RETRIEVAL_SIGNATURE_INPUTS.items()},
}
EXCLUDING_SIGNATURES = (SERVING_EXCLUDE_SEEN, SERVING_RANKED_EXCLUDE_SEEN)

# Each training user's rated movies, for `recommend --exclude_seen`, relative to the
# serving model's directory. assets.extra/ travels with the SavedModel (and the Pusher's
# copy) and is ignored by TF Serving.
SEEN_MOVIES_FILE = os.path.join("assets.extra", "seen_movie_ids.tsv.gz")

# Query model signatures and output.
QUERY_SIGNATURE = "serving_default"
QUERY_WITH_CONTEXT_SIGNATURE = "with_context"
EMBEDDING_OUTPUT = "embedding"
# Inputs of the query model's signatures: the default is what the Evaluator gives.
QUERY_MODEL_SIGNATURE_INPUTS: Mapping[str, Tuple[str, ...]] = {
    QUERY_SIGNATURE: features.REQUEST_QUERY_FEATURES,
    QUERY_WITH_CONTEXT_SIGNATURE: features.QUERY_FEATURES,
}

# Ranking model signatures and output.
RANKING_SIGNATURE = "serving_default"
RANKING_WITH_CONTEXT_SIGNATURE = "with_context"
PREDICTED_RATING_OUTPUT = "predicted_rating"
