"""MovieLensExampleGen's executor on the Beam DirectRunner, on real-format fixtures."""
import glob
import os

import pytest
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.movielens_example_gen import component
from components.movielens_example_gen import executor
from contracts import artifacts
from contracts import configs
from contracts import features
from movielens import errors
from movielens import synthetic
from tests import movielens_fixtures as fixtures


def run_example_gen(data_dir, out_dir, **options):
  """Runs the executor; returns the (ratings, movies) artifacts."""
  ratings = standard_artifacts.Examples()
  ratings.uri = os.path.join(str(out_dir), "examples")
  movies = standard_artifacts.Examples()
  movies.uri = os.path.join(str(out_dir), "movies")
  exec_properties = {executor.DATA_DIR_KEY: str(data_dir), **options}
  executor.Executor().Do({}, {artifacts.EXAMPLES_KEY: [ratings],
                              artifacts.MOVIES_KEY: [movies]}, exec_properties)
  return ratings, movies


def read_split(artifact, split):
  """Decoded examples of one split as tuples, sorted (file order depends on sharding)."""
  files = sorted(glob.glob(os.path.join(artifact_utils.get_split_uri([artifact], split), "*")))
  rows = []
  for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    row = {name: (list(f.bytes_list.value) or list(f.int64_list.value)
                  or list(f.float_list.value)) for name, f in feature.items()}
    rows.append(row)
  return rows


def _rating_tuple(row):
  return (row[features.USER_ID][0].decode(), row[features.MOVIE_ID][0].decode(),
          row[features.USER_RATING][0], row[features.TIMESTAMP][0])


@pytest.mark.parametrize("writer,expected_movies,expected_ratings", [
    (fixtures.write_ml100k, fixtures.ML100K_MOVIES, fixtures.ML100K_RATINGS),
    (fixtures.write_ml1m, fixtures.ML1M_MOVIES, fixtures.ML1M_RATINGS),
    (fixtures.write_ml_latest, fixtures.ML_LATEST_MOVIES, fixtures.ML_LATEST_RATINGS),
])
def test_every_format_every_rating_lands_in_one_split(tmp_path, writer, expected_movies,
                                                      expected_ratings):
  data_dir = writer(tmp_path / "data")
  ratings, movies = run_example_gen(data_dir, tmp_path / "out", eval_fraction=0.25)
  train, eval_ = read_split(ratings, "train"), read_split(ratings, "eval")
  assert sorted(map(_rating_tuple, train + eval_)) == sorted(expected_ratings)
  assert ratings.get_int_custom_property("num_train_examples") == len(train)
  assert ratings.get_int_custom_property("num_eval_examples") == len(eval_)
  # Each rating carries its movie's title and genres from the catalog.
  by_id = {m[0]: m for m in expected_movies}
  for row in train + eval_:
    movie_id, title, genres = by_id[row[features.MOVIE_ID][0].decode()]
    assert row[features.MOVIE_TITLE] == [title.encode()]
    assert row[features.MOVIE_GENRES] == [g.encode() for g in genres]
  catalog = read_split(movies, "catalog")
  assert sorted((r[features.MOVIE_ID][0].decode(), r[features.MOVIE_TITLE][0].decode(),
                 tuple(g.decode() for g in r[features.MOVIE_GENRES])) for r in catalog) == sorted(
                     expected_movies)
  assert movies.get_int_custom_property("num_movies") == len(expected_movies)


def test_zip_input_matches_directory(tmp_path):
  folder = fixtures.write_ml1m(tmp_path / "data")
  archive = fixtures.zip_dir(folder, tmp_path / "ml-1m.zip")
  from_dir, _ = run_example_gen(folder, tmp_path / "a")
  from_zip, _ = run_example_gen(archive, tmp_path / "b")
  for split in ("train", "eval"):
    assert read_split(from_dir, split) == read_split(from_zip, split)


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
  return synthetic.generate(
      str(tmp_path_factory.mktemp("synthetic")), configs.SyntheticDataConfig(
          synthetic_users=150, synthetic_movies=300, synthetic_ratings=6000, synthetic_seed=5))


def test_counts_ratio_and_reproducible_splits(tmp_path, synthetic_dir):
  first, movies = run_example_gen(synthetic_dir, tmp_path / "first")
  second, _ = run_example_gen(synthetic_dir, tmp_path / "second")
  num_train = first.get_int_custom_property("num_train_examples")
  num_eval = first.get_int_custom_property("num_eval_examples")
  assert num_train + num_eval == 6000
  assert num_eval / 6000 == pytest.approx(0.2, abs=0.02)
  assert movies.get_int_custom_property("num_movies") == 300
  for split in ("train", "eval"):
    rows = read_split(first, split)
    assert rows == read_split(second, split)
  assert len(read_split(first, "eval")) == num_eval


def test_temporal_split_orders_by_time(tmp_path, synthetic_dir):
  ratings, _ = run_example_gen(synthetic_dir, tmp_path / "out", split_method="temporal",
                               eval_fraction=0.25)
  train_ts = [r[features.TIMESTAMP][0] for r in read_split(ratings, "train")]
  eval_ts = [r[features.TIMESTAMP][0] for r in read_split(ratings, "eval")]
  assert max(train_ts) < min(eval_ts)
  assert len(eval_ts) / 6000 == pytest.approx(0.25, abs=0.02)


def test_min_rating_keeps_positives_and_counts_the_rest(tmp_path, synthetic_dir):
  ratings, _ = run_example_gen(synthetic_dir, tmp_path / "out", min_rating=4.0)
  rows = read_split(ratings, "train") + read_split(ratings, "eval")
  assert rows and min(r[features.USER_RATING][0] for r in rows) >= 4.0
  assert len(rows) + ratings.get_int_custom_property("num_below_min_rating") == 6000


def test_malformed_line_fails_with_file_and_line(tmp_path):
  folder = fixtures.write_ml1m(tmp_path / "data")
  with open(folder / "ratings.dat", "ab") as f:
    f.write(b"1::1193::five::978300760\n")
  bad_line = len(fixtures.ML1M_RATINGS) + 1
  with pytest.raises(Exception, match=rf"ratings.dat:{bad_line}:") as error:
    run_example_gen(folder, tmp_path / "out")
  assert "max_bad_lines" in str(error.value)


def test_tolerated_bad_lines_are_counted_and_listed(tmp_path):
  folder = fixtures.write_ml1m(tmp_path / "data")
  with open(folder / "ratings.dat", "ab") as f:
    f.write(b"1::1193::five::978300760\n2::999999::3::978300761\n")
  ratings, _ = run_example_gen(folder, tmp_path / "out", max_bad_lines=2)
  total = (ratings.get_int_custom_property("num_train_examples")
           + ratings.get_int_custom_property("num_eval_examples"))
  assert total == len(fixtures.ML1M_RATINGS)
  assert ratings.get_int_custom_property("num_bad_lines") == 2
  with open(os.path.join(ratings.uri, artifacts.BAD_LINES_FILE)) as f:
    listed = f.read().splitlines()
  n = len(fixtures.ML1M_RATINGS)
  assert [line.split(": ")[0].rsplit("/", 1)[-1] for line in listed] == [
      f"ratings.dat:{n + 1}", f"ratings.dat:{n + 2}"]
  assert "999999" in listed[1]


# Format -> (writer, ratings file, expected ratings, how a ratings line is written).
_RATINGS_LINES = {
    "ml-100k": (fixtures.write_ml100k, "u.data", fixtures.ML100K_RATINGS,
                lambda u, m, r, t: f"{u}\t{m}\t{r:.0f}\t{t}\n"),
    "ml-1m": (fixtures.write_ml1m, "ratings.dat", fixtures.ML1M_RATINGS,
              lambda u, m, r, t: f"{u}::{m}::{r:.0f}::{t}\n"),
    "ml-latest": (fixtures.write_ml_latest, "ratings.csv", fixtures.ML_LATEST_RATINGS,
                  lambda u, m, r, t: f"{u},{m},{r:.1f},{t}\n"),
}


# Every format with the random split; the temporal split, format-independent, once.
@pytest.mark.parametrize("format_name, split_method", [
    ("ml-100k", "random"), ("ml-1m", "random"), ("ml-latest", "random"),
    ("ml-1m", "temporal")])
def test_duplicate_ratings_keep_the_latest_and_are_counted(tmp_path, monkeypatch,
                                                           format_name, split_method):
  writer, ratings_file, expected, line = _RATINGS_LINES[format_name]
  folder = writer(tmp_path / "data")
  (user_a, movie_a, _, time_a), (user_b, movie_b, rating_b, time_b), (
      user_c, movie_c, _, time_c) = expected[:3]
  with open(folder / ratings_file, "a") as f:
    f.write(line(user_a, movie_a, 1.0, time_a + 1))  # Later: replaces the first rating.
    f.write(line(user_b, movie_b, 1.0, time_b - 1))  # Earlier: dropped.
    f.write(line(user_c, movie_c, 2.0, time_c))  # Same time, later line: replaces.
  # Batches of 5 ratings: the duplicates sit in another batch than the rating they repeat.
  monkeypatch.setattr(executor, "_BATCH_SIZE", 5)

  ratings, _ = run_example_gen(folder, tmp_path / "out", split_method=split_method,
                               eval_fraction=0.25)

  rows = read_split(ratings, "train") + read_split(ratings, "eval")
  assert sorted(map(_rating_tuple, rows)) == sorted(
      [(user_a, movie_a, 1.0, time_a + 1), (user_b, movie_b, rating_b, time_b),
       (user_c, movie_c, 2.0, time_c)] + list(expected[3:]))
  assert ratings.get_int_custom_property("num_duplicate_ratings") == 3
  assert ratings.get_int_custom_property("num_bad_lines") == 0


def test_zero_padded_ids_are_other_ids_never_duplicates(tmp_path, monkeypatch):
  folder = fixtures.write_ml1m(tmp_path / "data")
  with open(folder / "movies.dat", "ab") as f:
    f.write(b"0001::Toy Story, padded (1995)::Comedy\n")
  # User 1 rated movie 1 (978300760); the same pair written with padded ids is another.
  padded = [("001", "1", 4.0, 978300761), ("1", "0001", 2.0, 978300762),
            ("01", "0001", 1.0, 978300763)]
  with open(folder / "ratings.dat", "a") as f:
    for user, movie, rating, time in padded:
      f.write(f"{user}::{movie}::{rating:.0f}::{time}\n")
  monkeypatch.setattr(executor, "_BATCH_SIZE", 5)

  ratings, movies = run_example_gen(folder, tmp_path / "out", eval_fraction=0.25)

  rows = read_split(ratings, "train") + read_split(ratings, "eval")
  assert sorted(map(_rating_tuple, rows)) == sorted(list(fixtures.ML1M_RATINGS) + padded)
  assert ratings.get_int_custom_property("num_duplicate_ratings") == 0
  catalog = {row[features.MOVIE_ID][0] for row in read_split(movies, "catalog")}
  assert {b"1", b"0001"} <= catalog


def test_all_ratings_malformed_and_tolerated_names_the_file(tmp_path):
  folder = fixtures.write_ml1m(tmp_path / "data")
  path = fixtures.write_file(folder / "ratings.dat", b"1::1::five::1\n1::1\n")
  with pytest.raises(ValueError) as error:
    run_example_gen(folder, tmp_path / "out", max_bad_lines=2)
  assert str(error.value).startswith(
      f"No ratings could be read from {path}: all 2 lines were skipped as malformed")


def test_missing_data_dir_is_named(tmp_path):
  with pytest.raises(errors.MovieLensFormatError, match="nowhere.*does not exist"):
    run_example_gen(tmp_path / "nowhere", tmp_path / "out")


def test_directory_without_movielens_lists_formats(tmp_path):
  (tmp_path / "data").mkdir()
  (tmp_path / "data" / "ratings.txt").write_text("1,2,3\n")
  with pytest.raises(errors.MovieLensFormatError) as error:
    run_example_gen(tmp_path / "data", tmp_path / "out")
  for looked_for in ("u.data", "ratings.dat", "ratings.csv", "ml-25m"):
    assert looked_for in str(error.value)


def test_empty_split_is_an_error(tmp_path):
  folder = fixtures.write_ml1m(tmp_path / "data")
  with pytest.raises(ValueError, match="split is empty"):
    run_example_gen(folder, tmp_path / "out", min_rating=5.0, eval_fraction=0.01)


@pytest.mark.parametrize("writer, ratings_file, content", [
    (fixtures.write_ml100k, "u.data", b""),
    (fixtures.write_ml1m, "ratings.dat", b""),
    (fixtures.write_ml_latest, "ratings.csv", b"userId,movieId,rating,timestamp\n"),
])
def test_an_empty_ratings_file_is_named(tmp_path, writer, ratings_file, content):
  path = fixtures.write_file(writer(tmp_path / "data") / ratings_file, content)
  with pytest.raises(Exception, match=f"{ratings_file} has no ratings") as error:
    run_example_gen(path.parent, tmp_path / "out")
  assert str(path) in str(error.value)


def test_tolerated_catalog_line_is_listed(tmp_path):
  folder = fixtures.write_ml1m(tmp_path / "data")
  with open(folder / "movies.dat", "ab") as f:
    f.write(b"x12::Broken Id (1999)::Drama\n")
  with pytest.raises(errors.MalformedDataError, match="movies.dat"):
    run_example_gen(folder, tmp_path / "strict")
  ratings, movies = run_example_gen(folder, tmp_path / "tolerant", max_bad_lines=1)
  assert movies.get_int_custom_property("num_movies") == len(fixtures.ML1M_MOVIES)
  with open(os.path.join(ratings.uri, artifacts.BAD_LINES_FILE)) as f:
    listed = f.read().splitlines()
  assert len(listed) == 1
  assert f"movies.dat:{len(fixtures.ML1M_MOVIES) + 1}:" in listed[0]


def test_inferred_schema_matches_the_feature_spec(tmp_path, synthetic_dir):
  # SchemaGen (infer_feature_shape=True) on ExampleGen's output must give exactly the raw
  # feature spec the trainer and serving code assume; Transform parses by the schema.
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  from tensorflow_transform.tf_metadata import schema_utils  # pylint: disable=g-import-not-at-top
  ratings, _ = run_example_gen(synthetic_dir, tmp_path / "out")
  pattern = os.path.join(artifact_utils.get_split_uri([ratings], "train"), "*")
  stats = tfdv.generate_statistics_from_tfrecord(
      pattern, stats_options=tfdv.StatsOptions(), pipeline_options=None)
  schema = tfdv.infer_schema(stats, infer_feature_shape=True)
  assert schema_utils.schema_as_feature_spec(schema).feature_spec == (
      features.raw_feature_spec())


def test_temporal_split_fraction_counts_kept_ratings(tmp_path, synthetic_dir):
  ratings, _ = run_example_gen(synthetic_dir, tmp_path / "out", split_method="temporal",
                               eval_fraction=0.25, min_rating=4.0)
  train_ts = [r[features.TIMESTAMP][0] for r in read_split(ratings, "train")]
  eval_ts = [r[features.TIMESTAMP][0] for r in read_split(ratings, "eval")]
  assert max(train_ts) < min(eval_ts)
  assert len(eval_ts) / (len(train_ts) + len(eval_ts)) == pytest.approx(0.25, abs=0.02)


def test_tolerance_covers_catalog_and_ratings_together(tmp_path):
  folder = fixtures.write_ml1m(tmp_path / "data")
  with open(folder / "movies.dat", "ab") as f:
    f.write(b"x12::Broken Id (1999)::Drama\n")
  with open(folder / "ratings.dat", "ab") as f:
    f.write(b"1::1193::five::978300760\n")
  with pytest.raises(Exception) as error:
    run_example_gen(folder, tmp_path / "strict", max_bad_lines=1)
  message = str(error.value)
  assert "2 malformed lines" in message and "tolerance of 1" in message
  assert "movies.dat:" in message and "ratings.dat:" in message
  assert "--max_bad_lines=2" in message
  ratings, _ = run_example_gen(folder, tmp_path / "tolerant", max_bad_lines=2)
  assert ratings.get_int_custom_property("num_bad_lines") == 2


def test_a_same_size_rewrite_with_the_old_mtime_changes_the_cache_key(tmp_path):
  # cp -p, rsync -a and re-extracted archives keep sizes and mtimes; the content decides.
  folder = fixtures.write_ml1m(tmp_path / "data")
  def cache_key():
    example_gen = component.MovieLensExampleGen(str(folder))
    return example_gen.exec_properties[executor.INPUT_FINGERPRINT_KEY]
  before = cache_key()
  ratings = folder / "ratings.dat"
  stat = os.stat(ratings)
  ratings.write_bytes(ratings.read_bytes().replace(b"1::1::5::", b"1::1::4::", 1))
  os.utime(ratings, ns=(stat.st_atime_ns, stat.st_mtime_ns))
  assert os.stat(ratings).st_size == stat.st_size
  assert cache_key() != before
