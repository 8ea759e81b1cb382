"""Exports: the BruteForce serving model, the query tower, and the candidate embeddings.

Every export contains the Transform graph, so it takes raw features (strings and Unix
seconds), never vocabulary indices. The serving index is TFRS's BruteForce
(`layers.MaxSimBruteForce`, which also ranks multi-vector queries by their best vector).

Serving signatures (all return `movie_id` [batch, k] string, `movie_title` [batch, k]
string and `score` [batch, k] float32, best first):
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
                        score, both standardized per row (contracts.artifacts.
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

With an EASE factor (--ease_factor_rank, trainer_module/ease_factor.py) every export
appends it: the query model's embeddings and the candidate embeddings grow by its rank,
and each signature scores the towers' cosine + w x the low-rank EASE score. A given
context makes the query's factor from its movies; without one, a known user's stored
factor reads their every train rating; an unknown user without a context has none.
"""
import gzip
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from contracts import artifacts
from contracts import features
from trainer_module import data
from trainer_module import ease_factor as ease_factor_lib
from trainer_module import layers
from trainer_module import model as model_lib
from trainer_module import ranking

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
# Each training user's rated movies, for `recommend --exclude_seen`. assets.extra/ travels
# with the SavedModel (and the Pusher's copy) and is ignored by TF Serving.
SEEN_MOVIES_FILE = os.path.join("assets.extra", "seen_movie_ids.tsv.gz")

# The raw query features each signature takes, derived from the feature spec: the
# default takes only what a request must give; the others add the request's time, its
# context, or both (every query feature). The exclude_seen ones also take
# `exclude_movie_ids` (EXCLUDING_SIGNATURES).
_RETRIEVAL_SIGNATURE_INPUTS: Mapping[str, Tuple[str, ...]] = {
    SERVING_DEFAULT: features.REQUIRED_QUERY_FEATURES,
    SERVING_AT_TIME: features.REQUEST_QUERY_FEATURES,
    SERVING_WITH_CONTEXT: features.REQUIRED_QUERY_FEATURES + features.CONTEXT_FEATURES,
    SERVING_WITH_CONTEXT_AT_TIME: features.QUERY_FEATURES,
    SERVING_EXCLUDE_SEEN: features.REQUIRED_QUERY_FEATURES,
}
QUERY_SIGNATURE_INPUTS: Mapping[str, Tuple[str, ...]] = {
    **_RETRIEVAL_SIGNATURE_INPUTS,
    **{RANKED_TWINS[name]: inputs for name, inputs in _RETRIEVAL_SIGNATURE_INPUTS.items()},
}
EXCLUDING_SIGNATURES = (SERVING_EXCLUDE_SEEN, SERVING_RANKED_EXCLUDE_SEEN)
# Inputs of the query model's signatures: the default is what the Evaluator gives.
QUERY_MODEL_SIGNATURE_INPUTS: Mapping[str, Tuple[str, ...]] = {
    artifacts.QUERY_SIGNATURE: features.REQUEST_QUERY_FEATURES,
    artifacts.QUERY_WITH_CONTEXT_SIGNATURE: features.QUERY_FEATURES,
}
_EXCLUDE_SPEC = tf.TensorSpec([None, None], tf.string, name=EXCLUDE_MOVIE_IDS)

QueryFn = Callable[[Dict[str, tf.Tensor]], Dict[str, tf.Tensor]]


def query_signature(fn: QueryFn, names: Sequence[str],
                    extra_specs: Sequence[tf.TensorSpec] = ()) -> Any:
  """A serving signature taking the named raw features (and `extra_specs`) as inputs.

  The signature's input keys are the feature names; `fn` receives them as one dict, once
  their batch sizes are checked (`check_same_batch`: the request's inputs, before any
  default is filled in).

  Returns:
    The concrete function, for `tf.saved_model.save(..., signatures=...)`.
  """
  specs = features.serving_specs(names) + tuple(extra_specs)
  keys = tuple(spec.name for spec in specs)

  @tf.function(input_signature=specs)
  def signature(*values):
    inputs = dict(zip(keys, values))
    check_same_batch(inputs)
    return fn(inputs)

  return signature.get_concrete_function()


def check_same_batch(inputs: Mapping[str, tf.Tensor]) -> None:
  """Raises InvalidArgumentError naming the inputs when their batch sizes differ.

  Without this a mismatch surfaces as an internal ConcatOp message, or worse, a one-row
  input is silently broadcast to every row of the others.
  """
  names = sorted(inputs)
  sizes = tf.stack([tf.shape(inputs[name], out_type=tf.int64)[0] for name in names])
  tf.debugging.assert_equal(
      sizes, tf.fill(tf.shape(sizes), sizes[0]),
      message=f"Serving inputs {', '.join(names)} must have the same batch size (first "
      "dimension); got, in that order")


def without_padding(values: tf.Tensor) -> tf.RaggedTensor:
  """A serving input's string lists [batch, n], rows padded with "", without the padding
  (wherever it is in a row)."""
  return tf.ragged.boolean_mask(values, tf.not_equal(values, ""))


def _appended(queries: tf.Tensor, vectors: tf.Tensor) -> tf.Tensor:
  """`queries` ([batch, d] or [batch, H, d]) with `vectors` ([batch, r]) appended to each
  of their vectors: a multi-vector query's best vector stays the same, its score gains
  the same term."""
  if queries.shape.rank == 3:
    vectors = tf.tile(vectors[:, tf.newaxis, :], [1, tf.shape(queries)[1], 1])
  return tf.concat([queries, vectors], axis=-1)


class StoredHistories(tf.Module):
  """Each training user's most recent train movies, and the context a request is read
  with: the one it gives, else its user's stored history.

  One module for the query encoder and the ranking stage's rating scorer, so that a
  SavedModel holds the histories once and both read a request's context alike.
  """

  def __init__(self, tft_output: tft.TFTransformOutput, user_histories: np.ndarray):
    """Args:
      tft_output: The Transform output; its graph must take the context.
      user_histories: int64 [users (OOV buckets included), max_context], row u the movie
        indices of user index u's most recent train movies, padded with -1
        (`data.user_histories`).
    """
    super().__init__()
    raw_spec = tft_output.raw_feature_spec()
    if features.CONTEXT_MOVIE_IDS not in raw_spec:
      raise ValueError(f"The model reads {features.CONTEXT_MOVIE_IDS!r}, which the Transform "
                       "graph does not take: run the UserContext component before Transform.")
    # Transform takes the context as SchemaGen inferred it: a fixed width (UserContext
    # pads to exactly max_context values) or, from a feature spec, a sparse list.
    self._raw_context_is_dense = isinstance(raw_spec[features.CONTEXT_MOVIE_IDS],
                                            tf.io.FixedLenFeature)
    self.max_context = int(user_histories.shape[1])
    # A variable, not a constant: it is saved with the weights, not in the graph.
    self.user_histories = tf.Variable(tf.constant(user_histories, tf.int64),
                                      trainable=False, name="user_histories")

  def raw(self, context: tf.Tensor) -> Any:
    """[batch, n] strings padded with "" -> the Transform graph's context input.

    Padding anywhere in a row is dropped and the first `max_context` ids are kept.
    """
    dense = without_padding(context).to_tensor(default_value="", shape=[None, self.max_context])
    return dense if self._raw_context_is_dense else tf.sparse.from_dense(dense)

  def given(self, transformed: Mapping[str, tf.Tensor]
            ) -> Optional[Tuple[tf.Tensor, tf.Tensor]]:
    """(indices [batch, max_context] padded with PADDING, has_context [batch, 1]) of the
    context the request gave, or None when it gave none."""
    if features.CONTEXT_MOVIE_INDICES not in transformed:
      return None
    given = transformed[features.CONTEXT_MOVIE_INDICES]
    if isinstance(given, tf.SparseTensor):
      given = tf.sparse.to_dense(given, default_value=model_lib.PADDING)
    given = given[:, :self.max_context]
    given = tf.pad(given, [[0, 0], [0, self.max_context - tf.shape(given)[1]]],
                   constant_values=model_lib.PADDING)
    return given, tf.reduce_any(given != model_lib.PADDING, axis=1, keepdims=True)

  def resolve(self, users: tf.Tensor,
              given: Optional[Tuple[tf.Tensor, tf.Tensor]]) -> tf.Tensor:
    """The context indices [batch, max_context] a request is read with: `given`
    (`StoredHistories.given`) where a row gave one, else the stored history of `users`
    (indices [batch])."""
    stored = tf.gather(self.user_histories, users)
    return stored if given is None else tf.where(given[1], given[0], stored)


class QueryEncoder(tf.Module):
  """Raw query features -> query embedding (Transform graph included): the query tower's
  L2-normalized output, with the EASE factor's vector appended when there is one.

  With stored histories, a query's context is the one it gives, else (no context, or an
  all-"" row) its user's stored history; the context query towers read it. With an EASE
  factor (trainer_module/ease_factor.py), the factor's vector is appended to the
  embedding (to each vector of a multi-vector query): from every movie the given context
  holds (the towers read its first max_context), or without one, the user's stored
  vector (their every train rating).
  """

  def __init__(self, tft_output: tft.TFTransformOutput,
               retrieval_model: model_lib.RetrievalModel,
               histories: Optional[StoredHistories] = None,
               ease_factor: Optional[ease_factor_lib.ServingFactor] = None):
    """Args:
      tft_output: The Transform output.
      retrieval_model: The trained model.
      histories: The users' stored histories; required when the query tower reads the
        context. Without them a request's context is ignored.
      ease_factor: The EASE factor to append, or None for the towers alone.
    """
    super().__init__()
    if retrieval_model.uses_context and histories is None:
      raise ValueError(f"The {retrieval_model.query_tower_name!r} query tower reads the "
                       "context: the query encoder needs the stored histories.")
    # Attributes, so the Transform graph's assets (vocabularies) are saved with the model.
    self.tft_layer = tft_output.transform_features_layer()
    self.retrieval_model = retrieval_model
    self.histories = histories
    self._has_ease_factor = ease_factor is not None
    if ease_factor is not None:
      self.ease_query_rows = tf.Variable(ease_factor.query_rows, trainable=False,
                                         name="ease_query_rows")
      self.ease_user_vectors = tf.Variable(ease_factor.user_vectors, trainable=False,
                                           name="ease_user_vectors")
      # The factor reads every movie a request gives, where the towers read the first
      # max_context through the Transform graph: its own lookup of the movie vocabulary
      # (an id outside it, or "" padding, gets -1 and no row).
      vocabulary = tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB)
      self.movie_index = tf.lookup.StaticHashTable(
          tf.lookup.KeyValueTensorInitializer(
              tf.constant(vocabulary, tf.string),
              tf.range(len(vocabulary), dtype=tf.int64)), default_value=-1)

  def _ease_vectors(self, users: tf.Tensor, context_ids: Optional[tf.Tensor],
                    given: Optional[Tuple[tf.Tensor, tf.Tensor]]) -> tf.Tensor:
    """[batch, r]: the EASE factor's vector of each query: the sum of the movie rows of
    every movie its context gives (`context_ids`, [batch, n] strings padded with "", any
    n: EASE reads a whole history), else the stored vector of its user (`users`, indices
    [batch])."""
    stored = tf.gather(self.ease_user_vectors, users)
    if given is None or context_ids is None:
      return stored
    indices = self.movie_index.lookup(context_ids)
    is_movie = tf.cast(indices >= 0, tf.float32)[:, :, tf.newaxis]
    from_context = tf.reduce_sum(
        tf.gather(self.ease_query_rows, tf.maximum(indices, 0)) * is_movie, axis=1)
    return tf.where(given[1], from_context, stored)

  def encode(self, query: Mapping[str, tf.Tensor]) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    """(the query embeddings, the context indices [batch, max_context] each query was
    read with, None without stored histories) of raw query features: every
    REQUEST_QUERY_FEATURES name ([batch]) and, optionally, the context ([batch, n]
    strings padded with "")."""
    raw = {name: features.to_column(query[name]) for name in features.REQUEST_QUERY_FEATURES}
    if self.histories is not None and features.CONTEXT_MOVIE_IDS in query:
      raw[features.CONTEXT_MOVIE_IDS] = self.histories.raw(query[features.CONTEXT_MOVIE_IDS])
    transformed = dict(self.tft_layer(raw))
    users = features.to_vector(transformed[features.USER_ID_INDEX])
    # Read once: the towers' context, the EASE factor and the ranking stage use it.
    given, context = None, None
    if self.histories is not None:
      given = self.histories.given(transformed)
      context = self.histories.resolve(users, given)
      transformed[features.CONTEXT_MOVIE_INDICES] = context
    queries = self.retrieval_model.query_embedding(transformed)
    if self._has_ease_factor:
      queries = _appended(queries, self._ease_vectors(
          users, query.get(features.CONTEXT_MOVIE_IDS), given))
    return queries, context

  def embed(self, query: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """The query embeddings of raw query features (as `encode` takes them)."""
    return self.encode(query)[0]

  def serve(self, query: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return {artifacts.EMBEDDING_OUTPUT: self.embed(query)}

  def signatures(self) -> Dict[str, Any]:
    """The query model's signatures, inputs from QUERY_MODEL_SIGNATURE_INPUTS."""
    return {name: query_signature(self.serve, inputs)
            for name, inputs in QUERY_MODEL_SIGNATURE_INPUTS.items()}


class RatingScorer(tf.Module):
  """Raw (request, movie) features -> the ranking model's predicted rating.

  Its signatures are the ranking model export the Evaluator reads
  (`artifacts.ranking_model_path`); the serving model calls `predict` on the movies it
  retrieved. A ranker that reads the context rates each pair with the request's context,
  else its user's stored history, as the query encoder reads it.
  """

  def __init__(self, tft_layer: tf.keras.layers.Layer, ranker: ranking.DcnRankingModel,
               max_title_tokens: int, histories: Optional[StoredHistories] = None):
    """Args:
      tft_layer: The Transform graph's layer (shared with the query encoder when both are
        in one SavedModel, so its assets are saved once).
      ranker: The trained ranking model.
      max_title_tokens: As in training.
      histories: The users' stored histories (shared with the query encoder likewise);
        required when the ranker reads the context.
    """
    super().__init__()
    if ranker.uses_context and histories is None:
      raise ValueError("The ranking model reads the context: the rating scorer needs the "
                       "stored histories.")
    self.tft_layer = tft_layer
    self.ranker = ranker
    self.histories = histories if ranker.uses_context else None
    self._max_title_tokens = max_title_tokens

  def predict(self, pairs: Mapping[str, tf.Tensor],
              context: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Predicted ratings [batch] of `pairs`: every RANKING_FEATURES name, [batch] each,
    list features [batch, n] strings padded with "", and optionally the context.

    Args:
      pairs: Raw features of each pair.
      context: Context movie indices [batch, max_context] already read (the serving
        model's, from `QueryEncoder.encode`); None to read it from `pairs`.
    """
    raw = {}
    for name in features.RANKING_FEATURES:
      if features.RAW_FEATURES[name].multivalent:
        raw[name] = without_padding(pairs[name]).to_sparse()
      else:
        raw[name] = features.to_column(pairs[name])
    read_context = self.histories is not None and context is None
    if read_context and features.CONTEXT_MOVIE_IDS in pairs:
      raw[features.CONTEXT_MOVIE_IDS] = self.histories.raw(pairs[features.CONTEXT_MOVIE_IDS])
    transformed = data.pad_lists(self.tft_layer(raw), self._max_title_tokens)
    if read_context:
      users = features.to_vector(transformed[features.USER_ID_INDEX])
      context = self.histories.resolve(users, self.histories.given(transformed))
    if self.histories is not None:
      transformed[features.CONTEXT_MOVIE_INDICES] = context
    return self.ranker(transformed)

  def serve(self, pairs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return {artifacts.PREDICTED_RATING_OUTPUT: self.predict(pairs)}

  def signatures(self) -> Dict[str, Any]:
    """The default signature (RANKING_FEATURES: the context is the stored history) and,
    when the ranker reads the context, one that also takes it."""
    signatures = {artifacts.RANKING_SIGNATURE: query_signature(self.serve,
                                                               features.RANKING_FEATURES)}
    if self.histories is not None:
      signatures[artifacts.RANKING_WITH_CONTEXT_SIGNATURE] = query_signature(
          self.serve, features.RANKING_FEATURES + features.CONTEXT_FEATURES)
    return signatures


def candidate_embeddings(tft_output: tft.TFTransformOutput,
                         retrieval_model: model_lib.RetrievalModel,
                         raw_catalog: Mapping[str, tf.Tensor], max_title_tokens: int,
                         ease_factor: Optional[ease_factor_lib.ServingFactor] = None,
                         batch_size: int = 8192) -> np.ndarray:
  """Embeds every catalog movie from its raw features: float32 [num_movies, d], with the
  EASE factor's candidate row appended to each (d then includes its rank) when given."""
  tft_layer = tft_output.transform_features_layer()
  count = int(raw_catalog[features.MOVIE_ID].shape[0])
  parts = []
  for start in range(0, count, batch_size):
    raw = {name: _rows(value, start, start + batch_size) for name, value in raw_catalog.items()}
    transformed = data.pad_lists(tft_layer(raw), max_title_tokens)
    embedded = retrieval_model.candidate_embedding(transformed).numpy()
    if ease_factor is not None:
      movies = features.to_vector(transformed[features.MOVIE_ID_INDEX]).numpy()
      embedded = np.concatenate([embedded, ease_factor.candidate_rows[movies]], axis=1)
    parts.append(embedded)
  return np.concatenate(parts, axis=0)


def _rows(value, start: int, stop: int):
  if isinstance(value, tf.SparseTensor):
    return tf.sparse.slice(value, [start, 0], [stop - start, value.dense_shape[1]])
  return value[start:stop]


def _standardized(values: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
  """Each row of [B, N] to mean 0 and std 1 over its `valid` entries (bool [B, N]), as
  `contracts.artifacts.ranked_order_key`; the other entries are shifted alike."""
  weights = tf.cast(valid, values.dtype)
  count = tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1.0)
  mean = tf.reduce_sum(values * weights, axis=1, keepdims=True) / count
  variance = tf.reduce_sum(tf.square(values - mean) * weights, axis=1, keepdims=True) / count
  return (values - mean) / (tf.sqrt(variance) + artifacts.STD_EPSILON)


def _blanked(results: Dict[str, tf.Tensor], filled: tf.Tensor) -> Dict[str, tf.Tensor]:
  """Unfilled slots of serving outputs as "" ids and titles, -inf scores (NaN for any
  other float output)."""
  blanks = {artifacts.MOVIE_ID_OUTPUT: "", artifacts.MOVIE_TITLE_OUTPUT: "",
            artifacts.SCORE_OUTPUT: float("-inf")}
  return {name: tf.where(filled, value, blanks.get(name, float("nan")))
          for name, value in results.items()}


class ServingModel(tf.Module):
  """Raw user features in, top-k movies (ids, titles, scores) out, over the whole catalog."""

  def __init__(self, query_encoder: QueryEncoder, embeddings: np.ndarray,
               movie_ids: List[bytes], movie_titles: List[bytes], top_k: int,
               reference_timestamp: int, rating_scorer: Optional[RatingScorer] = None,
               movie_genres: Optional[np.ndarray] = None, ranking_candidates: int = 0,
               ranking_weight: float = 1.0):
    """Args:
      query_encoder: Raw query features -> query embedding.
      embeddings: float32 [movies, d], the catalog's candidate embeddings.
      movie_ids, movie_titles: The catalog's, in the same order.
      top_k: Movies returned per query.
      reference_timestamp: Query time of a request that gives none.
      rating_scorer: The ranking stage, or None for retrieval only (no serving_ranked).
      movie_genres: bytes [movies, n], each catalog movie's genres padded with b"";
        needed with `rating_scorer`.
      ranking_candidates: Movies retrieved for the ranking stage to re-order.
      ranking_weight: The predicted rating's share of serving_ranked's order
        (`contracts.artifacts.ranked_order_key`).
    """
    super().__init__()
    self.query_encoder = query_encoder
    top_k = min(top_k, len(movie_ids))
    # Identifiers are catalog positions; ids and titles are looked up from them.
    self.index = layers.MaxSimBruteForce(k=top_k)
    self.index.index(tf.constant(embeddings), identifiers=tf.range(len(movie_ids)))
    self._top_k = top_k
    self._movie_ids = tf.constant(movie_ids)
    self._movie_titles = tf.constant(movie_titles)
    self._reference_timestamp = tf.constant(reference_timestamp, tf.int64)
    self.position_by_id = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(self._movie_ids, tf.range(len(movie_ids))),
        default_value=-1)
    self.rating_scorer = rating_scorer
    if rating_scorer is not None:
      if movie_genres is None or len(movie_genres) != len(movie_ids) or ranking_candidates < 1:
        raise ValueError("A ranking stage needs every catalog movie's genres and "
                         "ranking_candidates >= 1.")
      self._movie_genres = tf.constant(movie_genres)
      self._ranking_candidates = min(ranking_candidates, len(movie_ids))
      self._ranking_weight = float(ranking_weight)

  def _results(self, scores: tf.Tensor, positions: tf.Tensor) -> Dict[str, tf.Tensor]:
    return {artifacts.MOVIE_ID_OUTPUT: tf.gather(self._movie_ids, positions),
            artifacts.MOVIE_TITLE_OUTPUT: tf.gather(self._movie_titles, positions),
            artifacts.SCORE_OUTPUT: scores}

  def complete_query(self, query: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Fills the optional query features a request left out.

    The query time defaults to the model's reference time (the latest training rating).
    The context is left out: the query encoder then uses the stored history.
    """
    batch = tf.shape(query[features.USER_ID])
    defaults = {features.TIMESTAMP: lambda: tf.fill(batch, self._reference_timestamp)}
    missing = [name for name in features.REQUEST_QUERY_FEATURES if name not in query]
    unknown = [name for name in missing if name not in defaults]
    if unknown:
      raise ValueError(f"No serving default for the optional query features {unknown}.")
    return {**query, **{name: defaults[name]() for name in missing}}

  def serve(self, query: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Top-k movies for each row of `query` (raw query features)."""
    return self._results(*self.index(self.query_encoder.embed(self.complete_query(query))))

  def _retrieve(self, queries: tf.Tensor, k: int, excluded: Optional[tf.Tensor] = None
                ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(scores, positions, filled), each [batch, k]: the best k movies of each row that are
    not among its `excluded` catalog positions ([batch, n], -1 for none). `filled` is
    False for the last slots when fewer than k movies are left (they hold excluded ones)."""
    if excluded is None:
      scores, positions = self.index(queries, k=k)
      return scores, positions, tf.ones_like(positions, tf.bool)
    # Retrieve enough extra candidates to still have k after dropping the excluded ones.
    wider_k = tf.minimum(k + tf.shape(excluded)[1], tf.shape(self._movie_ids)[0])
    scores, positions = self.index(queries, k=wider_k)
    is_excluded = tf.reduce_any(positions[:, :, tf.newaxis] == excluded[:, tf.newaxis, :],
                                axis=-1)
    kept = tf.math.top_k(tf.where(is_excluded, tf.float32.min, scores), k=k).indices
    return (tf.gather(scores, kept, batch_dims=1), tf.gather(positions, kept, batch_dims=1),
            ~tf.gather(is_excluded, kept, batch_dims=1))

  def _split_exclusions(self, inputs: Mapping[str, tf.Tensor]
                        ) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
    """(the query features, the excluded movies' catalog positions) of an exclude_seen
    request; unknown ids are ignored."""
    query = {name: value for name, value in inputs.items() if name != EXCLUDE_MOVIE_IDS}
    return query, self.position_by_id.lookup(inputs[EXCLUDE_MOVIE_IDS])

  def serve_exclude_seen(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Top-k movies for each row, never one of that row's `exclude_movie_ids`."""
    query, excluded = self._split_exclusions(inputs)
    scores, positions, filled = self._retrieve(
        self.query_encoder.embed(self.complete_query(query)), self._top_k, excluded)
    return _blanked(self._results(scores, positions), filled)

  def serve_ranked(self, query: Dict[str, tf.Tensor],
                   excluded: Optional[tf.Tensor] = None) -> Dict[str, tf.Tensor]:
    """The top-k of each row's `ranking_candidates` retrieved movies (retrieved as `serve`,
    or with `excluded` as `serve_exclude_seen`, retrieves them from the same query),
    ordered by `contracts.artifacts.ranked_order_key` of their scores and predicted
    ratings."""
    query = self.complete_query(query)
    queries, context = self.query_encoder.encode(query)
    scores, positions, filled = self._retrieve(queries, self._ranking_candidates, excluded)
    # One (request, movie) pair per retrieved movie, row-major.
    per_row = tf.shape(positions)[1]
    flat = tf.reshape(positions, [-1])
    pairs = {name: tf.repeat(query[name], per_row)
             for name in features.REQUEST_QUERY_FEATURES}
    pairs.update({features.MOVIE_ID: tf.gather(self._movie_ids, flat),
                  features.MOVIE_TITLE: tf.gather(self._movie_titles, flat),
                  features.MOVIE_GENRES: tf.gather(self._movie_genres, flat)})
    # Each pair is rated with its request's context, read once by the query encoder.
    pair_context = None if context is None else tf.repeat(context, per_row, axis=0)
    ratings = tf.reshape(self.rating_scorer.predict(pairs, pair_context), tf.shape(positions))
    key = ((1 - self._ranking_weight) * _standardized(scores, filled)
           + self._ranking_weight * _standardized(ratings, filled))
    best = tf.math.top_k(tf.where(filled, key, tf.float32.min),
                         k=tf.minimum(self._top_k, per_row)).indices
    results = {**self._results(tf.gather(scores, best, batch_dims=1),
                               tf.gather(positions, best, batch_dims=1)),
               artifacts.PREDICTED_RATING_OUTPUT: tf.gather(ratings, best, batch_dims=1)}
    return _blanked(results, tf.gather(filled, best, batch_dims=1))

  def serve_ranked_exclude_seen(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """serve_ranked over the movies that are not among each row's `exclude_movie_ids`."""
    return self.serve_ranked(*self._split_exclusions(inputs))

  def signatures(self) -> Dict[str, Any]:
    """The serving signatures, their inputs from QUERY_SIGNATURE_INPUTS; the ranked ones
    (RANKED_TWINS) only with a ranking stage."""
    ranked = set(RANKED_TWINS.values())
    methods = {**{name: self.serve_ranked for name in ranked},
               SERVING_EXCLUDE_SEEN: self.serve_exclude_seen,
               SERVING_RANKED_EXCLUDE_SEEN: self.serve_ranked_exclude_seen}
    return {name: query_signature(methods.get(name, self.serve), inputs,
                                  [_EXCLUDE_SPEC] if name in EXCLUDING_SIGNATURES else ())
            for name, inputs in QUERY_SIGNATURE_INPUTS.items()
            if name not in ranked or self.rating_scorer is not None}


def export_all(model_uri: str, serving_model_dir: str, tft_output: tft.TFTransformOutput,
               retrieval_model: model_lib.RetrievalModel, raw_catalog: Mapping[str, tf.Tensor],
               max_title_tokens: int, top_k: int, reference_timestamp: int,
               seen_movies: Mapping[str, Sequence[str]], user_histories: np.ndarray,
               ranker: Optional[ranking.DcnRankingModel] = None,
               ranking_candidates: int = 0, ranking_weight: float = 1.0,
               ease_factor: Optional[ease_factor_lib.ServingFactor] = None) -> None:
  """Writes the serving model, the query model and the candidate embeddings.

  Args:
    model_uri: The Trainer's Model artifact directory (query model and embeddings go here,
      laid out as `contracts.artifacts` says).
    serving_model_dir: Where the serving SavedModel goes (the Pusher pushes it).
    tft_output: The Transform output.
    retrieval_model: The trained model.
    raw_catalog: Raw movie features of the whole catalog.
    max_title_tokens: As in training.
    top_k: Movies returned per query by the serving model.
    reference_timestamp: Query time used when a request gives none.
    seen_movies: user id -> movie ids the user rated in training.
    user_histories: int64 [users, max_context], each user index's most recent train
      movie indices (`data.user_histories`): the context of a query that gives none.
    ranker: The trained ranking stage, or None. With one, the ranking model is exported
      too and the serving model gains the ranked signatures (RANKED_TWINS).
    ranking_candidates: Movies retrieved for the ranking stage to re-order.
    ranking_weight: The predicted rating's share of serving_ranked's order.
    ease_factor: The EASE factor appended to the query and candidate embeddings (every
      export then scores with it), or None.
  """
  embeddings = candidate_embeddings(tft_output, retrieval_model, raw_catalog, max_title_tokens,
                                    ease_factor)
  movie_ids = features.to_vector(raw_catalog[features.MOVIE_ID]).numpy().tolist()
  titles = features.to_vector(raw_catalog[features.MOVIE_TITLE]).numpy().tolist()
  _write_candidates(model_uri, movie_ids, embeddings)

  reads_context = retrieval_model.uses_context or (ranker is not None and ranker.uses_context)
  histories = StoredHistories(tft_output, user_histories) if reads_context else None
  encoder = QueryEncoder(tft_output, retrieval_model, histories, ease_factor)
  tf.saved_model.save(encoder, artifacts.query_model_path(model_uri),
                      signatures=encoder.signatures())
  scorer, genres = None, None
  if ranker is not None:
    scorer = RatingScorer(encoder.tft_layer, ranker, max_title_tokens, histories)
    tf.saved_model.save(scorer, artifacts.ranking_model_path(model_uri),
                        signatures=scorer.signatures())
    genres = tf.sparse.to_dense(raw_catalog[features.MOVIE_GENRES], default_value=b"").numpy()
  serving = ServingModel(encoder, embeddings, movie_ids, titles, top_k, reference_timestamp,
                         scorer, genres, ranking_candidates, ranking_weight)
  tf.saved_model.save(serving, serving_model_dir, signatures=serving.signatures())
  write_seen_movies(serving_model_dir, seen_movies)


def write_seen_movies(serving_model_dir: str, seen_movies: Mapping[str, Sequence[str]]) -> None:
  """Writes `user_id<TAB>movie_id,movie_id,...` lines, gzipped, under assets.extra/."""
  path = os.path.join(serving_model_dir, SEEN_MOVIES_FILE)
  tf.io.gfile.makedirs(os.path.dirname(path))
  lines = "".join(f"{user}\t{','.join(movies)}\n" for user, movies in sorted(seen_movies.items()))
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(gzip.compress(lines.encode(), mtime=0))


def read_seen_movies(serving_model_dir: str) -> Dict[str, List[str]]:
  """Inverse of `write_seen_movies`; {} if the model has no history file."""
  path = os.path.join(serving_model_dir, SEEN_MOVIES_FILE)
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path, "rb") as f:
    text = gzip.decompress(f.read()).decode()
  return {user: movies.split(",") if movies else []
          for user, movies in (line.split("\t", 1) for line in text.splitlines())}


def _write_candidates(model_uri: str, movie_ids: List[bytes], embeddings: np.ndarray) -> None:
  """Candidate ids and vectors, the form an ANN service (ScaNN, Vertex Vector Search) loads."""
  tf.io.gfile.makedirs(os.path.dirname(artifacts.embeddings_path(model_uri)))
  with tf.io.gfile.GFile(artifacts.movie_ids_path(model_uri), "w") as f:
    f.write("".join(movie_id.decode() + "\n" for movie_id in movie_ids))
  with tf.io.gfile.GFile(artifacts.embeddings_path(model_uri), "wb") as f:
    np.save(f, embeddings.astype(np.float32))
