"""Tiny MovieLens data sets, byte for byte in the formats GroupLens ships.

Each writer creates the folder a GroupLens zip unpacks to (`ml-100k/`, `ml-1m/`,
`ml-latest-small/`) under a parent directory, with the file contents below written as
literal bytes, so the parsers are checked against the real syntax (tabs, "::", 19 genre
flags, CSV quoting, latin-1) rather than against a serializer of this module's own.
The expected parse of each set is exported as plain tuples for any test to assert on.

Every set has the same shape: 6 movies, 16 ratings from 4 users.
"""
import os
import pathlib
import zipfile
from typing import Tuple, Union

PathLike = Union[str, os.PathLike]

# (movie id, title, genres) in file order.
MovieRow = Tuple[str, str, Tuple[str, ...]]
# (user id, movie id, rating, timestamp) in file order.
RatingRow = Tuple[str, str, float, int]

NUM_USERS = 4

# ------------------------------------------------------------------------------- ml-100k

_ML100K_URL = b"http://us.imdb.com/M/title-exact?"

ML100K_U_ITEM = (
    b"1|Toy Story (1995)|01-Jan-1995||" + _ML100K_URL +
    b"Toy%20Story%20(1995)|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    b"2|GoldenEye (1995)|01-Jan-1995||" + _ML100K_URL +
    b"GoldenEye%20(1995)|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n"
    # latin-1 e-acute, as in the real u.item.
    b"10|Mis\xe9rables, Les (1995)|01-Jan-1995||" + _ML100K_URL +
    b"Miserables%20(1995)|0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|0|0\n"
    b"11|Cit\xe9 des enfants perdus, La (1995)|01-Jan-1995||" + _ML100K_URL +
    b"Cite%20des%20(1995)|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0|0\n"
    # No genre flag set.
    b"12|Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)|01-Jan-1995||" +
    _ML100K_URL + b"Yao%20a%20yao%20(1995)|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    # The real file's movie 267: title "unknown", empty dates and URL, "unknown" genre.
    b"267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n")

ML100K_U_DATA = (
    b"196\t1\t3\t881250949\n"
    b"196\t2\t4\t881250950\n"
    b"196\t10\t5\t881250951\n"
    b"196\t267\t1\t881250952\n"
    b"22\t1\t5\t878887116\n"
    b"22\t11\t2\t878887117\n"
    b"22\t12\t4\t878887118\n"
    b"22\t2\t3\t878887119\n"
    b"244\t10\t4\t880606923\n"
    b"244\t11\t5\t880606924\n"
    b"244\t1\t2\t880606925\n"
    b"244\t12\t1\t880606926\n"
    b"166\t2\t5\t886397596\n"
    b"166\t267\t3\t886397597\n"
    b"166\t10\t4\t886397598\n"
    b"166\t1\t4\t886397599\n")

ML100K_MOVIES: Tuple[MovieRow, ...] = (
    ("1", "Toy Story (1995)", ("Animation", "Children's", "Comedy")),
    ("2", "GoldenEye (1995)", ("Action", "Adventure", "Thriller")),
    ("10", "Misérables, Les (1995)", ("Drama", "Musical")),
    ("11", "Cité des enfants perdus, La (1995)", ("Adventure", "Sci-Fi")),
    ("12", "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)",
     ("(no genres listed)",)),
    ("267", "unknown", ("unknown",)),
)

ML100K_RATINGS: Tuple[RatingRow, ...] = (
    ("196", "1", 3.0, 881250949),
    ("196", "2", 4.0, 881250950),
    ("196", "10", 5.0, 881250951),
    ("196", "267", 1.0, 881250952),
    ("22", "1", 5.0, 878887116),
    ("22", "11", 2.0, 878887117),
    ("22", "12", 4.0, 878887118),
    ("22", "2", 3.0, 878887119),
    ("244", "10", 4.0, 880606923),
    ("244", "11", 5.0, 880606924),
    ("244", "1", 2.0, 880606925),
    ("244", "12", 1.0, 880606926),
    ("166", "2", 5.0, 886397596),
    ("166", "267", 3.0, 886397597),
    ("166", "10", 4.0, 886397598),
    ("166", "1", 4.0, 886397599),
)

# --------------------------------------------------------------------------------- ml-1m

ML1M_MOVIES_DAT = (
    b"1::Toy Story (1995)::Animation|Children's|Comedy\n"
    # Titles contain ":" (never "::").
    b"260::Star Wars: Episode IV - A New Hope (1977)::Action|Adventure|Fantasy|Sci-Fi\n"
    b"73::Mis\xe9rables, Les (1995)::Drama|Musical\n"
    b"29::Cit\xe9 des enfants perdus, La (1995)::Adventure|Sci-Fi\n"
    b"1196::Star Wars: Episode V - The Empire Strikes Back (1980)::"
    b"Action|Adventure|Drama|Sci-Fi|War\n"
    b"2858::American Beauty (1999)::Comedy|Drama\n")

ML1M_RATINGS_DAT = (
    b"1::1::5::978300760\n"
    b"1::260::3::978302109\n"
    b"1::73::3::978301968\n"
    b"1::2858::4::978300275\n"
    b"2::1196::5::978298709\n"
    b"2::29::4::978299941\n"
    b"2::1::3::978299026\n"
    b"2::260::5::978300102\n"
    b"3::2858::3::978297068\n"
    b"3::73::2::978297039\n"
    b"3::1196::4::978297018\n"
    b"3::29::1::978297039\n"
    b"10::1::5::978225952\n"
    b"10::260::4::978226474\n"
    b"10::2858::5::978224375\n"
    b"10::1196::4::978226474\n")

ML1M_MOVIES: Tuple[MovieRow, ...] = (
    ("1", "Toy Story (1995)", ("Animation", "Children's", "Comedy")),
    ("260", "Star Wars: Episode IV - A New Hope (1977)",
     ("Action", "Adventure", "Fantasy", "Sci-Fi")),
    ("73", "Misérables, Les (1995)", ("Drama", "Musical")),
    ("29", "Cité des enfants perdus, La (1995)", ("Adventure", "Sci-Fi")),
    ("1196", "Star Wars: Episode V - The Empire Strikes Back (1980)",
     ("Action", "Adventure", "Drama", "Sci-Fi", "War")),
    ("2858", "American Beauty (1999)", ("Comedy", "Drama")),
)

ML1M_RATINGS: Tuple[RatingRow, ...] = (
    ("1", "1", 5.0, 978300760),
    ("1", "260", 3.0, 978302109),
    ("1", "73", 3.0, 978301968),
    ("1", "2858", 4.0, 978300275),
    ("2", "1196", 5.0, 978298709),
    ("2", "29", 4.0, 978299941),
    ("2", "1", 3.0, 978299026),
    ("2", "260", 5.0, 978300102),
    ("3", "2858", 3.0, 978297068),
    ("3", "73", 2.0, 978297039),
    ("3", "1196", 4.0, 978297018),
    ("3", "29", 1.0, 978297039),
    ("10", "1", 5.0, 978225952),
    ("10", "260", 4.0, 978226474),
    ("10", "2858", 5.0, 978224375),
    ("10", "1196", 4.0, 978226474),
)

# ----------------------------------------------------------------------------- ml-latest

ML_LATEST_MOVIES_CSV = (
    b"movieId,title,genres\n"
    b"1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    # Quoted because of the comma; UTF-8 e-acute.
    b"73,\"Mis\xc3\xa9rables, Les (1995)\",Drama|War\n"
    # Quoted with escaped quotes and a comma.
    b"2105,\"Tron: \"\"The Original\"\", Director's Cut (1982)\",Action|Adventure|Sci-Fi\n"
    b"293,L\xc3\xa9on: The Professional (a.k.a. The Professional) (L\xc3\xa9on) (1994),"
    b"Action|Crime|Drama|Thriller\n"
    b"4973,\"Amelie (Fabuleux destin d'Am\xc3\xa9lie Poulain, Le) (2001)\",Comedy|Romance\n"
    b"114335,La cravate (1957),(no genres listed)\n")

ML_LATEST_RATINGS_CSV = (
    b"userId,movieId,rating,timestamp\n"
    b"1,1,4.0,964982703\n"
    b"1,73,0.5,964981247\n"
    b"1,2105,3.5,964982224\n"
    b"1,114335,5.0,964983815\n"
    b"2,293,4.5,1445714835\n"
    b"2,4973,3.0,1445714952\n"
    b"2,1,2.5,1445715054\n"
    b"2,73,1.0,1445714885\n"
    b"3,2105,0.5,1306463578\n"
    b"3,293,5.0,1306464275\n"
    b"3,114335,2.0,1306463619\n"
    b"3,4973,1.5,1306464036\n"
    b"610,1,5.0,1479542900\n"
    b"610,73,4.0,1493848402\n"
    b"610,293,3.5,1493850091\n"
    b"610,4973,4.5,1493845360\n")

ML_LATEST_MOVIES: Tuple[MovieRow, ...] = (
    ("1", "Toy Story (1995)", ("Adventure", "Animation", "Children", "Comedy", "Fantasy")),
    ("73", "Misérables, Les (1995)", ("Drama", "War")),
    ("2105", "Tron: \"The Original\", Director's Cut (1982)",
     ("Action", "Adventure", "Sci-Fi")),
    ("293", "Léon: The Professional (a.k.a. The Professional) (Léon) (1994)",
     ("Action", "Crime", "Drama", "Thriller")),
    ("4973", "Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)",
     ("Comedy", "Romance")),
    ("114335", "La cravate (1957)", ("(no genres listed)",)),
)

ML_LATEST_RATINGS: Tuple[RatingRow, ...] = (
    ("1", "1", 4.0, 964982703),
    ("1", "73", 0.5, 964981247),
    ("1", "2105", 3.5, 964982224),
    ("1", "114335", 5.0, 964983815),
    ("2", "293", 4.5, 1445714835),
    ("2", "4973", 3.0, 1445714952),
    ("2", "1", 2.5, 1445715054),
    ("2", "73", 1.0, 1445714885),
    ("3", "2105", 0.5, 1306463578),
    ("3", "293", 5.0, 1306464275),
    ("3", "114335", 2.0, 1306463619),
    ("3", "4973", 1.5, 1306464036),
    ("610", "1", 5.0, 1479542900),
    ("610", "73", 4.0, 1493848402),
    ("610", "293", 3.5, 1493850091),
    ("610", "4973", 4.5, 1493845360),
)

# ------------------------------------------------------------------------------- writers


def write_file(path: PathLike, content: bytes, line_ending: bytes = b"\n",
               final_newline: bool = True) -> pathlib.Path:
  """Writes `content` (with "\\n" line ends) to `path`, creating parent folders.

  Args:
    path: File to write.
    content: The bytes, lines ending in b"\\n".
    line_ending: Replaces every b"\\n", e.g. b"\\r\\n" for a file saved on Windows.
    final_newline: False drops the newline after the last line.

  Returns:
    `path` as a pathlib.Path.
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  if not final_newline and content.endswith(b"\n"):
    content = content[:-1]
  path.write_bytes(content.replace(b"\n", line_ending))
  return path


def write_ml100k(parent: PathLike, **write_options) -> pathlib.Path:
  """Writes `parent/ml-100k/` (u.data, u.item, and a README as in the real release).

  Args:
    parent: Folder to create ml-100k/ in.
    **write_options: `line_ending` and `final_newline`, as for `write_file`.

  Returns:
    The ml-100k folder.
  """
  folder = pathlib.Path(parent) / "ml-100k"
  write_file(folder / "u.data", ML100K_U_DATA, **write_options)
  write_file(folder / "u.item", ML100K_U_ITEM, **write_options)
  write_file(folder / "README", b"SUMMARY & USAGE LICENSE\n")
  return folder


def write_ml1m(parent: PathLike, **write_options) -> pathlib.Path:
  """Writes `parent/ml-1m/` (ratings.dat, movies.dat, users.dat); returns the folder."""
  folder = pathlib.Path(parent) / "ml-1m"
  write_file(folder / "ratings.dat", ML1M_RATINGS_DAT, **write_options)
  write_file(folder / "movies.dat", ML1M_MOVIES_DAT, **write_options)
  write_file(folder / "users.dat", b"1::F::1::10::48067\n")
  return folder


def write_ml_latest(parent: PathLike, **write_options) -> pathlib.Path:
  """Writes `parent/ml-latest-small/` (ratings.csv, movies.csv, links.csv)."""
  folder = pathlib.Path(parent) / "ml-latest-small"
  write_file(folder / "ratings.csv", ML_LATEST_RATINGS_CSV, **write_options)
  write_file(folder / "movies.csv", ML_LATEST_MOVIES_CSV, **write_options)
  write_file(folder / "links.csv", b"movieId,imdbId,tmdbId\n1,0114709,862\n")
  return folder


def zip_dir(folder: PathLike, zip_path: PathLike) -> pathlib.Path:
  """Zips `folder` like a GroupLens release: members under "<folder name>/".

  Args:
    folder: E.g. the ml-100k folder returned by `write_ml100k`.
    zip_path: The zip to write.

  Returns:
    `zip_path` as a pathlib.Path.
  """
  folder = pathlib.Path(folder)
  zip_path = pathlib.Path(zip_path)
  with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
    archive.writestr(folder.name + "/", b"")  # Real releases have directory entries.
    for file in sorted(folder.rglob("*")):
      if file.is_file():
        archive.write(file, arcname=f"{folder.name}/{file.relative_to(folder).as_posix()}")
  return zip_path
