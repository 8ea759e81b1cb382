"""Tests of movielens.formats and movielens.readers on GroupLens-format fixtures."""
import pathlib
from typing import List, Tuple

import numpy as np
import pytest

from contracts import features
from movielens import errors as movielens_errors
from movielens import formats
from movielens import readers
from movielens import sources
from tests import movielens_fixtures as fixtures

# Format -> (writer, folder, ratings file, movies file, encoding, movies, ratings).
_DATA_SETS = {
    "ml-100k": (fixtures.write_ml100k, "ml-100k", "u.data", "u.item", "latin-1",
                fixtures.ML100K_MOVIES, fixtures.ML100K_RATINGS),
    "ml-1m": (fixtures.write_ml1m, "ml-1m", "ratings.dat", "movies.dat", "latin-1",
              fixtures.ML1M_MOVIES, fixtures.ML1M_RATINGS),
    "ml-latest": (fixtures.write_ml_latest, "ml-latest-small", "ratings.csv", "movies.csv",
                  "utf-8", fixtures.ML_LATEST_MOVIES, fixtures.ML_LATEST_RATINGS),
}


def _location(tmp_path: pathlib.Path, format_name: str, container: str,
              **write_options) -> str:
  """Writes the fixture of `format_name` and returns its folder or its zip."""
  folder = _DATA_SETS[format_name][0](tmp_path / "data", **write_options)
  if container == "zip":
    return str(fixtures.zip_dir(folder, tmp_path / f"{folder.name}.zip"))
  return str(folder)


def _movies(rows) -> List[formats.Movie]:
  return [formats.Movie(movie_id, title, genres) for movie_id, title, genres in rows]


def _read_ratings(source: sources.MovieLensSource, known_movie_ids,
                  batch_size: int = 50_000) -> Tuple[list, List[movielens_errors.LineError]]:
  """All (user, movie, rating, timestamp) rows and errors, checking the batch dtypes."""
  rows, errors = [], []
  for batch in readers.iter_rating_batches(source, known_movie_ids, batch_size):
    assert batch.ratings.dtype == np.float32
    assert batch.timestamps.dtype == np.int64
    assert len(batch) == len(batch.movie_ids) == len(batch.ratings) == len(
        batch.timestamps)
    rows.extend(zip(batch.user_ids, batch.movie_ids, batch.ratings.tolist(),
                    batch.timestamps.tolist()))
    errors.extend(batch.errors)
  return rows, errors


def _write(path: pathlib.Path, content: bytes) -> pathlib.Path:
  return fixtures.write_file(path, content)


# ---------------------------------------------------------------------- good data parsing


@pytest.mark.parametrize("container", ["dir", "zip"])
@pytest.mark.parametrize("format_name", list(_DATA_SETS))
def test_parses_each_format_exactly(tmp_path, format_name, container):
  _, folder, ratings_file, movies_file, encoding, movies, ratings = _DATA_SETS[format_name]
  location = _location(tmp_path, format_name, container)

  source = sources.detect_source(location)

  if container == "zip":
    expected_ratings_file = f"{folder}/{ratings_file}"
    expected_movies_file = f"{folder}/{movies_file}"
  else:
    expected_ratings_file = f"{location}/{ratings_file}"
    expected_movies_file = f"{location}/{movies_file}"
  assert source == sources.MovieLensSource(
      location=location, format=format_name, ratings_file=expected_ratings_file,
      movies_file=expected_movies_file, encoding=encoding)
  catalog, movie_errors = readers.read_movies(source)
  assert list(catalog.values()) == _movies(movies)
  assert list(catalog) == [row[0] for row in movies]
  assert movie_errors.count == 0
  rows, rating_errors = _read_ratings(source, catalog)
  assert rows == list(ratings)
  assert rating_errors == []


def test_a_new_layout_is_one_record(tmp_path, monkeypatch):
  # A made-up GroupLens layout: tab-separated with headers, other column orders, genres
  # as a ","-joined list. Adding it to the registry is all detection and reading need.
  layout = formats.MovieLensFormat(
      name="ml-tsv", covers=("ml-tsv",), encoding="utf-8",
      ratings=formats.RatingsFile(
          "ratings.tsv", b"\t", header=("movie", "time", "user", "stars"),
          columns=(formats.MOVIE_ID, formats.TIMESTAMP, formats.USER_ID, formats.RATING)),
      movies=formats.MoviesFile(
          "movies.tsv", b"\t", num_columns=3, header=("genres", "title", "movie"),
          genres=formats.GenreList(column=0, separator=","), id_column=2,
          title_column=1))
  monkeypatch.setattr(formats, "FORMATS", formats.FORMATS + (layout,))
  folder = tmp_path / "ml-tsv"
  _write(folder / "movies.tsv", "genres\ttitle\tmovie\nDrama,War\tMisérables (1995)\t7\n"
         .encode("utf-8"))
  _write(folder / "ratings.tsv", b"movie\ttime\tuser\tstars\n7\t1000\t3\t4.5\n")

  source = sources.detect_source(str(tmp_path))
  catalog, log = readers.read_movies(source)
  rows, errors = _read_ratings(source, catalog)

  assert (source.format, source.encoding) == ("ml-tsv", "utf-8")
  assert list(catalog.values()) == [formats.Movie("7", "Misérables (1995)", ("Drama", "War"))]
  assert rows == [("3", "7", 4.5, 1000)]
  assert (log.count, errors) == (0, [])


def test_fixtures_have_the_advertised_shape():
  for _, _, _, _, _, movies, ratings in _DATA_SETS.values():
    assert len(movies) == 6
    assert len(ratings) == 16
    assert len({row[0] for row in ratings}) == fixtures.NUM_USERS
    assert {row[1] for row in ratings} <= {row[0] for row in movies}


def test_ml100k_genre_flags_special_cases(tmp_path):
  source = sources.detect_source(_location(tmp_path, "ml-100k", "dir"))
  catalog, _ = readers.read_movies(source)
  # The real file's movie 267 has empty dates and only the "unknown" flag.
  assert catalog["267"] == formats.Movie("267", "unknown", ("unknown",))
  # No flag set: the placeholder genre, never an empty list.
  assert catalog["12"].genres == (features.NO_GENRES,)
  assert catalog["10"].title == "Mis\u00e9rables, Les (1995)"


def test_ml_latest_csv_quoting_and_no_genres(tmp_path):
  source = sources.detect_source(_location(tmp_path, "ml-latest", "dir"))
  catalog, _ = readers.read_movies(source)
  assert catalog["2105"].title == 'Tron: "The Original", Director\'s Cut (1982)'
  assert catalog["73"].title == "Mis\u00e9rables, Les (1995)"
  assert catalog["114335"].genres == (features.NO_GENRES,)


@pytest.mark.parametrize("container", ["dir", "zip"])
@pytest.mark.parametrize("format_name", list(_DATA_SETS))
def test_crlf_and_missing_final_newline(tmp_path, format_name, container):
  *_, movies, ratings = _DATA_SETS[format_name]
  location = _location(tmp_path, format_name, container, line_ending=b"\r\n",
                       final_newline=False)
  source = sources.detect_source(location)

  catalog, movie_errors = readers.read_movies(source)
  rows, rating_errors = _read_ratings(source, catalog)

  assert list(catalog.values()) == _movies(movies)
  assert rows == list(ratings)
  assert (movie_errors.count, rating_errors) == (0, [])


def test_batches_hold_at_most_batch_size_good_ratings(tmp_path):
  source = sources.detect_source(_location(tmp_path, "ml-1m", "dir"))
  catalog, _ = readers.read_movies(source)

  batches = list(readers.iter_rating_batches(source, catalog, batch_size=5))

  assert [len(batch) for batch in batches] == [5, 5, 5, 1]
  assert batches[1].user_ids == ["2", "2", "2", "3", "3"]
  assert batches[1].movie_ids == ["29", "1", "260", "2858", "73"]
  np.testing.assert_array_equal(batches[1].ratings, [4.0, 3.0, 5.0, 3.0, 2.0])
  np.testing.assert_array_equal(batches[3].timestamps, [978226474])


def test_batch_size_must_be_positive(tmp_path):
  source = sources.detect_source(_location(tmp_path, "ml-1m", "dir"))
  with pytest.raises(ValueError, match="batch_size must be positive, got 0"):
    next(readers.iter_rating_batches(source, {"1"}, batch_size=0))


# ----------------------------------------------------------------------- malformed ratings


def test_malformed_rating_lines_are_reported_and_skipped(tmp_path):
  folder = fixtures.write_ml100k(tmp_path)
  path = _write(folder / "u.data", (
      b"196\t1\t3\t881250949\n"
      b"196\t2\t4\n"  # Line 2: a field missing.
      b"abc\t2\t4\t881250950\n"
      b"196\tx1\t4\t881250950\n"
      b"196\t2\tfour\t881250950\n"
      b"196\t2\t7\t881250950\n"
      b"196\t2\t0\t881250950\n"
      b"196\t2\tnan\t881250950\n"
      b"196\t2\t4\t-5\n"
      b"196\t2\t4\t\n"
      b"\n"
      b"196\t999\t4\t881250950\n"
      b" 22 \t 2 \t5\t881250951\n"))  # Line 13: spaces around ids are tolerated.
  source = sources.detect_source(str(folder))
  catalog, _ = readers.read_movies(source)

  rows, errors = _read_ratings(source, catalog)

  assert rows == [("196", "1", 3.0, 881250949), ("22", "2", 5.0, 881250951)]
  assert [str(error) for error in errors] == [
      f"{path}:2: expected 4 tab-separated fields, got 3",
      f"{path}:3: user id 'abc' is not a non-negative integer",
      f"{path}:4: movie id 'x1' is not a non-negative integer",
      f"{path}:5: rating 'four' is not a number",
      f"{path}:6: rating 7.0 outside 0.5..5",
      f"{path}:7: rating 0.0 outside 0.5..5",
      f"{path}:8: rating nan outside 0.5..5",
      f"{path}:9: timestamp '-5' is not a non-negative integer",
      f"{path}:10: timestamp '' is not a non-negative integer",
      f"{path}:11: empty line",
      f"{path}:12: movie id '999' is not in u.item",
  ]
  assert errors[0] == movielens_errors.LineError(str(path), 2,
                                        "expected 4 tab-separated fields, got 3")


def test_malformed_ml1m_rating_in_a_zip(tmp_path):
  folder = fixtures.write_ml1m(tmp_path)
  _write(folder / "ratings.dat", b"1::1::5::978300760\n1::1::5\n1::260::5.5::978300760\n")
  zip_path = fixtures.zip_dir(folder, tmp_path / "ml-1m.zip")
  source = sources.detect_source(str(zip_path))

  rows, errors = _read_ratings(source, {"1", "260"})

  assert rows == [("1", "1", 5.0, 978300760)]
  assert [str(error) for error in errors] == [
      f"{zip_path}!ml-1m/ratings.dat:2: expected 4 '::'-separated fields, got 3",
      f"{zip_path}!ml-1m/ratings.dat:3: rating 5.5 outside 0.5..5",
  ]


def test_csv_rating_line_numbers_count_the_header(tmp_path):
  folder = fixtures.write_ml_latest(tmp_path)
  path = _write(folder / "ratings.csv", (
      b"userId,movieId,rating,timestamp\n"
      b"1,1,4.0,964982703\n"
      b"1,1,4.0,964982703,extra\n"
      b"1,1,0.4,964982703\n"
      b"1,2,4.0,964982703\n"))
  source = sources.detect_source(str(folder))

  rows, errors = _read_ratings(source, {"1"})

  assert rows == [("1", "1", 4.0, 964982703)]
  assert [str(error) for error in errors] == [
      f"{path}:3: expected 4 comma-separated fields, got 5",
      f"{path}:4: rating 0.4 outside 0.5..5",
      f"{path}:5: movie id '2' is not in movies.csv",
  ]


def test_errors_travel_with_the_batch_they_were_met_in(tmp_path):
  folder = fixtures.write_ml1m(tmp_path)
  _write(folder / "ratings.dat", b"1::1::5::1\nbad\n1::1::4::2\n1::1::3::3\nbad\n")
  source = sources.detect_source(str(folder))

  batches = list(readers.iter_rating_batches(source, {"1"}, batch_size=2))

  assert [len(batch) for batch in batches] == [2, 1]
  assert [[error.line_number for error in batch.errors] for batch in batches] == [[2], [5]]


def test_only_errors_yield_one_batch_without_ratings(tmp_path):
  folder = fixtures.write_ml1m(tmp_path)
  _write(folder / "ratings.dat", b"bad\n")
  source = sources.detect_source(str(folder))

  batches = list(readers.iter_rating_batches(source, {"1"}))

  assert [(len(batch), len(batch.errors)) for batch in batches] == [(0, 1)]
  assert batches[0].ratings.shape == (0,)


@pytest.mark.parametrize("format_name, content, what", [
    ("ml-100k", b"", "empty"),
    ("ml-1m", b"", "empty"),
    ("ml-latest", b"userId,movieId,rating,timestamp\n", "empty but for its header line"),
])
def test_a_ratings_file_without_ratings_is_named(tmp_path, format_name, content, what):
  writer, _, ratings_file, *_ = _DATA_SETS[format_name]
  path = _write(writer(tmp_path) / ratings_file, content)
  source = sources.detect_source(str(path.parent))
  with pytest.raises(movielens_errors.MovieLensFormatError) as error:
    list(readers.iter_rating_batches(source, {"1"}))
  assert str(error.value) == f"{path} has no ratings: the file is {what}."


@pytest.mark.parametrize("header", [b"user,movie,rating,timestamp\n", b""])
def test_csv_ratings_header_is_checked(tmp_path, header):
  folder = fixtures.write_ml_latest(tmp_path)
  path = _write(folder / "ratings.csv", header)
  source = sources.detect_source(str(folder))
  with pytest.raises(movielens_errors.MovieLensFormatError) as error:
    list(readers.iter_rating_batches(source, {"1"}))
  assert str(path) in str(error.value)
  assert "userId,movieId,rating,timestamp" in str(error.value)


def test_csv_movies_header_is_checked(tmp_path):
  folder = fixtures.write_ml_latest(tmp_path)
  path = _write(folder / "movies.csv", b"id,title,genres\n1,Toy Story (1995),Comedy\n")
  source = sources.detect_source(str(folder))
  with pytest.raises(movielens_errors.MovieLensFormatError,
                     match="header is 'id,title,genres', expected "
                     "'movieId,title,genres'") as error:
    readers.read_movies(source)
  assert str(error.value).startswith(f"{path}:1: ")


# ------------------------------------------------------------------------ malformed movies


def test_malformed_ml100k_movie_lines(tmp_path):
  folder = fixtures.write_ml100k(tmp_path)
  flags = b"|0" * 18
  path = _write(folder / "u.item", (
      b"1|Toy Story (1995)|01-Jan-1995||url|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
      b"2|Too Few (1995)|01-Jan-1995||url|0|1\n"
      b"x|Bad Id (1995)|01-Jan-1995||url|0" + flags + b"\n"
      b"4|Bad Flag (1995)|01-Jan-1995||url|0|2" + flags[2:] + b"\n"
      b"5||01-Jan-1995||url|1" + flags + b"\n"
      b"1|Toy Story Again (1995)|01-Jan-1995||url|1" + flags + b"\n"
      b"6|Ok (1995)|||url" + flags + b"|1\n"))
  source = sources.detect_source(str(folder))

  catalog, log = readers.read_movies(source)

  assert list(catalog.values()) == [
      formats.Movie("1", "Toy Story (1995)", ("Animation", "Children's", "Comedy")),
      formats.Movie("6", "Ok (1995)", ("Western",)),
  ]
  assert [str(error) for error in log.examples] == [
      f"{path}:2: expected 24 '|'-separated fields, got 7",
      f"{path}:3: movie id 'x' is not a non-negative integer",
      f"{path}:4: genre flag 'Action' is '2', expected 0 or 1",
      f"{path}:5: empty title",
      f"{path}:6: duplicate movie id '1' (first on line 1)",
  ]
  assert log.count == 5


def test_malformed_ml1m_and_csv_movie_lines(tmp_path):
  folder = fixtures.write_ml1m(tmp_path)
  path = _write(folder / "movies.dat", (
      b"1::Toy Story (1995)::Animation\n"
      b"2::Jumanji (1995)\n"
      b"3::Grumpier Old Men (1995)::\n"
      b"4::Waiting to Exhale (1995)::Comedy||Drama\n"))
  catalog, log = readers.read_movies(sources.detect_source(str(folder)))
  assert list(catalog) == ["1"]
  assert [str(error) for error in log.examples] == [
      f"{path}:2: expected 3 '::'-separated fields, got 2",
      f"{path}:3: empty genres field",
      f"{path}:4: empty genre name in 'Comedy||Drama'",
  ]

  folder = fixtures.write_ml_latest(tmp_path)
  path = _write(folder / "movies.csv", (
      b"movieId,title,genres\n"
      b"1,Toy Story (1995),Comedy\n"
      b"2,Jumanji, (1995),Comedy\n"
      b"3,\"Unclosed (1995),Comedy\n"
      b"1,Toy Story (1995),Comedy\n"))
  catalog, log = readers.read_movies(sources.detect_source(str(folder)))
  assert list(catalog) == ["1"]
  assert [error.line_number for error in log.examples] == [3, 4, 5]
  assert log.examples[0].reason == "expected 3 comma-separated fields, got 4"
  assert log.examples[1].reason.startswith("bad CSV quoting")
  assert log.examples[2].reason == "duplicate movie id '1' (first on line 2)"


def test_latin1_bytes_in_utf8_movies_csv(tmp_path):
  folder = fixtures.write_ml_latest(tmp_path)
  path = _write(folder / "movies.csv", (
      b"movieId,title,genres\n"
      b"1,Toy Story (1995),Comedy\n"
      b"73,\"Mis\xe9rables, Les (1995)\",Drama|War\n"))
  source = sources.detect_source(str(folder))

  catalog, log = readers.read_movies(source)

  assert list(catalog) == ["1"]
  assert [str(error) for error in log.examples] == [
      f"{path}:3: title is not valid UTF-8 (movies.csv is UTF-8)"]


@pytest.mark.parametrize("format_name, movies_file, line", [
    ("ml-100k", "u.item",
     "11|Cit\u00e9 des enfants perdus, La (1995)|01-Jan-1995||url" + "|0" * 19),
    ("ml-1m", "movies.dat", "73::Mis\u00e9rables, Les (1995)::Drama|Musical"),
])
def test_utf8_bytes_in_latin1_movies_file(tmp_path, format_name, movies_file, line):
  folder = _DATA_SETS[format_name][0](tmp_path)
  good_line = fixtures.ML100K_U_ITEM.split(b"\n")[0] if format_name == "ml-100k" else (
      fixtures.ML1M_MOVIES_DAT.split(b"\n")[0])
  path = _write(folder / movies_file, good_line + b"\n" + line.encode("utf-8") + b"\n")
  source = sources.detect_source(str(folder))

  catalog, log = readers.read_movies(source)

  assert list(catalog) == ["1"]
  assert [str(error) for error in log.examples] == [
      f"{path}:2: looks UTF-8 encoded; {movies_file} is latin-1 in {format_name}"]


def test_millisecond_timestamps_are_bad_lines_saying_so(tmp_path):
  folder = fixtures.write_ml_latest(tmp_path)
  path = _write(folder / "ratings.csv", (
      b"userId,movieId,rating,timestamp\n"
      b"1,1,4.0,964982703\n"
      b"1,1,4.0,964982703000\n"  # Line 3: the same time in milliseconds.
      b"1,1,4.0,32503679999\n"  # Line 4: the last second before the year 3000.
      b"1,1,4.0,99999999999999999999999\n"))
  source = sources.detect_source(str(folder))
  rows, errors = _read_ratings(source, {"1"})
  assert [row[3] for row in rows] == [964982703, 32503679999]
  assert [str(error) for error in errors] == [
      f"{path}:3: timestamp '964982703000' is after the year 3000: milliseconds? "
      "MovieLens timestamps are Unix seconds",
      f"{path}:5: timestamp '99999999999999999999999' is after the year 3000: "
      "milliseconds? MovieLens timestamps are Unix seconds"]


def test_a_csv_field_over_the_size_limit_is_reported_as_such(tmp_path):
  folder = fixtures.write_ml_latest(tmp_path)
  path = _write(folder / "movies.csv", (
      b"movieId,title,genres\n"
      b"1,Toy Story (1995),Comedy\n"
      b"2,\"" + b"x" * 200_000 + b"\",Comedy\n"))
  catalog, log = readers.read_movies(sources.detect_source(str(folder)))
  assert list(catalog) == ["1"]
  assert [str(error) for error in log.examples] == [
      f"{path}:3: a field is longer than 131,072 characters, the CSV reader's limit (is "
      "the file a movies.csv?)"]
