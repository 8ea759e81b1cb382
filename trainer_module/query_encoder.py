"""The query encoder: raw query features -> query embedding, the query model's export and
the serving model's first stage."""
from typing import Any, Dict, Mapping, Optional, Tuple

import tensorflow as tf
import tensorflow_transform as tft

from contracts import features
from contracts import serving
from trainer_module import ease_factor as ease_factor_lib
from trainer_module import histories as histories_lib
from trainer_module import model as model_lib
from trainer_module import signatures


def _appended(queries: tf.Tensor, vectors: tf.Tensor) -> tf.Tensor:
  """`queries` ([batch, d] or [batch, H, d]) with `vectors` ([batch, r]) appended to each
  of their vectors: a multi-vector query's best vector stays the same, its score gains
  the same term."""
  if queries.shape.rank == 3:
    vectors = tf.tile(vectors[:, tf.newaxis, :], [1, tf.shape(queries)[1], 1])
  return tf.concat([queries, vectors], axis=-1)


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
               histories: Optional[histories_lib.StoredHistories] = None,
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
    transformed = dict(self.tft_layer(raw))
    users = features.to_vector(transformed[features.USER_ID_INDEX])
    # Read once: the towers' context, the EASE factor and the ranking stage use it.
    given, context = None, None
    if self.histories is not None:
      given = self.histories.given(query.get(features.CONTEXT_MOVIE_IDS))
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
    return {serving.EMBEDDING_OUTPUT: self.embed(query)}

  def signatures(self) -> Dict[str, Any]:
    """The query model's signatures, inputs from serving.QUERY_MODEL_SIGNATURE_INPUTS."""
    return {name: signatures.query_signature(self.serve, inputs)
            for name, inputs in serving.QUERY_MODEL_SIGNATURE_INPUTS.items()}
