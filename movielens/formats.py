"""The MovieLens file layouts, one declarative record each, and the row parsers they drive.

A `MovieLensFormat` says everything this package knows about one GroupLens layout: the data
sets shipped in it, the encoding, and for each of its two files the name, the separator,
the header line (if any), the CSV quoting and which column holds what. The parsers below
read rows by those declared columns into named fields; nothing elsewhere depends on a
particular format. Supporting a new GroupLens layout is one record in `FORMATS` plus a
fixture test (tests/movielens_fixtures.py, tests/test_movielens_formats.py).

Parsers take raw line bytes and give either the parsed row or the reason the line is
malformed; they do no I/O (movielens/sources.py finds and streams the files,
movielens/readers.py puts the two together).
"""
import csv
import dataclasses
from typing import Callable, Container, Dict, List, Optional, Sequence, Tuple, Union

from contracts import features

# ml-100k's u.item genre flags, in file order (also the order of a movie's genres). The
# synthetic generator writes the same flags.
ML_100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy",
                  "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror",
                  "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")

# Every GroupLens data set rates in this range (ml-100k and ml-1m in whole stars).
MIN_RATING = 0.5
MAX_RATING = 5.0

# Ids must fit int64: downstream code (splits, TF) converts them to integers.
_MAX_ID_DIGITS = 18
# Timestamps are Unix seconds. Any rating made after 1972 but written in milliseconds
# reads as seconds past the year 3000, so such a line is bad (its reason says
# "milliseconds?"), never a time taken a thousandfold too late. This bound also keeps
# every timestamp within int64.
_MAX_TIMESTAMP = 32_503_680_000  # 3000-01-01T00:00:00Z.
# Field text quoted in an error message is cut here so one bad line cannot flood a log.
_MAX_QUOTED_CHARS = 40

# Names of the columns a layout declares.
USER_ID = "user_id"
MOVIE_ID = "movie_id"
RATING = "rating"
TIMESTAMP = "timestamp"
TITLE = "title"
GENRES = "genres"


# ------------------------------------------------------------------------------ records


@dataclasses.dataclass(frozen=True)
class RatingsFile:
  """The ratings file of a layout: one rating a line."""
  name: str  # e.g. "u.data".
  separator: bytes  # Ratings files are never quoted.
  # Where each field is: the column names in file order.
  columns: Tuple[str, ...] = (USER_ID, MOVIE_ID, RATING, TIMESTAMP)
  header: Tuple[str, ...] = ()  # Names on the first line; () when there is no header.


@dataclasses.dataclass(frozen=True)
class GenreFlags:
  """Genres as 0/1 columns, one per name in `names`, from column `first_column` on."""
  names: Tuple[str, ...]
  first_column: int


@dataclasses.dataclass(frozen=True)
class GenreList:
  """Genres as one column of names joined by `separator`."""
  column: int
  separator: str = "|"


@dataclasses.dataclass(frozen=True)
class MoviesFile:
  """The catalog file of a layout: one movie a line."""
  name: str  # e.g. "u.item".
  separator: bytes
  num_columns: int
  genres: Union[GenreFlags, GenreList]
  id_column: int = 0
  title_column: int = 1
  header: Tuple[str, ...] = ()  # Names on the first line; () when there is no header.
  quoted: bool = False  # CSV quoting (titles with the separator are quoted).


@dataclasses.dataclass(frozen=True)
class MovieLensFormat:
  """One GroupLens file layout."""
  name: str  # As messages and the ExampleGen log name it, e.g. "ml-1m".
  covers: Tuple[str, ...]  # Data sets released in this layout, for messages.
  encoding: str  # Of the text fields (ids, ratings and timestamps are ASCII).
  ratings: RatingsFile
  movies: MoviesFile

  def describe(self) -> str:
    return f"{self.ratings.name} + {self.movies.name} ({', '.join(self.covers)})"


ML_100K = MovieLensFormat(
    name="ml-100k", covers=("ml-100k",), encoding="latin-1",
    ratings=RatingsFile("u.data", b"\t"),
    # movie id | title | release date | video release date | IMDb URL | 19 genre flags.
    movies=MoviesFile("u.item", b"|", num_columns=5 + len(ML_100K_GENRES),
                      genres=GenreFlags(ML_100K_GENRES, first_column=5)))

ML_1M = MovieLensFormat(
    name="ml-1m", covers=("ml-1m", "ml-10m"), encoding="latin-1",
    ratings=RatingsFile("ratings.dat", b"::"),
    # Titles may contain ":" but never "::".
    movies=MoviesFile("movies.dat", b"::", num_columns=3, genres=GenreList(column=2)))

ML_LATEST = MovieLensFormat(
    name="ml-latest", covers=("ml-latest-small", "ml-latest", "ml-20m", "ml-25m"),
    encoding="utf-8",
    ratings=RatingsFile("ratings.csv", b",",
                        header=("userId", "movieId", "rating", "timestamp")),
    movies=MoviesFile("movies.csv", b",", num_columns=3, genres=GenreList(column=2),
                      header=("movieId", "title", "genres"), quoted=True))

# Every known layout, in the order messages list them.
FORMATS: Tuple[MovieLensFormat, ...] = (ML_100K, ML_1M, ML_LATEST)


def get(name: str) -> MovieLensFormat:
  """The layout called `name` (one of FORMATS' names)."""
  for layout in FORMATS:
    if layout.name == name:
      return layout
  raise KeyError(f"Unknown MovieLens format {name!r}; known: "
                 f"{[layout.name for layout in FORMATS]}.")


# ------------------------------------------------------------------------------ helpers


def describe_separator(separator: bytes) -> str:
  """For messages: "tab-separated", "comma-separated", "'::'-separated"."""
  named = {b"\t": "tab", b",": "comma"}.get(separator)
  return f"{named}-separated" if named else f"'{separator.decode()}'-separated"


def quote(field: bytes) -> str:
  """`field` for an error message: quoted, cut short, undecodable bytes escaped."""
  text = field.decode("utf-8", "backslashreplace")
  if len(text) > _MAX_QUOTED_CHARS:
    text = text[:_MAX_QUOTED_CHARS] + "..."
  return repr(text)


def _id_problem(what: str, field: bytes) -> Optional[str]:
  """Why `field` (already stripped) is not a valid id, or None if it is one."""
  if not field.isdigit():  # ASCII digits only, for bytes.
    return f"{what} {quote(field)} is not a non-negative integer"
  if len(field) > _MAX_ID_DIGITS:
    return f"{what} {quote(field)} has more than {_MAX_ID_DIGITS} digits"
  return None


def header_problem(line: bytes, expected: Sequence[str], separator: bytes) -> Optional[str]:
  """Why the first line `line` is not the header `expected`, or None if it is."""
  if line.startswith(b"\xef\xbb\xbf"):  # A UTF-8 BOM, added by some editors.
    line = line[3:]
  text = line.decode("utf-8", "replace")
  names = tuple(name.strip() for name in text.split(separator.decode()))
  if names == tuple(expected):
    return None
  return f"header is {text!r}, expected {separator.decode().join(expected)!r}"


# ------------------------------------------------------------------------------- movies


@dataclasses.dataclass(frozen=True)
class Movie:
  """One catalog entry."""
  movie_id: str  # Decimal string, e.g. "1".
  title: str
  genres: Tuple[str, ...]  # Never empty: features.NO_GENRES when the movie has none.


MovieOrReason = Tuple[Optional[Movie], str]


def parse_movie(line: bytes, layout: MovieLensFormat) -> MovieOrReason:
  """Parses one line of `layout`'s movies file.

  Args:
    line: The raw line, without its line terminator.
    layout: The format of the file.

  Returns:
    (the movie, "") or (None, why the line is malformed): empty line, wrong field count,
    bad CSV quoting, a field over the CSV reader's size limit, wrong encoding,
    non-integer id, genre flag other than 0/1, empty title or genre. Duplicate ids are
    the reader's business.
  """
  if not line:
    return None, "empty line"
  if layout.encoding != "utf-8" and _looks_utf8(line):
    return None, (f"looks UTF-8 encoded; {layout.movies.name} is {layout.encoding} in "
                  f"{layout.name}")
  fields, reason = _movie_fields(line, layout)
  if reason:
    return None, reason
  file = layout.movies
  movie_id = fields[file.id_column].strip().encode("utf-8", "surrogateescape")
  reason = _id_problem("movie id", movie_id)
  if reason:
    return None, reason
  genres, reason = _genres(fields, file.genres)
  if reason:
    return None, reason
  return _make_movie(movie_id.decode("ascii"), fields[file.title_column], genres)


def _movie_fields(line: bytes, layout: MovieLensFormat) -> Tuple[List[str], str]:
  """The decoded fields of a movies line, or a reason."""
  file = layout.movies
  separator = describe_separator(file.separator)
  # surrogateescape keeps undecodable bytes identifiable after splitting, so the message
  # can say which field is wrongly encoded.
  if file.quoted:
    try:
      fields = next(csv.reader([line.decode(layout.encoding, "surrogateescape")],
                               delimiter=file.separator.decode(), strict=True))
    except csv.Error as e:
      # The csv module raises the same error class for a field over its size limit
      # (csv.field_size_limit()) and for bad quoting; only its message tells them apart.
      if str(e).startswith("field larger than field limit"):
        return [], (f"a field is longer than {csv.field_size_limit():,} characters, the "
                    "CSV reader's limit (is the file a movies.csv?)")
      return [], f"bad CSV quoting ({e})"
  else:
    fields = [field.decode(layout.encoding, "surrogateescape")
              for field in line.split(file.separator)]
  if len(fields) != file.num_columns:
    return [], f"expected {file.num_columns} {separator} fields, got {len(fields)}"
  named = ((file.id_column, "movie id"), (file.title_column, "title"))
  if isinstance(file.genres, GenreList):
    named += ((file.genres.column, "genres"),)
  for column, name in named:
    if not _is_valid_unicode(fields[column]):
      encoding = layout.encoding.upper()
      return [], f"{name} is not valid {encoding} ({file.name} is {encoding})"
  return fields, ""


def _genres(fields: List[str],
            genres: Union[GenreFlags, GenreList]) -> Tuple[Tuple[str, ...], str]:
  """A movie's genres, or a reason."""
  if isinstance(genres, GenreList):
    # "(no genres listed)" becomes (features.NO_GENRES,) as is: it is the same literal.
    return tuple(fields[genres.column].split(genres.separator)), ""
  found = []
  flags = fields[genres.first_column:genres.first_column + len(genres.names)]
  for genre, flag in zip(genres.names, flags):
    if flag == "1":
      found.append(genre)
    elif flag != "0":
      return (), f"genre flag {genre!r} is {quote(flag.encode())}, expected 0 or 1"
  return tuple(found) or (features.NO_GENRES,), ""


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


def _is_valid_unicode(text: str) -> bool:
  try:
    text.encode("utf-8")
  except UnicodeEncodeError:  # A lone surrogate: an undecodable input byte.
    return False
  return True


def _make_movie(movie_id: str, title: str, genres: Tuple[str, ...]) -> MovieOrReason:
  """Builds a Movie from a checked id, the decoded title and the genres, or a reason."""
  if not title.strip():
    return None, "empty title"
  if "" in genres:
    return None, ("empty genres field" if len(genres) == 1 else
                  f"empty genre name in {'|'.join(genres)!r}")
  return Movie(movie_id, title, genres), ""


# ------------------------------------------------------------------------------ ratings


class RatingColumns:
  """Good ratings as parallel columns, appended to by a rating parser."""

  def __init__(self):
    self.user_ids: List[str] = []
    self.movie_ids: List[str] = []
    self.ratings: List[float] = []
    self.timestamps: List[int] = []

  def __len__(self) -> int:
    return len(self.user_ids)


# Appends the rating on `line` to the columns and returns None, or returns the reason the
# line is malformed.
RatingParser = Callable[[bytes, RatingColumns], Optional[str]]


def rating_parser(layout: MovieLensFormat, known_movie_ids: Container[str]) -> RatingParser:
  """A parser of `layout`'s ratings lines that accepts only movies of the catalog.

  Args:
    layout: The format of the ratings file.
    known_movie_ids: Ids of the catalog; a rating of any other movie is malformed.

  Returns:
    The parser. It runs once per rating (25 million times for ml-25m), hence a closure
    over the layout's column positions, plain bytes operations and no regular
    expressions. Ids keep their text as written (after stripping spaces).
  """
  file = layout.ratings
  separator, num_columns = file.separator, len(file.columns)
  wrong_count = f"expected {num_columns} {describe_separator(separator)} fields, got "
  user, movie, rating_at, time_at = (file.columns.index(name)
                                     for name in (USER_ID, MOVIE_ID, RATING, TIMESTAMP))
  not_in_catalog = f" is not in {layout.movies.name}"
  # Decoded id and catalog membership per raw movie id: a catalog has few ids, a ratings
  # file repeats them millions of times.
  movie_cache: Dict[bytes, Tuple[str, bool]] = {}

  def parse(line: bytes, columns: RatingColumns) -> Optional[str]:
    if not line:
      return "empty line"
    fields = line.split(separator)
    if len(fields) != num_columns:
      return wrong_count + str(len(fields))
    user_id = fields[user].strip()
    problem = _id_problem("user id", user_id)
    if problem:
      return problem
    movie_id = fields[movie].strip()
    cached = movie_cache.get(movie_id)
    if cached is None:
      problem = _id_problem("movie id", movie_id)
      if problem:
        return problem
      decoded = movie_id.decode("ascii")
      cached = movie_cache[movie_id] = (decoded, decoded in known_movie_ids)
    rating_text = fields[rating_at]
    try:
      rating = float(rating_text)
    except ValueError:
      return f"rating {quote(rating_text)} is not a number"
    if not MIN_RATING <= rating <= MAX_RATING:  # Also rejects nan.
      return f"rating {rating!r} outside {MIN_RATING:g}..{MAX_RATING:g}"
    timestamp_text = fields[time_at].strip()
    if not timestamp_text.isdigit():
      return f"timestamp {quote(timestamp_text)} is not a non-negative integer"
    timestamp = int(timestamp_text)
    if timestamp >= _MAX_TIMESTAMP:
      return (f"timestamp {quote(timestamp_text)} is after the year 3000: milliseconds? "
              "MovieLens timestamps are Unix seconds")
    if not cached[1]:
      return f"movie id {cached[0]!r}{not_in_catalog}"
    columns.user_ids.append(user_id.decode("ascii"))
    columns.movie_ids.append(cached[0])
    columns.ratings.append(rating)
    columns.timestamps.append(timestamp)
    return None

  return parse
