"""The serving model: raw query features in, the top-k movies of the whole catalog out, with
the signatures contracts/serving.py describes.

The index is TFRS's BruteForce (`layers.MaxSimBruteForce`, which also ranks multi-vector
queries by their best vector) over the candidate embeddings; with a ranking stage the
ranked signatures re-order the retrieved movies by `ranking_core.scores.ranked_order_key`.
"""
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from contracts import features
from contracts import serving
from ranking_core import scores as scores_lib
from trainer_module import layers
from trainer_module import query_encoder as query_encoder_lib
from trainer_module import rating_scorer as rating_scorer_lib
from trainer_module import signatures


def ranked_order_key(scores: tf.Tensor, ratings: tf.Tensor, valid: tf.Tensor,
                     weight: float) -> tf.Tensor:
  """serving_ranked's order key [B, N] of each row's retrieved movies, highest first:
  `ranking_core.scores.ranked_order_key` in TensorFlow, each row standardized over its
  `valid` entries (bool [B, N]: the others, excluded movies, do not count; their keys are
  meaningless). tests/test_serving_model.py checks the two agree."""
  return (1 - weight) * _standardized(scores, valid) + weight * _standardized(ratings, valid)


def _standardized(values: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
  """Each row of [B, N] to mean 0 and std 1 over its `valid` entries (bool [B, N]), as
  the numpy key standardizes a row (with the same STD_EPSILON); the other entries are
  shifted alike."""
  weights = tf.cast(valid, values.dtype)
  count = tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1.0)
  mean = tf.reduce_sum(values * weights, axis=1, keepdims=True) / count
  variance = tf.reduce_sum(tf.square(values - mean) * weights, axis=1, keepdims=True) / count
  return (values - mean) / (tf.sqrt(variance) + scores_lib.STD_EPSILON)


def _blanked(results: Dict[str, tf.Tensor], filled: tf.Tensor) -> Dict[str, tf.Tensor]:
  """Unfilled slots of serving outputs as "" ids and titles, -inf scores (NaN for any
  other float output)."""
  blanks = {serving.MOVIE_ID_OUTPUT: "", serving.MOVIE_TITLE_OUTPUT: "",
            serving.SCORE_OUTPUT: float("-inf")}
  return {name: tf.where(filled, value, blanks.get(name, float("nan")))
          for name, value in results.items()}


class ServingModel(tf.Module):
  """Raw user features in, top-k movies (ids, titles, scores) out, over the whole catalog."""

  def __init__(self, query_encoder: query_encoder_lib.QueryEncoder, embeddings: np.ndarray,
               movie_ids: List[bytes], movie_titles: List[bytes], top_k: int,
               reference_timestamp: int,
               rating_scorer: Optional[rating_scorer_lib.RatingScorer] = None,
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
        (`ranking_core.scores.ranked_order_key`).
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
    return {serving.MOVIE_ID_OUTPUT: tf.gather(self._movie_ids, positions),
            serving.MOVIE_TITLE_OUTPUT: tf.gather(self._movie_titles, positions),
            serving.SCORE_OUTPUT: scores}

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
    query = {name: value for name, value in inputs.items() if name != serving.EXCLUDE_MOVIE_IDS}
    return query, self.position_by_id.lookup(inputs[serving.EXCLUDE_MOVIE_IDS])

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
    ordered by `ranking_core.scores.ranked_order_key` of their scores and predicted
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
    key = ranked_order_key(scores, ratings, filled, self._ranking_weight)
    best = tf.math.top_k(tf.where(filled, key, tf.float32.min),
                         k=tf.minimum(self._top_k, per_row)).indices
    results = {**self._results(tf.gather(scores, best, batch_dims=1),
                               tf.gather(positions, best, batch_dims=1)),
               serving.PREDICTED_RATING_OUTPUT: tf.gather(ratings, best, batch_dims=1)}
    return _blanked(results, tf.gather(filled, best, batch_dims=1))

  def serve_ranked_exclude_seen(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """serve_ranked over the movies that are not among each row's `exclude_movie_ids`."""
    return self.serve_ranked(*self._split_exclusions(inputs))

  def signatures(self) -> Dict[str, Any]:
    """The serving signatures, their inputs from serving.QUERY_SIGNATURE_INPUTS; the
    ranked ones (serving.RANKED_TWINS) only with a ranking stage."""
    ranked = set(serving.RANKED_TWINS.values())
    methods = {**{name: self.serve_ranked for name in ranked},
               serving.SERVING_EXCLUDE_SEEN: self.serve_exclude_seen,
               serving.SERVING_RANKED_EXCLUDE_SEEN: self.serve_ranked_exclude_seen}
    return {name: signatures.query_signature(
                methods.get(name, self.serve), inputs,
                [signatures.EXCLUDE_SPEC] if name in serving.EXCLUDING_SIGNATURES else ())
            for name, inputs in serving.QUERY_SIGNATURE_INPUTS.items()
            if name not in ranked or self.rating_scorer is not None}
