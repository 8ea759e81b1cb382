"""The feature spec: names, types and roles of every feature, raw and transformed.

This is the one place feature names live. ExampleGen writes the raw features named here,
SchemaGen's inferred schema must match `raw_feature_spec()`, the Transform
`preprocessing_fn` reads raw and writes transformed names, and the trainer, evaluator and
serving signatures read them back from here.
"""
from typing import Dict, Iterable, Union

import tensorflow as tf

# Raw features. IDs are strings (MovieLens ids are integers written in decimal) so that
# vocabularies, OOV handling and serving inputs work the same for every data source.
USER_ID = "user_id"
MOVIE_ID = "movie_id"
MOVIE_TITLE = "movie_title"
MOVIE_GENRES = "movie_genres"  # Variable-length list of genre names.
TIMESTAMP = "timestamp"  # Seconds since the Unix epoch, int64.
USER_RATING = "user_rating"  # Float; 1-5 (ml-100k, ml-1m) or 0.5-5 (ml-latest family).

# One example of the ratings stream holds all of these; the catalog holds the movie ones,
# which are also the candidate tower's raw inputs. The Transform graph is called with only
# the query features (USER_ID, TIMESTAMP: serving) or only these (the candidate index).
RATING_FEATURES = (USER_ID, MOVIE_ID, MOVIE_TITLE, MOVIE_GENRES, TIMESTAMP, USER_RATING)
MOVIE_FEATURES = (MOVIE_ID, MOVIE_TITLE, MOVIE_GENRES)

# Genre value for a movie that has none: ml-latest writes it literally; ml-100k rows with
# every genre flag at 0 get it too, so the genre list is never empty.
NO_GENRES = "(no genres listed)"

_RAW_SPEC: Dict[str, Union[tf.io.FixedLenFeature, tf.io.VarLenFeature]] = {
    # Shape [1], not []: this is what SchemaGen infers with infer_feature_shape=True for a
    # feature with exactly one value, so the Transform graph expects [batch, 1] inputs.
    USER_ID: tf.io.FixedLenFeature([1], tf.string),
    MOVIE_ID: tf.io.FixedLenFeature([1], tf.string),
    MOVIE_TITLE: tf.io.FixedLenFeature([1], tf.string),
    MOVIE_GENRES: tf.io.VarLenFeature(tf.string),
    TIMESTAMP: tf.io.FixedLenFeature([1], tf.int64),
    USER_RATING: tf.io.FixedLenFeature([1], tf.float32),
}


def raw_feature_spec(
    names: Iterable[str] = RATING_FEATURES,
) -> Dict[str, Union[tf.io.FixedLenFeature, tf.io.VarLenFeature]]:
  """Returns the tf.io parsing spec of the named raw features."""
  return {name: _RAW_SPEC[name] for name in names}


def transformed_name(name: str) -> str:
  """Name of the Transform output derived from raw feature `name`."""
  return f"{name}_xf"


# Transformed features (outputs of preprocessing_fn). Each depends on a single raw
# feature, so calling the Transform graph with a subset of raw features still works.
USER_ID_INDEX = transformed_name(USER_ID)  # int64 [batch], vocabulary index (OOV last).
MOVIE_ID_INDEX = transformed_name(MOVIE_ID)  # int64 [batch].
TITLE_TOKENS = transformed_name("movie_title_tokens")  # int64 sparse [batch, None].
GENRE_INDICES = transformed_name(MOVIE_GENRES)  # int64 sparse [batch, None].
TIMESTAMP_BUCKET = transformed_name("timestamp_bucket")  # int64 [batch], quantile bucket.
TIMESTAMP_NORMALIZED = transformed_name("timestamp_normalized")  # float32 [batch], z-score.
# int64 [batch], raw seconds passed through: the trainer takes the latest as the model's
# reference time (the query time of a serving request that gives none).
TIMESTAMP_SECONDS = transformed_name(TIMESTAMP)

# Vocabulary files written by Transform (tft_output.vocabulary_file_by_name(name)).
USER_ID_VOCAB = "user_id_vocab"
MOVIE_ID_VOCAB = "movie_id_vocab"
# Same tokens and order as MOVIE_ID_VOCAB, with each line prefixed by its training count;
# the trainer derives candidate sampling probabilities from it.
MOVIE_ID_FREQUENCY_VOCAB = "movie_id_frequency_vocab"
TITLE_TOKEN_VOCAB = "movie_title_token_vocab"
GENRE_VOCAB = "movie_genres_vocab"
