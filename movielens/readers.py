"""Reads a detected MovieLens source: the whole catalog, and the ratings in batches.

Malformed lines are skipped and returned as `errors.LineError`s (file, line, reason), for
the caller to apply its tolerance; a file without any data line is an error naming it.
"""
import dataclasses
from typing import Container, Dict, Iterator, List, Tuple

import numpy as np

from movielens import formats
from movielens import sources
from movielens.errors import LineError
from movielens.errors import LineErrorLog
from movielens.errors import MovieLensFormatError


def _lines_after_header(source: sources.MovieLensSource, file: str,
                        header: Tuple[str, ...], separator: bytes
                        ) -> Iterator[Tuple[int, bytes]]:
  """The numbered lines of `file`, its header line (if the layout has one) checked and
  skipped.

  Raises:
    MovieLensFormatError: The file is empty, or its header is not `header`.
  """
  lines = sources.read_lines(source, file)
  if not header:
    yield from lines
    return
  display_path = source.display_path(file)
  first = next(lines, None)
  if first is None:
    raise MovieLensFormatError(
        f"{display_path} is empty; expected the header {','.join(header)}.")
  problem = formats.header_problem(first[1], header, separator)
  if problem:
    raise MovieLensFormatError(
        f"{display_path}:1: {problem}; is this a MovieLens {source.format} file?")
  yield from lines


# --------------------------------------------------------------------------------- movies


def read_movies(source: sources.MovieLensSource
                ) -> Tuple[Dict[str, formats.Movie], LineErrorLog]:
  """Reads the whole movie catalog of `source`.

  Args:
    source: The data set.

  Returns:
    The movies by id, in file order, and the log of malformed lines, which were skipped
    (see `formats.parse_movie`; a duplicate id makes the later line the bad one).

  Raises:
    MovieLensFormatError: The movies file has no or a wrong header (layouts with one).
  """
  layout = source.layout
  display_path = source.display_path(source.movies_file)
  lines = _lines_after_header(source, source.movies_file, layout.movies.header,
                              layout.movies.separator)
  movies: Dict[str, formats.Movie] = {}
  first_line: Dict[str, int] = {}
  # Keeps every error (a catalog has at most ~100k lines): ExampleGen lists each skipped
  # line in its bad-lines report.
  log = LineErrorLog(keep=None)
  for line_number, line in lines:
    movie, reason = formats.parse_movie(line, layout)
    if movie is not None and movie.movie_id in movies:
      reason = (f"duplicate movie id {movie.movie_id!r} (first on line "
                f"{first_line[movie.movie_id]})")
    elif movie is not None:
      movies[movie.movie_id] = movie
      first_line[movie.movie_id] = line_number
    if reason:
      log.add(LineError(display_path, line_number, reason))
  return movies, log


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


def iter_rating_batches(source: sources.MovieLensSource, known_movie_ids: Container[str],
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
    MovieLensFormatError: The ratings file has no data line (once every line was read),
      or has no or a wrong header (layouts with one).
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be positive, got {batch_size}.")
  layout = source.layout
  display_path = source.display_path(source.ratings_file)
  parse = formats.rating_parser(layout, known_movie_ids)
  columns, errors = formats.RatingColumns(), []
  line_number = 0
  for line_number, line in _lines_after_header(source, source.ratings_file,
                                               layout.ratings.header,
                                               layout.ratings.separator):
    reason = parse(line, columns)
    if reason:
      errors.append(LineError(display_path, line_number, reason))
    elif len(columns.user_ids) >= batch_size:
      yield _to_batch(columns, errors)
      columns, errors = formats.RatingColumns(), []
  if len(columns) or errors:
    yield _to_batch(columns, errors)
  if line_number <= (1 if layout.ratings.header else 0):
    raise MovieLensFormatError(
        f"{display_path} has no ratings: the file is empty"
        f"{' but for its header line' if layout.ratings.header else ''}.")


def _to_batch(columns: formats.RatingColumns, errors: List[LineError]) -> RatingBatch:
  return RatingBatch(user_ids=columns.user_ids, movie_ids=columns.movie_ids,
                     ratings=np.array(columns.ratings, dtype=np.float32),
                     timestamps=np.array(columns.timestamps, dtype=np.int64),
                     errors=errors)
