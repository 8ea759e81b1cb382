"""The rating scorer: raw (request, movie) features -> the ranking model's predicted rating,
the ranking model's export and the serving model's ranking stage."""
from typing import Any, Dict, Mapping, Optional

import tensorflow as tf

from contracts import features
from contracts import serving
from trainer_module import data
from trainer_module import histories as histories_lib
from trainer_module import ranking
from trainer_module import signatures


class RatingScorer(tf.Module):
  """Raw (request, movie) features -> the ranking model's predicted rating.

  Its signatures are the ranking model export the Evaluator reads
  (`contracts.artifacts.ranking_model_path`); the serving model calls `predict` on the
  movies it retrieved. A ranker that reads the context rates each pair with the request's
  context, else its user's stored history, as the query encoder reads it.
  """

  def __init__(self, tft_layer: tf.keras.layers.Layer, ranker: ranking.DcnRankingModel,
               max_title_tokens: int,
               histories: Optional[histories_lib.StoredHistories] = None):
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
        raw[name] = signatures.without_padding(pairs[name]).to_sparse()
      else:
        raw[name] = features.to_column(pairs[name])
    transformed = data.pad_lists(self.tft_layer(raw), self._max_title_tokens)
    if self.histories is not None and context is None:
      users = features.to_vector(transformed[features.USER_ID_INDEX])
      context = self.histories.resolve(
          users, self.histories.given(pairs.get(features.CONTEXT_MOVIE_IDS)))
    if self.histories is not None:
      transformed[features.CONTEXT_MOVIE_INDICES] = context
    return self.ranker(transformed)

  def serve(self, pairs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return {serving.PREDICTED_RATING_OUTPUT: self.predict(pairs)}

  def signatures(self) -> Dict[str, Any]:
    """The default signature (RANKING_FEATURES: the context is the stored history) and,
    when the ranker reads the context, one that also takes it."""
    result = {serving.RANKING_SIGNATURE: signatures.query_signature(
        self.serve, features.RANKING_FEATURES)}
    if self.histories is not None:
      result[serving.RANKING_WITH_CONTEXT_SIGNATURE] = signatures.query_signature(
          self.serve, features.RANKING_FEATURES + features.CONTEXT_FEATURES)
    return result
