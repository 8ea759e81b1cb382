"""preprocessing_fn through tft_beam.AnalyzeAndTransformDataset on the DirectRunner."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import schema_utils

from contracts import features
from trainer_module import preprocessing

# (user, movie, title, genres, timestamp, rating); movie 1 is rated 3 times, 2 twice.
_ROWS = [
    ("7", "1", "Toy Story (1995)", ["Animation", "Comedy"], 1000, 5.0),
    ("7", "2", "Heat (1995)", ["Action", "Crime"], 2000, 4.0),
    ("8", "1", "Toy Story (1995)", ["Animation", "Comedy"], 3000, 3.0),
    ("9", "1", "Toy Story (1995)", ["Animation", "Comedy"], 4000, 4.0),
    ("9", "2", "Heat (1995)", ["Action", "Crime"], 5000, 2.0),
    ("9", "3", "Star Wars: Episode IV (1977)", ["Sci-Fi"], 6000, 5.0),
    ("8", "4", "Toy Soldiers (1991)", [features.NO_GENRES], 7000, 1.0),
    ("7", "3", "Star Wars: Episode IV (1977)", ["Sci-Fi"], 8000, 5.0),
]
_CONFIG = {"timestamp_buckets": 4, "title_token_min_count": 2, "num_oov_buckets": 1}


def _instances():
  return [{
      features.USER_ID: [u.encode()], features.MOVIE_ID: [m.encode()],
      features.MOVIE_TITLE: [t.encode()], features.MOVIE_GENRES: [g.encode() for g in gs],
      features.TIMESTAMP: [ts], features.USER_RATING: [r],
  } for u, m, t, gs, ts, r in _ROWS]


def _analyze_and_transform(instances, feature_spec, out_dir):
  """(TFTransformOutput, transformed instances) of preprocessing_fn on `instances`."""
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(feature_spec))
  with tft_beam.Context(temp_dir=os.path.join(out_dir, "tmp"), force_tf_compat_v1=False):
    (transformed, _), transform_fn = (
        (instances, metadata)
        | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing.preprocessing_fn(inputs, _CONFIG),
            output_record_batches=False))
    _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
  return tft.TFTransformOutput(out_dir), transformed


@pytest.fixture(scope="module")
def transform_output(tmp_path_factory):
  return _analyze_and_transform(_instances(), features.raw_feature_spec(),
                                str(tmp_path_factory.mktemp("transform")))


def test_id_vocabularies_sorted_by_frequency(transform_output):
  output, _ = transform_output
  vocab = output.vocabulary_by_name(features.MOVIE_ID_VOCAB)
  # Counts 1:3, 2:2, 3:2, 4:1; TFT breaks ties by token, descending.
  assert vocab == [b"1", b"3", b"2", b"4"]
  assert sorted(output.vocabulary_by_name(features.USER_ID_VOCAB)) == [b"7", b"8", b"9"]


def test_frequency_vocabulary_matches_id_vocabulary_order(transform_output):
  output, _ = transform_output
  path = output.vocabulary_file_by_name(features.MOVIE_ID_FREQUENCY_VOCAB)
  with tf.io.gfile.GFile(path, "rb") as f:
    lines = [line.rstrip(b"\n").split(b" ", 1) for line in f]
  assert [token for _, token in lines] == output.vocabulary_by_name(features.MOVIE_ID_VOCAB)
  counts = {token: int(count) for count, token in lines}
  assert counts == {b"1": 3, b"2": 2, b"3": 2, b"4": 1}


def test_title_and_genre_vocabularies(transform_output):
  output, _ = transform_output
  # "toy" appears in 4 ratings (3 Toy Story + 1 Toy Soldiers); "soldiers" once, below
  # title_token_min_count=2, so it is left out of the vocabulary.
  titles = set(output.vocabulary_by_name(features.TITLE_TOKEN_VOCAB))
  assert {b"toy", b"story", b"1995", b"heat", b"star", b"wars", b"episode", b"iv"} <= titles
  assert b"soldiers" not in titles and b"(1995)" not in titles
  assert set(output.vocabulary_by_name(features.GENRE_VOCAB)) == {
      b"Animation", b"Comedy", b"Action", b"Crime", b"Sci-Fi", features.NO_GENRES.encode()}


def test_transformed_values(transform_output):
  output, transformed = transform_output
  movie_vocab = output.vocabulary_by_name(features.MOVIE_ID_VOCAB)
  first = transformed[0]
  assert first[features.MOVIE_ID_INDEX] == movie_vocab.index(b"1")
  assert first[features.TIMESTAMP_SECONDS] == 1000
  buckets = [row[features.TIMESTAMP_BUCKET] for row in transformed]
  assert buckets == sorted(buckets) and set(buckets) <= {0, 1, 2, 3}
  assert buckets[0] == 0 and buckets[-1] == 3
  normalized = np.array([row[features.TIMESTAMP_NORMALIZED] for row in transformed])
  assert normalized.mean() == pytest.approx(0.0, abs=1e-5)
  assert normalized.std() == pytest.approx(1.0, abs=1e-4)


def test_bucket_boundaries_monotonic(transform_output):
  output, _ = transform_output
  graph_dir = output.transform_savedmodel_dir
  # The boundaries are constants of the saved graph; check them through behaviour:
  # bucket index never decreases as the timestamp grows.
  layer = output.transform_features_layer()
  timestamps = tf.constant([[t] for t in range(0, 10000, 250)], tf.int64)
  buckets = layer({features.TIMESTAMP: timestamps})[features.TIMESTAMP_BUCKET].numpy()
  assert tf.io.gfile.exists(graph_dir)
  assert np.all(np.diff(buckets) >= 0) and buckets[0] == 0 and buckets[-1] == 3


def test_query_features_only(transform_output):
  output, _ = transform_output
  layer = output.transform_features_layer()
  result = layer({features.USER_ID: tf.constant([[b"9"], [b"unknown-user"]]),
                  features.TIMESTAMP: tf.constant([[1000], [9000]], tf.int64)})
  assert set(result) == {features.USER_ID_INDEX, features.TIMESTAMP_BUCKET,
                         features.TIMESTAMP_NORMALIZED, features.TIMESTAMP_SECONDS}
  user_vocab = output.vocabulary_by_name(features.USER_ID_VOCAB)
  # An unknown user maps to the OOV bucket right after the vocabulary.
  assert result[features.USER_ID_INDEX].numpy().tolist() == [user_vocab.index(b"9"),
                                                              len(user_vocab)]


def test_candidate_features_only(transform_output):
  output, _ = transform_output
  layer = output.transform_features_layer()
  genres = tf.sparse.from_dense(tf.constant([[b"Sci-Fi", b""], [b"Comedy", b"Western"]]))
  result = layer({features.MOVIE_ID: tf.constant([[b"3"], [b"999"]]),
                  features.MOVIE_TITLE: tf.constant([[b"Star Wars (1977)"], [b"New (2001)"]]),
                  features.MOVIE_GENRES: genres})
  assert set(result) == {features.MOVIE_ID_INDEX, features.TITLE_TOKENS,
                         features.GENRE_INDICES}
  movie_vocab = output.vocabulary_by_name(features.MOVIE_ID_VOCAB)
  assert result[features.MOVIE_ID_INDEX].numpy().tolist() == [movie_vocab.index(b"3"),
                                                               len(movie_vocab)]
  genre_vocab = output.vocabulary_by_name(features.GENRE_VOCAB)
  genre_ids = tf.sparse.to_dense(result[features.GENRE_INDICES], default_value=-1).numpy()
  # "Western" was never seen in training: OOV index len(vocab).
  assert genre_ids[1].tolist() == [genre_vocab.index(b"Comedy"), len(genre_vocab)]
  title_vocab = output.vocabulary_by_name(features.TITLE_TOKEN_VOCAB)
  title_ids = tf.sparse.to_dense(result[features.TITLE_TOKENS], default_value=-1).numpy()
  assert title_ids[0].tolist() == [title_vocab.index(t) for t in (b"star", b"wars", b"1977")]


def test_title_tokens():
  tokens = preprocessing.title_tokens(tf.constant(["Star Wars: Episode IV (1977)",
                                                   "Misérables, Les (1995)",
                                                   "AMÉLIE (2001)", "Ноев ковчег (2007)"]))
  dense = tf.sparse.to_dense(tokens, default_value=b"").numpy().tolist()
  assert dense[0] == [b"star", b"wars", b"episode", b"iv", b"1977"]
  # Non-ASCII letters stay inside their words and are lower-cased.
  assert dense[1][:3] == ["misérables".encode(), b"les", b"1995"]
  assert dense[2][:2] == ["amélie".encode(), b"2001"]
  assert dense[3][:3] == ["ноев".encode(), "ковчег".encode(), b"2007"]


def test_a_raw_context_is_no_transform_input(transform_output):
  """The Trainer joins the context from the user histories; Transform never maps it."""
  output, _ = transform_output
  assert features.CONTEXT_MOVIE_INDICES not in output.transformed_feature_spec()
