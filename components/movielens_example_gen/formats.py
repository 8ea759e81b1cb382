"""Reads the MovieLens data sets exactly as GroupLens ships them.

Three layouts are known, each from a directory or from the official .zip file (whose
members sit under a top folder such as `ml-100k/`):

  * "ml-100k": `u.data` (tab-separated ratings) and `u.item` (pipe-separated movies with
    19 genre flags), latin-1, no header.
  * "ml-1m" (also ml-10m): `ratings.dat` and `movies.dat`, `::`-separated, latin-1, no
    header.
  * "ml-latest" (ml-latest-small, ml-latest, ml-20m, ml-25m): `ratings.csv` and
    `movies.csv`, UTF-8 CSV with one header line.

Files are read through `tf.io.gfile`, so gs:// locations work, and the ratings file is
streamed: the ml-25m ratings.csv is 650 MB. Malformed lines are not raised one by one;
they are collected as `LineError`s so that the caller can apply a tolerance
(`LineErrorLog.raise_if_over`) and show the user where the first problems are.
"""
import csv
import dataclasses
import functools
import posixpath
import zipfile
from typing import (BinaryIO, Container, Dict, Iterable, Iterator, List, Optional, Set,
                    Tuple)

import numpy as np
import tensorflow as tf

from contracts import features

ML_100K = "ml-100k"
ML_1M = "ml-1m"
ML_LATEST = "ml-latest"
FORMATS = (ML_100K, ML_1M, ML_LATEST)

# ml-100k's u.item genre flags, in file order (also the order of a movie's genres).
ML_100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy",
                  "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror",
                  "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")

MIN_RATING = 0.5
MAX_RATING = 5.0


@dataclasses.dataclass(frozen=True)
class _Layout:
  """The files that identify one format, and what the user is told about it."""
  format: str
  ratings: str
  movies: str
  encoding: str
  covers: str  # Data set names that ship in this layout, for error messages.

  def describe(self) -> str:
    return f"{self.ratings} + {self.movies} ({self.covers})"


_LAYOUTS = (
    _Layout(ML_100K, "u.data", "u.item", "latin-1", "ml-100k"),
    _Layout(ML_1M, "ratings.dat", "movies.dat", "latin-1", "ml-1m, ml-10m"),
    _Layout(ML_LATEST, "ratings.csv", "movies.csv", "utf-8",
            "ml-latest-small, ml-latest, ml-20m, ml-25m"),
)

_CSV_RATINGS_HEADER = ("userId", "movieId", "rating", "timestamp")
_CSV_MOVIES_HEADER = ("movieId", "title", "genres")
_UTF8_BOM = b"\xef\xbb\xbf"

# Large enough that per-read overhead (a network call on gs://) is negligible, small
# enough that memory stays flat whatever the file size.
_CHUNK_BYTES = 1 << 20
# Ids must fit int64: downstream code (splits, TF) converts them to integers.
_MAX_ID_DIGITS = 18
_MAX_TIMESTAMP = (1 << 63) - 1
# Field text quoted in an error message is cut here so one bad line cannot flood a log.
_MAX_QUOTED_CHARS = 40


class MovieLensFormatError(ValueError):
  """Data location missing, or no/partial known file layout."""


class MalformedDataError(ValueError):
  """More malformed lines than the configured tolerance allows."""


@dataclasses.dataclass(frozen=True)
class LineError:
  """One malformed line of a MovieLens file."""
  path: str  # File as a user would find it: "/d/ml-1m/ratings.dat" or "/d/x.zip!ml-1m/...".
  line_number: int  # 1-based, counting header lines too.
  reason: str

  def __str__(self) -> str:
    return f"{self.path}:{self.line_number}: {self.reason}"


class LineErrorLog:
  """Collects line errors: total count, plus the first `keep` (default 20; None: all)."""

  # Error messages list at most this many lines, however many are kept.
  _MAX_IN_MESSAGE = 20

  def __init__(self, keep: Optional[int] = 20):
    self._keep = keep
    self._count = 0
    self._examples: List[LineError] = []

  def add(self, error: LineError) -> None:
    """Counts `error`, and keeps it if fewer than `keep` are kept so far."""
    self._count += 1
    if self._keep is None or len(self._examples) < self._keep:
      self._examples.append(error)

  def extend(self, errors: Iterable[LineError]) -> None:
    """Adds every error of `errors`, in order."""
    for error in errors:
      self.add(error)

  @property
  def count(self) -> int:
    """Number of errors added, kept or not."""
    return self._count

  @property
  def examples(self) -> List[LineError]:
    """The first errors added, at most `keep` of them."""
    return list(self._examples)

  def raise_if_over(self, max_bad_lines: int, what: str) -> None:
    """Raises MalformedDataError if more than `max_bad_lines` errors were added.

    Args:
      max_bad_lines: The tolerance: this many bad lines are accepted (and skipped).
      what: What was read, for the message, e.g. "ratings" or "movies".

    Raises:
      MalformedDataError: Says how many lines were bad, the tolerance, the kept examples
        one per line and how to raise the tolerance.
    """
    if self._count <= max_bad_lines:
      return
    shown = self._examples[:self._MAX_IN_MESSAGE]
    listed = "All of them" if len(shown) == self._count else f"The first {len(shown)}"
    lines = [f"{self._count} malformed lines in {what}, more than the tolerance of "
             f"{max_bad_lines} (--max_bad_lines). {listed}:"]
    lines.extend(f"  {error}" for error in shown)
    lines.append(f"Fix the data, or accept and skip these lines with "
                 f"--max_bad_lines={self._count} or more.")
    raise MalformedDataError("\n".join(lines))


@dataclasses.dataclass(frozen=True)
class Movie:
  """One catalog entry."""
  movie_id: str  # Decimal string, e.g. "1".
  title: str
  genres: Tuple[str, ...]  # Never empty: features.NO_GENRES when the movie has none.


@dataclasses.dataclass(frozen=True)
class MovieLensSource:
  """Where a MovieLens data set is and how to read it; made by `detect_source`."""
  location: str  # The directory or zip path given.
  format: str  # One of FORMATS.
  ratings_file: str  # Path in the directory, or member name in the zip.
  movies_file: str
  encoding: str  # "latin-1" or "utf-8".

  @functools.cached_property
  def _is_zip(self) -> bool:
    # detect_source only accepts a directory or a zip file, so "not a directory" is a zip.
    return not tf.io.gfile.isdir(self.location)

  def display_path(self, file: str) -> str:
    """`file` (ratings_file or movies_file) as a user would find it."""
    return f"{self.location}!{file}" if self._is_zip else file


# ------------------------------------------------------------------------------ detection


def detect_source(path: str) -> MovieLensSource:
  """Finds which MovieLens layout `path` holds.

  Args:
    path: A directory (searched recursively, so the parent of "ml-100k/" works too) or a
      .zip file as downloaded from GroupLens.

  Returns:
    The source, with the files of the one layout found.

  Raises:
    MovieLensFormatError: `path` is missing or is neither a directory nor a zip; no
      layout is found (the message lists those looked for); only one file of a layout is
      found (the message names the missing one); or several layouts are found.
  """
  if not tf.io.gfile.exists(path):
    raise MovieLensFormatError(
        f"MovieLens data location {path!r} does not exist. It should be a directory or "
        f"a GroupLens .zip holding one of:\n{_describe_layouts()}")
  if tf.io.gfile.isdir(path):
    folders = _directory_listing(path)
  else:
    folders = _zip_listing(path)

  complete, partial = _match_layouts(folders)
  if len(complete) == 1:
    layout, folder = complete[0]
    return MovieLensSource(location=path, format=layout.format,
                           ratings_file=_join(folder, layout.ratings),
                           movies_file=_join(folder, layout.movies),
                           encoding=layout.encoding)
  if len(complete) > 1:
    found = "; ".join(f"{layout.format} in {_where(path, folder)}"
                      for layout, folder in complete)
    raise MovieLensFormatError(
        f"{path!r} holds more than one MovieLens data set ({found}); point at one of them.")
  if partial:
    layout, folder, missing = partial[0]
    present = layout.movies if missing == layout.ratings else layout.ratings
    raise MovieLensFormatError(
        f"Incomplete {layout.format} data in {_where(path, folder)}: found {present} but "
        f"{missing} is missing; the {layout.format} format needs {layout.describe()}.")
  raise MovieLensFormatError(
      f"No MovieLens data found in {path!r}. Looked for one of these file pairs (in the "
      f"directory, a subdirectory or the zip):\n{_describe_layouts()}")


def _describe_layouts() -> str:
  """Every known layout with its files, one per line."""
  return "\n".join(f"  {layout.describe()}" for layout in _LAYOUTS)


def _join(folder: str, name: str) -> str:
  # Zip member names always use "/"; gfile paths (local or gs://) do too.
  return posixpath.join(folder, name) if folder else name


def _where(location: str, folder: str) -> str:
  """A found folder for messages; the zip's top level ("") is the zip itself."""
  return repr(folder) if folder else repr(location)


def _directory_listing(path: str) -> Dict[str, Set[str]]:
  """Maps every folder under `path` (itself included) to the file names in it."""
  return {folder: set(files) for folder, _, files in tf.io.gfile.walk(path)}


def _zip_listing(path: str) -> Dict[str, Set[str]]:
  """Maps every folder inside the zip at `path` ("" for the top) to its file names."""
  try:
    with tf.io.gfile.GFile(path, "rb") as stream, zipfile.ZipFile(stream) as archive:
      names = archive.namelist()
  # gfile raises OpError, not BadZipFile, when zipfile seeks before the start of a file
  # too short to hold a zip directory.
  except (zipfile.BadZipFile, tf.errors.OpError) as e:
    raise MovieLensFormatError(
        f"MovieLens data location {path!r} is neither a directory nor a zip file "
        f"({e}).") from e
  folders: Dict[str, Set[str]] = {}
  for name in names:
    if not name.endswith("/"):  # Directory entries hold no data.
      folder, base = posixpath.split(name)
      folders.setdefault(folder, set()).add(base)
  return folders


def _match_layouts(
    folders: Dict[str, Set[str]]
) -> Tuple[List[Tuple[_Layout, str]], List[Tuple[_Layout, str, str]]]:
  """Finds complete layouts and half layouts (with the missing file) among `folders`.

  Both files must sit in the same folder, as they do in every GroupLens release.
  """
  complete, partial = [], []
  for layout in _LAYOUTS:
    for folder in sorted(folders):
      names = folders[folder]
      has_ratings, has_movies = layout.ratings in names, layout.movies in names
      if has_ratings and has_movies:
        complete.append((layout, folder))
      elif has_ratings:
        partial.append((layout, folder, layout.movies))
      elif has_movies:
        partial.append((layout, folder, layout.ratings))
  return complete, partial


# -------------------------------------------------------------------------------- reading


def read_lines(source: MovieLensSource, file: str) -> Iterator[Tuple[int, bytes]]:
  """Streams the lines of `file`, a directory path or zip member of `source`.

  Args:
    source: The data set.
    file: `source.ratings_file` or `source.movies_file`.

  Yields:
    The 1-based line number and the raw line bytes without "\\n" or "\\r\\n". A final
    newline at end of file does not start another line; an empty line elsewhere is
    yielded as b"" (MovieLens files have none, so parsers report it).
  """
  if source._is_zip:  # pylint: disable=protected-access
    with (tf.io.gfile.GFile(source.location, "rb") as stream,
          zipfile.ZipFile(stream) as archive,
          archive.open(file) as member):
      yield from _split_lines(member)
  else:
    with tf.io.gfile.GFile(file, "rb") as stream:
      yield from _split_lines(stream)


def _split_lines(stream: BinaryIO) -> Iterator[Tuple[int, bytes]]:
  """Splits a byte stream into numbered lines, reading it in fixed-size chunks."""
  # Chunked reads and bytes.split are much faster than readline() per line, and a CRLF
  # file only differs by the "\r" left at the end of each line.
  line_number = 0
  pending = b""
  while True:
    chunk = stream.read(_CHUNK_BYTES)
    if not chunk:
      break
    lines = (pending + chunk).split(b"\n")
    pending = lines.pop()  # Incomplete until the next chunk (or end of file) says so.
    for line in lines:
      line_number += 1
      yield line_number, line[:-1] if line.endswith(b"\r") else line
  if pending:  # Last line without a final newline.
    yield line_number + 1, pending[:-1] if pending.endswith(b"\r") else pending


def _quote(field: bytes) -> str:
  """`field` for an error message: quoted, cut short, undecodable bytes escaped."""
  text = field.decode("utf-8", "backslashreplace")
  if len(text) > _MAX_QUOTED_CHARS:
    text = text[:_MAX_QUOTED_CHARS] + "..."
  return repr(text)


def _id_problem(what: str, field: bytes) -> Optional[str]:
  """Why `field` (already stripped) is not a valid id, or None if it is one."""
  if not field.isdigit():  # ASCII digits only, for bytes.
    return f"{what} {_quote(field)} is not a non-negative integer"
  if len(field) > _MAX_ID_DIGITS:
    return f"{what} {_quote(field)} has more than {_MAX_ID_DIGITS} digits"
  return None


def _read_csv_header(lines: Iterator[Tuple[int, bytes]], expected: Tuple[str, ...],
                     display_path: str) -> None:
  """Consumes the header line of a ml-latest CSV file and checks its column names."""
  first = next(lines, None)
  if first is None:
    raise MovieLensFormatError(
        f"{display_path} is empty; expected the header {','.join(expected)}.")
  header = first[1]
  if header.startswith(_UTF8_BOM):  # Added by some editors; not part of the names.
    header = header[len(_UTF8_BOM):]
  names = tuple(name.strip() for name in header.decode("utf-8", "replace").split(","))
  if names != expected:
    raise MovieLensFormatError(
        f"{display_path}:1: header is {header.decode('utf-8', 'replace')!r}, expected "
        f"{','.join(expected)!r}; is this a MovieLens {ML_LATEST} file?")


# --------------------------------------------------------------------------------- movies


def read_movies(source: MovieLensSource) -> Tuple[Dict[str, Movie], LineErrorLog]:
  """Reads the whole movie catalog of `source`.

  Args:
    source: The data set.

  Returns:
    The movies by id, in file order, and the log of malformed lines, which were skipped:
    wrong field count, non-integer id, genre flags other than 0/1, empty title or
    genre, wrong encoding, or a duplicate id (the later line is the bad one).

  Raises:
    MovieLensFormatError: A ml-latest movies.csv has no or a wrong header.
  """
  parse_line = {ML_100K: _parse_ml100k_movie, ML_1M: _parse_ml1m_movie,
                ML_LATEST: _parse_csv_movie}[source.format]
  display_path = source.display_path(source.movies_file)
  basename = posixpath.basename(source.movies_file)
  lines = read_lines(source, source.movies_file)
  if source.format == ML_LATEST:
    _read_csv_header(lines, _CSV_MOVIES_HEADER, display_path)

  movies: Dict[str, Movie] = {}
  first_line: Dict[str, int] = {}
  # Keeps every error (a catalog has at most ~100k lines): ExampleGen lists each skipped
  # line in its bad-lines report.
  log = LineErrorLog(keep=None)
  for line_number, line in lines:
    if not line:
      reason = "empty line"
    elif source.encoding == "latin-1" and _looks_utf8(line):
      reason = f"looks UTF-8 encoded; {basename} is latin-1 in {source.format}"
    else:
      movie, reason = parse_line(line, basename)
      if movie is not None and movie.movie_id in movies:
        reason = (f"duplicate movie id {movie.movie_id!r} (first on line "
                  f"{first_line[movie.movie_id]})")
      elif movie is not None:
        movies[movie.movie_id] = movie
        first_line[movie.movie_id] = line_number
    if reason:
      log.add(LineError(display_path, line_number, reason))
  return movies, log


def _looks_utf8(line: bytes) -> bool:
  """True if `line` has non-ASCII bytes that form valid UTF-8.

  Real latin-1 MovieLens titles (b"Mis\\xe9rables") are not valid UTF-8, while a file
  re-saved as UTF-8 turns every accented letter into a valid multi-byte sequence.
  """
  if line.isascii():
    return False
  try:
    line.decode("utf-8")
  except UnicodeDecodeError:
    return False
  return True


_MovieOrReason = Tuple[Optional[Movie], str]


def _parse_ml100k_movie(line: bytes, basename: str) -> _MovieOrReason:
  """Parses `movie id | title | release date | video release date | URL | 19 flags`."""
  del basename  # Unused: ml-100k lines need no file name in their messages.
  fields = line.split(b"|")
  expected = 5 + len(ML_100K_GENRES)
  if len(fields) != expected:
    return None, f"expected {expected} '|'-separated fields, got {len(fields)}"
  movie_id = fields[0].strip()
  problem = _id_problem("movie id", movie_id)
  if problem:
    return None, problem
  flags = fields[5:]
  genres = []
  for genre, flag in zip(ML_100K_GENRES, flags):
    if flag == b"1":
      genres.append(genre)
    elif flag != b"0":
      return None, f"genre flag {genre!r} is {_quote(flag)}, expected 0 or 1"
  return _make_movie(movie_id, fields[1].decode("latin-1"),
                     tuple(genres) or (features.NO_GENRES,))


def _parse_ml1m_movie(line: bytes, basename: str) -> _MovieOrReason:
  """Parses `MovieID::Title::Genres` (genres "|"-separated)."""
  del basename  # Unused.
  fields = line.split(b"::")  # Titles may contain ":" but never "::".
  if len(fields) != 3:
    return None, f"expected 3 '::'-separated fields, got {len(fields)}"
  movie_id = fields[0].strip()
  problem = _id_problem("movie id", movie_id)
  if problem:
    return None, problem
  return _make_movie(movie_id, fields[1].decode("latin-1"),
                     _split_genres(fields[2].decode("latin-1")))


def _parse_csv_movie(line: bytes, basename: str) -> _MovieOrReason:
  """Parses `movieId,title,genres`, CSV-quoted, UTF-8."""
  # surrogateescape keeps undecodable bytes identifiable after CSV parsing, so the
  # message can say which field is wrongly encoded.
  text = line.decode("utf-8", "surrogateescape")
  try:
    fields = next(csv.reader([text], strict=True))
  except csv.Error as e:
    return None, f"bad CSV quoting ({e})"
  if len(fields) != 3:
    return None, f"expected 3 comma-separated fields, got {len(fields)}"
  for name, field in zip(("movie id", "title", "genres"), fields):
    if not _is_valid_unicode(field):
      return None, f"{name} is not valid UTF-8 ({basename} is UTF-8)"
  movie_id = fields[0].strip().encode("ascii", "replace")
  problem = _id_problem("movie id", movie_id)
  if problem:
    return None, problem
  return _make_movie(movie_id, fields[1], _split_genres(fields[2]))


def _is_valid_unicode(text: str) -> bool:
  try:
    text.encode("utf-8")
  except UnicodeEncodeError:  # A lone surrogate: an undecodable input byte.
    return False
  return True


def _split_genres(text: str) -> Tuple[str, ...]:
  """Splits a "|"-separated genre field into genre names."""
  # "(no genres listed)" becomes (features.NO_GENRES,) as is: it is the same literal.
  return tuple(text.split("|"))


def _make_movie(movie_id: bytes, title: str, genres: Tuple[str, ...]) -> _MovieOrReason:
  """Builds a Movie from a checked id, the decoded title and the genres, or a reason."""
  if not title.strip():
    return None, "empty title"
  if "" in genres:
    return None, ("empty genres field" if len(genres) == 1 else
                  f"empty genre name in {'|'.join(genres)!r}")
  return Movie(movie_id.decode("ascii"), title, genres), ""


# -------------------------------------------------------------------------------- ratings


@dataclasses.dataclass
class RatingBatch:
  """Consecutive good ratings of the ratings file, and the bad lines met among them."""
  user_ids: List[str]
  movie_ids: List[str]
  ratings: np.ndarray  # float32.
  timestamps: np.ndarray  # int64, seconds since the Unix epoch.
  errors: List[LineError]

  def __len__(self) -> int:
    """Number of good ratings."""
    return len(self.user_ids)


@dataclasses.dataclass(frozen=True)
class _RatingsSyntax:
  separator: bytes
  description: str  # For "expected 4 <description> fields".


_RATINGS_SYNTAX = {
    ML_100K: _RatingsSyntax(b"\t", "tab-separated"),
    ML_1M: _RatingsSyntax(b"::", "'::'-separated"),
    ML_LATEST: _RatingsSyntax(b",", "comma-separated"),  # ratings.csv is never quoted.
}


def iter_rating_batches(source: MovieLensSource, known_movie_ids: Container[str],
                        batch_size: int = 50_000) -> Iterator[RatingBatch]:
  """Streams the ratings of `source` in batches.

  Args:
    source: The data set.
    known_movie_ids: Ids of the catalog (from `read_movies`); a rating of any other
      movie is a bad line.
    batch_size: Most good ratings per batch.

  Yields:
    Batches of at most `batch_size` good ratings, in file order, each with the bad lines
    met since the previous batch. Ids keep their text as written (after stripping
    spaces). The last batch may hold only errors; no batch is empty.

  Raises:
    MovieLensFormatError: A ml-latest ratings.csv has no or a wrong header.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be positive, got {batch_size}.")
  display_path = source.display_path(source.ratings_file)
  lines = read_lines(source, source.ratings_file)
  if source.format == ML_LATEST:
    _read_csv_header(lines, _CSV_RATINGS_HEADER, display_path)
  movies_basename = posixpath.basename(source.movies_file)
  syntax = _RATINGS_SYNTAX[source.format]
  # Decoded id and catalog membership per raw movie id: a catalog has few ids, a ratings
  # file repeats them millions of times.
  movie_cache: Dict[bytes, Tuple[str, bool]] = {}

  batch = _new_rating_columns()
  for line_number, line in lines:
    row_or_reason = _parse_rating(line, syntax, known_movie_ids, movie_cache,
                                  movies_basename)
    if isinstance(row_or_reason, str):
      batch[4].append(LineError(display_path, line_number, row_or_reason))
      continue
    for column, value in zip(batch, row_or_reason):
      column.append(value)
    if len(batch[0]) >= batch_size:
      yield _to_batch(batch)
      batch = _new_rating_columns()
  if batch[0] or batch[4]:
    yield _to_batch(batch)


def _new_rating_columns() -> Tuple[list, list, list, list, list]:
  """Empty user id, movie id, rating, timestamp and error lists."""
  return [], [], [], [], []


def _to_batch(columns: Tuple[list, list, list, list, list]) -> RatingBatch:
  users, movies, ratings, timestamps, errors = columns
  return RatingBatch(user_ids=users, movie_ids=movies,
                     ratings=np.array(ratings, dtype=np.float32),
                     timestamps=np.array(timestamps, dtype=np.int64), errors=errors)


def _parse_rating(line: bytes, syntax: _RatingsSyntax, known_movie_ids: Container[str],
                  movie_cache: Dict[bytes, Tuple[str, bool]],
                  movies_basename: str):
  """Parses one ratings line into (user id, movie id, rating, timestamp), or a reason.

  Runs once per rating (25 million times for ml-25m), hence plain bytes operations and
  no regular expressions.
  """
  if not line:
    return "empty line"
  fields = line.split(syntax.separator)
  if len(fields) != 4:
    return f"expected 4 {syntax.description} fields, got {len(fields)}"
  user_id, movie_id, rating_text, timestamp_text = fields
  user_id = user_id.strip()
  problem = _id_problem("user id", user_id)
  if problem:
    return problem
  movie_id = movie_id.strip()
  cached = movie_cache.get(movie_id)
  if cached is None:
    problem = _id_problem("movie id", movie_id)
    if problem:
      return problem
    decoded = movie_id.decode("ascii")
    cached = movie_cache[movie_id] = (decoded, decoded in known_movie_ids)
  try:
    rating = float(rating_text)
  except ValueError:
    return f"rating {_quote(rating_text)} is not a number"
  if not MIN_RATING <= rating <= MAX_RATING:  # Also rejects nan.
    return f"rating {rating!r} outside {MIN_RATING:g}..{MAX_RATING:g}"
  timestamp_text = timestamp_text.strip()
  if not timestamp_text.isdigit():
    return f"timestamp {_quote(timestamp_text)} is not a non-negative integer"
  timestamp = int(timestamp_text)
  if timestamp > _MAX_TIMESTAMP:
    return f"timestamp {_quote(timestamp_text)} does not fit int64"
  if not cached[1]:
    return f"movie id {cached[0]!r} is not in {movies_basename}"
  return user_id.decode("ascii"), cached[0], rating, timestamp
