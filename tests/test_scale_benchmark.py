"""benchmarks/scaling.py, the parts of benchmarks/scale.py that run no pipeline: sizes,
the users/movies rule, growth exponents and the ml-latest writer read back by the
project's readers."""
import importlib.util
import math
import pathlib
import types

import numpy as np
import pytest

from movielens import formats
from movielens import readers
from movielens import sources

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load_scaling():
  spec = importlib.util.spec_from_file_location("scaling",
                                                REPO_ROOT / "benchmarks" / "scaling.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


scaling = _load_scaling()

# Genre names of ml-latest's movies.csv.
_ML_LATEST_GENRES = {"Action", "Adventure", "Animation", "Children", "Comedy", "Crime",
                     "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical",
                     "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western", "IMAX",
                     "(no genres listed)"}


# ------------------------------------------------------------------------------ sizes


@pytest.mark.parametrize("text, expected", [
    ("100k", 100_000), ("1m", 1_000_000), ("10m", 10_000_000), ("20k", 20_000),
    ("250000", 250_000), (" 40K ", 40_000), ("1.5m", 1_500_000), ("2.5k", 2_500)])
def test_parse_size(text, expected):
  assert scaling.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "k", "abc", "10g", "-5k", "1e6", "100 k", "1,000",
                                  "0", "0k", "1.5", "1.0005k"])
def test_parse_size_rejects_bad_strings(text):
  with pytest.raises(ValueError, match=r"Bad size"):
    scaling.parse_size(text)


def test_bad_size_message_explains_the_syntax():
  with pytest.raises(ValueError) as raised:
    scaling.parse_size("10g")
  assert "'10g'" in str(raised.value) and "k (thousand)" in str(raised.value)


def test_parse_sizes_sorts_and_rejects_repeats():
  assert scaling.parse_sizes(["1m", "20k", "100k"]) == [20_000, 100_000, 1_000_000]
  with pytest.raises(ValueError, match="twice"):
    scaling.parse_sizes(["20k", "20000"])
  with pytest.raises(ValueError, match="No sizes"):
    scaling.parse_sizes([])


@pytest.mark.parametrize("label", ["20k", "100k", "1m", "10m", "12345", "1500k"])
def test_size_label_round_trips(label):
  assert scaling.size_label(scaling.parse_size(label)) == label


# ----------------------------------------------------------------- users and movies rule


def _counts(num_ratings):
  size = scaling.catalogue_size(num_ratings)
  assert size.synthetic_ratings == num_ratings
  return size.synthetic_users, size.synthetic_movies


@pytest.mark.parametrize("num_ratings, users, movies", scaling.GROUPLENS_SIZES)
def test_grouplens_sizes_get_their_counts(num_ratings, users, movies):
  assert _counts(num_ratings) == (users, movies)


def test_between_grouplens_sizes_counts_follow_a_power_law():
  # The geometric middle of ml-100k and ml-1m gets the geometric middle of their counts.
  users, movies = _counts(round(math.sqrt(100_000 * 1_000_000)))
  assert users == pytest.approx(math.sqrt(943 * 6040), abs=1)
  assert movies == pytest.approx(math.sqrt(1682 * 3706), abs=1)


@pytest.mark.parametrize("low, high", [(20_000, 40_000), (50_000_000, 100_000_000)])
def test_outside_grouplens_sizes_the_overall_exponent_goes_on(low, high):
  (u1, m1), (u2, m2) = _counts(low), _counts(high)
  ratio = math.log(high / low)
  assert math.log(u2 / u1) / ratio == pytest.approx(math.log(162541 / 943) / math.log(250),
                                                    abs=0.01)
  assert math.log(m2 / m1) / ratio == pytest.approx(
      math.log(59047 / 1682) / math.log(250), abs=0.01)


def test_users_and_movies_grow_sub_linearly():
  sizes = [5_000, 20_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000, 25_000_000,
           100_000_000]
  counts = dict(zip(sizes, map(_counts, sizes)))
  for low, high in zip(sizes, sizes[1:]):  # More ratings, more users and movies.
    assert counts[high][0] > counts[low][0] and counts[high][1] > counts[low][1]
  # Fewer than proportionally across the GroupLens range, below it and above it.
  for low, high in [(5_000, 100_000), (100_000, 25_000_000), (25_000_000, 100_000_000),
                    (5_000, 100_000_000)]:
    for i in (0, 1):
      assert counts[high][i] / counts[low][i] < high / low


def test_tiny_sizes_give_each_user_the_floor():
  for num_ratings in (20, 45, 100, 1_000):
    users, movies = _counts(num_ratings)
    assert 1 <= users <= num_ratings // 20 and users * movies >= num_ratings
  assert _counts(20)[0] == 1
  with pytest.raises(ValueError, match="too few"):
    scaling.catalogue_size(19)


# ----------------------------------------------------------------------- growth exponents


@pytest.mark.parametrize("n1, n2, v1, v2, expected", [
    (100_000, 1_000_000, 10.0, 100.0, 1.0),  # Linear.
    (100_000, 1_000_000, 10.0, 1000.0, 2.0),  # Quadratic.
    (1_000_000, 10_000_000, 5.0, 5.0, 0.0),  # Constant.
    (1, 4, 3.0, 6.0, 0.5),
    (20_000, 40_000, 8.0, 4.0, -1.0),  # Shrinking.
])
def test_growth_exponent(n1, n2, v1, v2, expected):
  assert scaling.growth_exponent(n1, n2, v1, v2) == pytest.approx(expected)


@pytest.mark.parametrize("v1, v2", [(0.0, 5.0), (5.0, 0.0), (None, 5.0), (5.0, None)])
def test_growth_exponent_of_a_missing_or_zero_cost_is_none(v1, v2):
  assert scaling.growth_exponent(1_000, 2_000, v1, v2) is None


@pytest.mark.parametrize("n1, n2", [(1_000, 1_000), (0, 1_000), (1_000, -5)])
def test_growth_exponent_needs_two_different_sizes(n1, n2):
  with pytest.raises(ValueError, match="different positive sizes"):
    scaling.growth_exponent(n1, n2, 1.0, 2.0)


# ------------------------------------------------------------------------------- writer


def test_user_groups_cover_every_user_once_in_order():
  counts = np.array([20, 20, 20, 50, 20])  # Running totals 20, 40, 60, 110, 130.
  assert list(scaling.user_groups(counts, 30)) == [(0, 2), (2, 3), (3, 4), (4, 5)]
  assert list(scaling.user_groups(counts, 60)) == [(0, 3), (3, 5)]
  assert list(scaling.user_groups(counts, 1000)) == [(0, 5)]
  counts = np.random.default_rng(0).integers(20, 500, size=1000)
  groups = list(scaling.user_groups(counts, 2000))
  assert [end for _, end in groups[:-1]] == [begin for begin, _ in groups[1:]]
  assert groups[0][0] == 0 and groups[-1][1] == len(counts)
  assert all(counts[begin:end - 1].sum() < 2000 for begin, end in groups)


@pytest.fixture(name="written", scope="module")
def fixture_written(tmp_path_factory):
  """A 3,000-rating set written in groups of about 400 ratings, and its size."""
  size = scaling.catalogue_size(3_000)
  directory = str(tmp_path_factory.mktemp("ml-latest"))
  scaling.write_ml_latest(directory, size, group_ratings=400)
  return directory, size


def test_written_set_is_detected_as_ml_latest(written):
  directory, _ = written
  source = sources.detect_source(directory)
  assert source.format == formats.ML_LATEST.name
  with open(f"{directory}/ratings.csv", encoding="utf-8") as f:
    assert f.readline() == "userId,movieId,rating,timestamp\n"
  with open(f"{directory}/movies.csv", encoding="utf-8") as f:
    assert f.readline() == "movieId,title,genres\n"


def test_written_set_reads_back_whole(written):
  directory, size = written
  source = sources.detect_source(directory)
  movies, errors = readers.read_movies(source)
  errors.raise_if_over(0, "movies")
  assert len(movies) == size.synthetic_movies
  batches = list(readers.iter_rating_batches(source, movies))
  assert not [error for batch in batches for error in batch.errors]
  users = [int(u) for batch in batches for u in batch.user_ids]
  rated = [batch_movie for batch in batches for batch_movie in batch.movie_ids]
  ratings = np.concatenate([batch.ratings for batch in batches])
  assert len(users) == size.synthetic_ratings
  assert set(rated) <= set(movies)  # Every movie of ratings.csv is in movies.csv.
  assert set(users) == set(range(1, size.synthetic_users + 1))
  assert np.bincount(users)[1:].min() >= 20  # The floor of ratings per user.
  assert set(np.unique(ratings).tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
  pairs = list(zip(users, (int(m) for m in rated)))
  assert pairs == sorted(pairs) and len(set(pairs)) == len(pairs)  # By user, then movie.


def test_written_movies_have_ml_latest_genres_and_quoted_titles(written):
  directory, _ = written
  movies, _ = readers.read_movies(sources.detect_source(directory))
  genres = {genre for movie in movies.values() for genre in movie.genres}
  assert genres <= _ML_LATEST_GENRES
  assert "Children's" not in genres
  # Titles with a comma ("Heart Road, The (1995)") are quoted and read back whole.
  assert any(", The (" in movie.title for movie in movies.values())
  with open(f"{directory}/movies.csv", encoding="utf-8") as f:
    assert ',"' in f.read()


def test_generator_genres_are_written_with_ml_latest_names(tmp_path):
  # Rare in generated sets: "unknown" alone (ml-100k's movies without genres), and
  # titles with a quote; a catalogue of three such movies, written and read back.
  names = formats.ML_100K_GENRES
  flags = np.zeros((3, len(names)), dtype=bool)
  flags[0, names.index("unknown")] = True
  flags[1, [names.index("Children's"), names.index("Comedy")]] = True
  flags[2, names.index("Drama")] = True
  catalogue = types.SimpleNamespace(
      titles=["Untitled (1995)", "Kid, The (1921)", 'Say "Cheese", The (1990)'],
      genres=flags)
  # pylint: disable-next=protected-access
  scaling._write_movies(str(tmp_path / "movies.csv"), catalogue)
  (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,4.0,1\n")
  movies, errors = readers.read_movies(sources.detect_source(str(tmp_path)))
  errors.raise_if_over(0, "movies")
  assert [(m.title, m.genres) for m in movies.values()] == [
      ("Untitled (1995)", ("(no genres listed)",)),
      ("Kid, The (1921)", ("Children", "Comedy")),
      ('Say "Cheese", The (1990)', ("Drama",))]
