"""The feature spec: names, types, roles and shapes of every feature, raw and transformed.

This is the one place features are declared. ExampleGen writes the raw features declared
here, SchemaGen's inferred schema must match `raw_feature_spec()`, the Transform
`preprocessing_fn` reads raw names and writes transformed ones, and the trainer, the
serving signatures, the evaluator's queries and the `recommend` CLI read them back from
here. Adding a query feature means adding a `RawFeature` with `Role.QUERY` below, its
transform in preprocessing.py and its use in a query tower; everything that takes raw
query features (serving signatures, query-model export, evaluator) derives its inputs
from `QUERY_FEATURES`.
"""
import dataclasses
import enum
from typing import Dict, Iterable, Mapping, Tuple, Union

import tensorflow as tf


class Role(enum.Enum):
  """What a raw feature describes, which decides where it is an input."""
  QUERY = "query"  # The user and the moment of asking: query tower, serving inputs.
  CANDIDATE = "candidate"  # The movie: candidate tower, catalog examples.
  LABEL = "label"  # The outcome: not a model input.


@dataclasses.dataclass(frozen=True)
class RawFeature:
  """One raw feature of the rating examples.

  Attributes:
    name: Feature key in tf.Examples and serving signatures.
    dtype: tf.string, tf.int64 or tf.float32.
    role: Query, candidate or label.
    multivalent: A variable-length list per example (else exactly one value).
    optional_at_serving: Serving requests may leave it out; the serving model then fills
      it (e.g. the query time defaults to the model's reference time).
    from_user_history: Built from the user's other ratings (UserContext's user
      histories, joined by user in the Trainer; not in the rating examples), and
      remembered by the trained model for every training user: a request (or the Evaluator's query) that leaves it out gets the
      user's training history.
    description: What it holds, for docs and error messages.
  """
  name: str
  dtype: tf.dtypes.DType
  role: Role
  multivalent: bool = False
  optional_at_serving: bool = False
  from_user_history: bool = False
  description: str = ""

  @property
  def parsing_spec(self) -> Union[tf.io.FixedLenFeature, tf.io.VarLenFeature]:
    """tf.io parsing spec of the feature in a serialized tf.Example."""
    if self.multivalent:
      return tf.io.VarLenFeature(self.dtype)
    # Shape [1], not []: this is what SchemaGen infers with infer_feature_shape=True for a
    # feature with exactly one value, so the Transform graph expects [batch, 1] inputs.
    return tf.io.FixedLenFeature([1], self.dtype)

  @property
  def serving_spec(self) -> tf.TensorSpec:
    """Input spec of the feature in serving signatures: [batch] or, for lists, [batch, n]."""
    return tf.TensorSpec([None, None] if self.multivalent else [None], self.dtype,
                         name=self.name)


# Raw features. IDs are strings (MovieLens ids are integers written in decimal) so that
# vocabularies, OOV handling and serving inputs work the same for every data source.
USER_ID = "user_id"
MOVIE_ID = "movie_id"
MOVIE_TITLE = "movie_title"
MOVIE_GENRES = "movie_genres"
TIMESTAMP = "timestamp"
USER_RATING = "user_rating"
CONTEXT_MOVIE_IDS = "context_movie_ids"

# Genre value for a movie that has none: ml-latest writes it literally; ml-100k rows with
# every genre flag at 0 get it too, so the genre list is never empty.
NO_GENRES = "(no genres listed)"

RAW_FEATURES: Mapping[str, RawFeature] = {f.name: f for f in (
    RawFeature(USER_ID, tf.string, Role.QUERY, description="User id, decimal string."),
    RawFeature(TIMESTAMP, tf.int64, Role.QUERY, optional_at_serving=True,
               description="Time of the rating (of the request, at serving), Unix seconds."),
    RawFeature(MOVIE_ID, tf.string, Role.CANDIDATE, description="Movie id, decimal string."),
    RawFeature(MOVIE_TITLE, tf.string, Role.CANDIDATE,
               description="Title with the release year, e.g. 'Heat (1995)'."),
    RawFeature(MOVIE_GENRES, tf.string, Role.CANDIDATE, multivalent=True,
               description=f"Genre names; [{NO_GENRES!r}] when there are none."),
    RawFeature(USER_RATING, tf.float32, Role.LABEL,
               description="Stars: 1-5 (ml-100k, ml-1m) or 0.5-5 (ml-latest family)."),
    RawFeature(CONTEXT_MOVIE_IDS, tf.string, Role.QUERY, multivalent=True,
               optional_at_serving=True, from_user_history=True,
               description="The user's previous movies from the train split, most recent "
               "first (ties: higher movie id first), never the example's own movie. Not "
               "in the rating examples: the Trainer joins it from UserContext's user "
               "histories by user. At serving: [batch, n], rows padded with ''; an all-'' "
               "row means 'use the stored training history'."),
)}


def names_with_role(role: Role) -> Tuple[str, ...]:
  """Names of the raw features with `role`, in declaration order."""
  return tuple(name for name, feature in RAW_FEATURES.items() if feature.role == role)


# The groups. A rating example holds all of them; the catalog holds the candidate ones.
# The Transform graph can be called with only the query features (serving) or only the
# candidate features (the candidate index): each output depends on one raw feature.
QUERY_FEATURES = names_with_role(Role.QUERY)
CANDIDATE_FEATURES = names_with_role(Role.CANDIDATE)
LABEL_FEATURES = names_with_role(Role.LABEL)
# Built from the user's other ratings (UserContext's user histories), never in the
# rating examples.
CONTEXT_FEATURES = tuple(name for name, feature in RAW_FEATURES.items()
                         if feature.from_user_history)
# What MovieLensExampleGen writes for each rating (and what Transform reads).
RATING_FEATURES = tuple(name for name in RAW_FEATURES if name not in CONTEXT_FEATURES)
# The query features a serving request must give; the others are filled by the model.
REQUIRED_QUERY_FEATURES = tuple(name for name in QUERY_FEATURES
                                if not RAW_FEATURES[name].optional_at_serving)
# The query features of one request, without what the model remembers per user: the
# inputs of the query model's default signature, which the Evaluator calls.
REQUEST_QUERY_FEATURES = tuple(name for name in QUERY_FEATURES
                               if name not in CONTEXT_FEATURES)
# The raw features the ranking stage reads for one (request, movie) pair: the request's
# query features and the movie's; the rating is its label.
RANKING_FEATURES = REQUEST_QUERY_FEATURES + CANDIDATE_FEATURES


def raw_feature_spec(
    names: Iterable[str] = RATING_FEATURES,
) -> Dict[str, Union[tf.io.FixedLenFeature, tf.io.VarLenFeature]]:
  """Returns the tf.io parsing spec of the named raw features."""
  return {name: RAW_FEATURES[name].parsing_spec for name in names}


def serving_specs(names: Iterable[str]) -> Tuple[tf.TensorSpec, ...]:
  """Serving input specs of the named raw features, in the given order."""
  return tuple(RAW_FEATURES[name].serving_spec for name in names)


# The one shape helper pair: raw single-valued features are [batch, 1] in the Transform
# graph (SchemaGen's inferred shape) and [batch] in serving requests and model inputs.
def to_column(values: tf.Tensor) -> tf.Tensor:
  """[batch] (or [batch, 1]) -> [batch, 1]."""
  return tf.reshape(values, [-1, 1])


def to_vector(values: tf.Tensor) -> tf.Tensor:
  """[batch, 1] (or [batch]) -> [batch]."""
  return tf.reshape(values, [-1])


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
# float32 [batch]: z-score of the timestamp clipped to the training range, so a query far
# outside it (today's date on 1998 data) looks like the nearest trained time.
TIMESTAMP_NORMALIZED = transformed_name("timestamp_normalized")
# int64 [batch], raw seconds passed through: the trainer takes the latest as the model's
# reference time (the query time of a serving request that gives none).
TIMESTAMP_SECONDS = transformed_name(TIMESTAMP)
# float32 [batch]: the rating, passed through as the ranking stage's label.
RATING_LABEL = transformed_name(USER_RATING)
# int [batch, max_context]: movie vocabulary indices of the context, most recent first,
# padded with -1. Not a Transform output: the Trainer joins it from the user histories
# (trainer_module/inputs.py), the serving model looks the raw context up in the movie
# vocabulary (trainer_module/histories.py).
CONTEXT_MOVIE_INDICES = transformed_name(CONTEXT_MOVIE_IDS)

# UserContext's user histories: one example per user (USER_ID and these lists of movie
# ids, most recent first, ties: larger movie id first). HISTORY_MOVIE_IDS: the whole
# train split's, up to max_context (what the model stores for serving);
# FITTED_HISTORY_MOVIE_IDS: the train split without the validation ratings, up to
# max_context + 1 (a training rating's context is this list without its own movie).
HISTORY_MOVIE_IDS = "history_movie_ids"
FITTED_HISTORY_MOVIE_IDS = "fitted_history_movie_ids"
HISTORY_FEATURES = (HISTORY_MOVIE_IDS, FITTED_HISTORY_MOVIE_IDS)

# Vocabulary files written by Transform (tft_output.vocabulary_file_by_name(name)).
USER_ID_VOCAB = "user_id_vocab"
MOVIE_ID_VOCAB = "movie_id_vocab"
# Same tokens and order as MOVIE_ID_VOCAB, with each line prefixed by its training count;
# the trainer derives candidate sampling probabilities from it.
MOVIE_ID_FREQUENCY_VOCAB = "movie_id_frequency_vocab"
TITLE_TOKEN_VOCAB = "movie_title_token_vocab"
GENRE_VOCAB = "movie_genres_vocab"
