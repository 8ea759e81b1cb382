"""The users' stored histories a serving export holds, and how it reads a request's context:
the one the request gives, else its user's stored history."""
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from contracts import features
from trainer_module import model as model_lib
from trainer_module import signatures


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
    dense = signatures.without_padding(context).to_tensor(default_value="",
                                                          shape=[None, self.max_context])
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


def seen_movies(train_data: Mapping[str, tf.Tensor],
                tft_output: tft.TFTransformOutput) -> Dict[str, List[str]]:
  """User id -> ids of the movies they rated in training, from the vocabulary indices
  (the serving model's `SEEN_MOVIES_FILE`, for `recommend --exclude_seen`).

  Vectorized: ml-25m has 20M training pairs, too many for Python tuples.
  """
  users = tft_output.vocabulary_by_name(features.USER_ID_VOCAB)
  movies = tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB)
  user_index = train_data[features.USER_ID_INDEX].numpy().astype(np.int64)
  movie_index = train_data[features.MOVIE_ID_INDEX].numpy().astype(np.int64)
  # Indices past a vocabulary are OOV buckets: no id to report.
  known = (user_index < len(users)) & (movie_index < len(movies))
  pairs = np.unique(user_index[known] * len(movies) + movie_index[known])
  pair_users, pair_movies = np.divmod(pairs, len(movies))
  starts = np.flatnonzero(np.diff(pair_users, prepend=-1))
  ends = np.append(starts[1:], len(pairs))
  # One str per movie, shared by every list that holds it: a new str per pair would cost
  # about 100 MiB per million pairs.
  movie_ids = [movie.decode() for movie in movies]
  return {users[pair_users[start]].decode(): [movie_ids[m] for m in pair_movies[start:end]]
          for start, end in zip(starts, ends)}
