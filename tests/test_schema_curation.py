"""CurateSchema: titles lose their inferred value set, genres their inferred shape and
take the catalog's value set."""
import os

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from components import schema_curation
from components.movielens_example_gen import encoding
from contracts import artifacts
from contracts import features
from movielens import formats
from pipeline import pipeline

_CATALOG = {
    "1": formats.Movie("1", "Toy Story (1995)", ("Animation", "Comedy")),
    "2": formats.Movie("2", "GoldenEye (1995)", ("Action", "Comedy")),
    "3": formats.Movie("3", "Heat (1995)", ("Action",)),
    "4": formats.Movie("4", "High Noon (1952)", ("Western",)),
}


def _statistics(tmp_path, name, user_ids, movie_ids):
  path = str(tmp_path / f"{name}.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    for example in encoding.ratings_to_examples(
        user_ids, movie_ids, [4.0] * len(user_ids), [900_000_000] * len(user_ids),
        _CATALOG):
      writer.write(example)
  return tfdv.generate_statistics_from_tfrecord(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """A tiny train split (every movie with two genres), and an eval split with a new
  user and a new movie with one genre."""
  tmp_path = tmp_path_factory.mktemp("tiny")
  train = _statistics(tmp_path, "train", ["1", "1", "2", "2"], ["1", "2", "1", "2"])
  evaluation = _statistics(tmp_path, "eval", ["3", "1"], ["3", "2"])
  return tfdv.infer_schema(train, infer_feature_shape=True), evaluation


def test_the_inferred_schema_pins_titles_and_the_genre_count(tiny):
  # The problem: SchemaGen's inference lists the few train values of free-text features
  # and fixes the shape of a list whose length happens to be constant in train.
  inferred, evaluation = tiny
  anomalies = tfdv.validate_statistics(evaluation, inferred)
  assert set(anomalies.anomaly_info) == {features.MOVIE_TITLE, features.MOVIE_GENRES}


def test_a_tiny_data_set_passes_with_the_curated_schema(tiny):
  inferred, evaluation = tiny
  curated = schema_curation.curate(inferred)
  assert not tfdv.validate_statistics(evaluation, curated).anomaly_info
  by_name = {feature.name: feature for feature in curated.feature}
  for name in schema_curation.FREE_TEXT_FEATURES:
    assert by_name[name].WhichOneof("domain_info") in (None, "int_domain"), name
  assert not by_name[features.MOVIE_GENRES].HasField("shape")
  # Genres keep their value set: an unknown genre is still caught.
  genres = tfdv.get_domain(curated, features.MOVIE_GENRES)
  assert set(genres.value) == {"Action", "Animation", "Comedy"}
  assert [domain.name for domain in curated.string_domain] == [
      by_name[features.MOVIE_GENRES].domain]
  # Everything else is SchemaGen's: the feature spec does not change.
  assert [f.name for f in curated.feature] == [f.name for f in inferred.feature]
  assert schema_curation.curate(curated) == curated


def test_genres_take_the_catalogs_value_set(tiny, tmp_path):
  # A genre that only eval's movies have (new movies after a temporal cutoff) is a catalog
  # genre, not an anomaly; a genre the catalog lacks still is one.
  inferred, _ = tiny
  western = _statistics(tmp_path, "western", ["1"], ["4"])
  assert features.MOVIE_GENRES in tfdv.validate_statistics(
      western, schema_curation.curate(inferred)).anomaly_info
  curated = schema_curation.curate(inferred, ["Western", "Action"])
  assert not tfdv.validate_statistics(western, curated).anomaly_info
  assert list(tfdv.get_domain(curated, features.MOVIE_GENRES).value) == [
      "Action", "Animation", "Comedy", "Western"]
  assert schema_curation.curate(curated, ["Western"]) == curated


def _write_catalog(uri: str) -> standard_artifacts.Examples:
  movies = standard_artifacts.Examples()
  movies.uri = uri
  movies.split_names = artifact_utils.encode_split_names([artifacts.CATALOG_SPLIT])
  split_dir = artifact_utils.get_split_uri([movies], artifacts.CATALOG_SPLIT)
  os.makedirs(split_dir)
  with tf.io.TFRecordWriter(os.path.join(split_dir, "catalog.gz"), options="GZIP") as writer:
    for example in encoding.movies_to_examples(list(_CATALOG.values())):
      writer.write(example)
  return movies


def test_the_component_writes_the_one_schema_file(tiny, tmp_path):
  inferred, _ = tiny
  schema = standard_artifacts.Schema()
  schema.uri = str(tmp_path / "inferred")
  io_utils.write_pbtxt_file(os.path.join(schema.uri, "schema.pbtxt"), inferred)
  movies = _write_catalog(str(tmp_path / "movies"))
  assert schema_curation.catalog_genres(movies) == {"Action", "Animation", "Comedy", "Western"}
  curated = standard_artifacts.Schema()
  curated.uri = str(tmp_path / "curated")
  os.makedirs(curated.uri)
  executor = schema_curation.CurateSchema.EXECUTOR_SPEC.executor_class()
  executor.Do({"schema": [schema], "movies": [movies]}, {"curated_schema": [curated]}, {})
  assert os.listdir(curated.uri) == [schema_curation.SCHEMA_FILE]
  written = io_utils.SchemaReader().read(os.path.join(curated.uri, "schema.pbtxt"))
  assert written == schema_curation.curate(inferred, {"Western"})


def test_an_empty_catalog_is_named(tmp_path):
  movies = standard_artifacts.Examples()
  movies.uri = str(tmp_path / "movies")
  movies.split_names = artifact_utils.encode_split_names([artifacts.CATALOG_SPLIT])
  with pytest.raises(ValueError, match="The movie catalog has no files in .*Split-catalog"):
    schema_curation.catalog_genres(movies)


def test_validation_transform_and_trainer_read_the_curated_schema(tmp_path):
  components = pipeline.create_components(str(tmp_path / "data"), str(tmp_path / "serving"))
  [curate] = [c for c in components if c.id == "CurateSchema"]
  [schema_gen] = [c for c in components if isinstance(c, tfx.components.SchemaGen)]
  assert curate.inputs["schema"].producer_component_id == schema_gen.id
  assert curate.inputs["movies"].producer_component_id == components[0].id  # ExampleGen
  readers = [c for c in components if "schema" in c.inputs and c is not curate]
  assert {type(c).__name__ for c in readers} == {
      "ExampleValidator", "Transform", "RetrievalTrainer"}
  for component in readers:
    assert component.inputs["schema"].producer_component_id == curate.id, component.id
