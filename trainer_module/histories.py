"""The users' stored histories a serving export holds, and how it reads a request's context:
the one the request gives, else its user's stored history."""
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from contracts import features
from trainer_module import data
from trainer_module import model as model_lib


class StoredHistories(tf.Module):
  """Each training user's most recent train movies, and the context a request is read
  with: the one it gives, else its user's stored history.

  One module for the query encoder and the ranking stage's rating scorer, so that a
  SavedModel holds the histories once and both read a request's context alike. A given
  context is looked up in the movie vocabulary here (the Transform graph never sees a
  context: training joins it from the user histories); ids outside the vocabulary, like
  the "" padding, are dropped, as a trained context never holds them.
  """

  def __init__(self, tft_output: tft.TFTransformOutput, user_histories: np.ndarray):
    """Args:
      tft_output: The Transform output (its movie vocabulary).
      user_histories: int64 [users (OOV buckets included), max_context], row u the movie
        indices of user index u's most recent train movies, padded with -1
        (`data.UserHistories.whole`).
    """
    super().__init__()
    self.max_context = int(user_histories.shape[1])
    # A variable, not a constant: it is saved with the weights, not in the graph.
    self.user_histories = tf.Variable(tf.constant(user_histories, tf.int64),
                                      trainable=False, name="user_histories")
    vocabulary = tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB)
    self.movie_index = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(vocabulary, tf.string), tf.range(len(vocabulary), dtype=tf.int64)),
        default_value=model_lib.PADDING)

  def given(self, context_ids: Optional[tf.Tensor]
            ) -> Optional[Tuple[tf.Tensor, tf.Tensor]]:
    """(indices [batch, max_context] padded with PADDING, has_context [batch, 1]) of the
    context a request gave ([batch, n] strings padded with ""), or None when it gave
    none: known movies kept in order, the first max_context of them."""
    if context_ids is None:
      return None
    indices = self.movie_index.lookup(context_ids)
    unknown = indices == model_lib.PADDING
    order = tf.argsort(tf.cast(unknown, tf.int32), axis=1, stable=True)
    indices = tf.gather(indices, order, batch_dims=1)[:, :self.max_context]
    indices = tf.pad(indices, [[0, 0], [0, self.max_context - tf.shape(indices)[1]]],
                     constant_values=model_lib.PADDING)
    return indices, tf.reduce_any(indices != model_lib.PADDING, axis=1, keepdims=True)

  def resolve(self, users: tf.Tensor,
              given: Optional[Tuple[tf.Tensor, tf.Tensor]]) -> tf.Tensor:
    """The context indices [batch, max_context] a request is read with: `given`
    (`StoredHistories.given`) where a row gave one, else the stored history of `users`
    (indices [batch])."""
    stored = tf.gather(self.user_histories, users)
    return stored if given is None else tf.where(given[1], given[0], stored)


def seen_movies(ratings: data.Interactions,
                tft_output: tft.TFTransformOutput) -> Dict[str, List[str]]:
  """User id -> ids of the movies they rated in training, from the vocabulary indices
  (the serving model's `SEEN_MOVIES_FILE`, for `recommend --exclude_seen`).

  Vectorized: ml-25m has 20M training pairs, too many for Python tuples.
  """
  users = tft_output.vocabulary_by_name(features.USER_ID_VOCAB)
  movies = tft_output.vocabulary_by_name(features.MOVIE_ID_VOCAB)
  user_index = ratings.users.astype(np.int64)
  movie_index = ratings.movies.astype(np.int64)
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
