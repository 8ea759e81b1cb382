"""Candidate towers: Keras models from a movie's transformed features to its embedding.

Each reads a mapping of transformed features (names from `contracts.features`) and
returns an unnormalized float32 [batch, output_dim] embedding. towers.py lists the
families and builds them by name.
"""
from typing import Mapping, Sequence

import tensorflow as tf

from contracts import features
from trainer_module import layers


class FeaturesCandidateTower(tf.keras.Model):
  """Movie id embedding + mean title-token embedding + mean genre embedding -> embedding."""

  def __init__(self, num_movies: int, num_title_tokens: int, num_genres: int,
               output_dim: int, hidden_layers: Sequence[int] = (), l2: float = 0.0,
               name: str = "candidate_tower"):
    """Args:
      num_movies, num_title_tokens, num_genres: Vocabulary sizes, OOV buckets included.
      output_dim: Embedding size.
      hidden_layers: ReLU layer sizes before the final linear projection.
      l2: L2 penalty on the embedding tables.
      name: Keras name.
    """
    super().__init__(name=name)
    layers.check_positive(num_movies=num_movies, num_title_tokens=num_title_tokens,
                    num_genres=num_genres, output_dim=output_dim)
    self.movie_embedding = layers.embedding_table(num_movies, output_dim, l2, "movie_id")
    self.title_embedding = layers.MaskedMeanEmbedding(num_title_tokens, output_dim, l2,
                                                      name="title")
    self.genre_embedding = layers.MaskedMeanEmbedding(num_genres, output_dim, l2,
                                                      name="genres")
    self.projection = layers.dense_stack(layers.check_hidden(hidden_layers), output_dim,
                                         "candidate_projection")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    return self.projection(tf.concat([
        self.movie_embedding(features.to_vector(inputs[features.MOVIE_ID_INDEX])),
        self.title_embedding(inputs[features.TITLE_TOKENS]),
        self.genre_embedding(inputs[features.GENRE_INDICES]),
    ], axis=1))


class DeepHashCandidateTower(tf.keras.Model):
  """Deep hash embedding of the movie id + mean genre embedding -> embedding.

  No variable grows with the number of movies: the id is encoded by `num_hashes` hash
  functions, and an MLP maps the code to a vector. Genres (a vocabulary of about twenty)
  let movies with few ratings borrow from similar ones.
  """

  def __init__(self, num_genres: int, output_dim: int, num_hashes: int = 128,
               hash_hidden_layers: Sequence[int] = (256,), hidden_layers: Sequence[int] = (),
               l2: float = 0.0, seed: int = 0, name: str = "candidate_tower"):
    """Args:
      num_genres: Genre vocabulary size, OOV buckets included.
      output_dim: Embedding size.
      num_hashes: Hash functions encoding the id.
      hash_hidden_layers: Hidden layer sizes of the deep hash MLP.
      hidden_layers: ReLU layer sizes before the final linear projection.
      l2: L2 penalty on the genre table.
      seed: Seed of the hash functions.
      name: Keras name.
    """
    super().__init__(name=name)
    layers.check_positive(num_genres=num_genres, output_dim=output_dim, num_hashes=num_hashes)
    self.movie_embedding = layers.DeepHashEmbedding(
        output_dim, num_hashes=num_hashes, hidden_layers=layers.check_hidden(hash_hidden_layers),
        seed=seed, name="movie_id_deep_hash")
    self.genre_embedding = layers.MaskedMeanEmbedding(num_genres, output_dim, l2,
                                                      name="genres")
    self.projection = layers.dense_stack(layers.check_hidden(hidden_layers), output_dim,
                                         "candidate_projection")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    return self.projection(tf.concat([
        self.movie_embedding(features.to_vector(inputs[features.MOVIE_ID_INDEX])),
        self.genre_embedding(inputs[features.GENRE_INDICES]),
    ], axis=1))
