"""The Transform preprocessing_fn: vocabularies, title tokens and timestamp features.

Every output is computed from exactly one raw feature. That is what lets the Transform
graph run on only the query features (user_id, timestamp: serving) or only the candidate
features (movie_id, movie_title, movie_genres: the candidate index); outputs whose raw
input is absent are simply dropped by `tft_output.transform_features_layer()`.
"""
from typing import Any, Dict, Mapping, Optional

import tensorflow as tf
import tensorflow_transform as tft

from contracts import configs
from contracts import features


def title_tokens(titles: tf.Tensor) -> tf.SparseTensor:
  """Lower-cased letter-and-digit tokens of each title; the release year is a token too.

  "Star Wars: Episode IV (1977)" -> [star, wars, episode, iv, 1977]; Unicode-aware, so
  "Amélie (2001)" -> [amélie, 2001] (ml-latest titles are UTF-8 in many scripts).
  """
  lowered = tf.strings.lower(titles, encoding="utf-8")
  cleaned = tf.strings.regex_replace(lowered, r"[^\p{L}\p{N}]+", " ")
  return tf.strings.split(tf.strings.strip(cleaned)).to_sparse()


def clipped_z_score(values: tf.Tensor) -> tf.Tensor:
  """z-score over the analyzed (training) data, with inputs clipped to its [min, max].

  A query far outside the training time range (today's date on 1998 data) would otherwise
  get a z-score no training example had, and that one input would swamp the user's
  embedding: every user got nearly the same list. Clipped, such a query is treated as the
  nearest trained time. float32 output.
  """
  clipped = tf.clip_by_value(values, tft.min(values), tft.max(values))
  return tf.cast((clipped - tft.mean(values)) / _safe_std(values), tf.float32)


def _safe_std(values: tf.Tensor) -> tf.Tensor:
  """Standard deviation of the analyzed data; 1 when it is 0 (a single timestamp)."""
  std = tf.sqrt(tft.var(values))
  return tf.where(std > 0, std, tf.ones_like(std))


def _vocabulary(x, name: str, options: configs.TransformConfig, **kwargs) -> Any:
  return tft.compute_and_apply_vocabulary(
      x, num_oov_buckets=options.num_oov_buckets, vocab_filename=name, **kwargs)


def preprocessing_fn(inputs: Dict[str, Any],
                     custom_config: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
  """tf.Transform preprocessing for the ratings stream.

  Args:
    inputs: Raw features, shaped as `features.raw_feature_spec()` parses them.
    custom_config: `dataclasses.asdict` of a `configs.TransformConfig`; missing
      fields take their defaults.

  Returns:
    The transformed features named in `features` (USER_ID_INDEX, MOVIE_ID_INDEX,
    TITLE_TOKENS, GENRE_INDICES, TIMESTAMP_BUCKET, TIMESTAMP_NORMALIZED, TIMESTAMP_SECONDS),
    and RATING_LABEL when the raw examples have a rating. The context is no input: the
    Trainer joins it from the user histories in movie vocabulary indices.
  """
  options = configs.TransformConfig.from_dict(custom_config)
  outputs = {}

  user_id = features.to_vector(inputs[features.USER_ID])
  outputs[features.USER_ID_INDEX] = _vocabulary(user_id, features.USER_ID_VOCAB, options)

  movie_id = features.to_vector(inputs[features.MOVIE_ID])
  movie_vocabulary = tft.vocabulary(movie_id, vocab_filename=features.MOVIE_ID_VOCAB)
  outputs[features.MOVIE_ID_INDEX] = tft.apply_vocabulary(
      movie_id, movie_vocabulary, num_oov_buckets=options.num_oov_buckets)
  # The same vocabulary with training counts, for the trainer's sampling-bias correction.
  # Not applied to anything: only the file is needed.
  tft.vocabulary(movie_id, vocab_filename=features.MOVIE_ID_FREQUENCY_VOCAB,
                 store_frequency=True)

  outputs[features.TITLE_TOKENS] = _vocabulary(
      title_tokens(features.to_vector(inputs[features.MOVIE_TITLE])), features.TITLE_TOKEN_VOCAB,
      options, frequency_threshold=options.title_token_min_count)
  outputs[features.GENRE_INDICES] = _vocabulary(
      inputs[features.MOVIE_GENRES], features.GENRE_VOCAB, options)

  # float64: Unix seconds need more than float32's 24-bit mantissa for exact boundaries.
  timestamp = tf.cast(features.to_vector(inputs[features.TIMESTAMP]), tf.float64)
  outputs[features.TIMESTAMP_BUCKET] = tft.bucketize(
      timestamp, num_buckets=options.timestamp_buckets)
  outputs[features.TIMESTAMP_NORMALIZED] = clipped_z_score(timestamp)
  outputs[features.TIMESTAMP_SECONDS] = features.to_vector(inputs[features.TIMESTAMP])
  if features.USER_RATING in inputs:
    # The ranking stage's label, passed through; serving requests and the catalog have none.
    outputs[features.RATING_LABEL] = tf.cast(features.to_vector(inputs[features.USER_RATING]),
                                             tf.float32)
  return outputs
