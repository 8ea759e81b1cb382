"""Where a MovieLens data set is: layout detection, line streaming and a content fingerprint.

A data set is a directory (searched recursively) or the official .zip file (whose members
sit under a top folder such as `ml-100k/`), holding the two files of one layout of
movielens/formats.py. Files are read through `tf.io.gfile`, so gs:// locations work, and
streamed in fixed-size chunks: the ml-25m ratings.csv is 650 MB.
"""
import dataclasses
import functools
import hashlib
import os
import posixpath
import stat
import zipfile
from typing import BinaryIO, Dict, Iterator, List, Optional, Set, Tuple

import tensorflow as tf

from movielens import formats
from movielens.errors import MovieLensFormatError

# Large enough that per-read overhead (a network call on gs://) is negligible, small
# enough that memory stays flat whatever the file size.
_CHUNK_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class MovieLensSource:
  """Where a MovieLens data set is and how to read it; made by `detect_source`."""
  location: str  # The directory or zip path given.
  format: str  # The name of one of formats.FORMATS.
  ratings_file: str  # Path in the directory, or member name in the zip.
  movies_file: str
  encoding: str  # "latin-1" or "utf-8".

  @property
  def layout(self) -> formats.MovieLensFormat:
    """The format record."""
    return formats.get(self.format)

  @functools.cached_property
  def is_zip(self) -> bool:
    # detect_source only accepts a directory or a zip file, so "not a directory" is a zip.
    return not tf.io.gfile.isdir(self.location)

  def display_path(self, file: str) -> str:
    """`file` (ratings_file or movies_file) as a user would find it."""
    return f"{self.location}!{file}" if self.is_zip else file


# ------------------------------------------------------------------------------ detection


def detect_source(path: str) -> MovieLensSource:
  """Finds which MovieLens layout `path` holds.

  Args:
    path: A directory (searched recursively, so the parent of "ml-100k/" works too) or a
      .zip file as downloaded from GroupLens.

  Returns:
    The source, with the files of the one layout found.

  Raises:
    MovieLensFormatError: `path` is missing or is neither a directory nor a zip (a FIFO,
      a device, ... is refused without being opened: reading one may block); no
      layout is found (the message lists those looked for); only one file of a layout is
      found (the message names the missing one); or several layouts are found.
  """
  if not tf.io.gfile.exists(path):
    raise MovieLensFormatError(
        f"MovieLens data location {path!r} does not exist. It should be a directory or "
        f"a GroupLens .zip holding one of:\n{_describe_layouts()}")
  _refuse_special_file(path)
  if tf.io.gfile.isdir(path):
    folders = _directory_listing(path)
  else:
    folders = _zip_listing(path)

  complete, partial = _match_layouts(folders)
  if len(complete) == 1:
    layout, folder = complete[0]
    return MovieLensSource(location=path, format=layout.name,
                           ratings_file=_join(folder, layout.ratings.name),
                           movies_file=_join(folder, layout.movies.name),
                           encoding=layout.encoding)
  if len(complete) > 1:
    found = "; ".join(f"{layout.name} in {_where(path, folder)}"
                      for layout, folder in complete)
    raise MovieLensFormatError(
        f"{path!r} holds more than one MovieLens data set ({found}); point at one of them.")
  if partial:
    layout, folder, present, missing = partial[0]
    raise MovieLensFormatError(
        f"Incomplete {layout.name} data in {_where(path, folder)}: found {present} but "
        f"{missing} is missing; the {layout.name} format needs {layout.describe()}.")
  raise MovieLensFormatError(
      f"No MovieLens data found in {path!r}. Looked for one of these file pairs (in the "
      f"directory, a subdirectory or the zip):\n{_describe_layouts()}")


def _describe_layouts() -> str:
  """Every known layout with its files, one per line."""
  return "\n".join(f"  {layout.describe()}" for layout in formats.FORMATS)


def _join(folder: str, name: str) -> str:
  # Zip member names always use "/"; gfile paths (local or gs://) do too.
  return posixpath.join(folder, name) if folder else name


def _where(location: str, folder: str) -> str:
  """A found folder for messages; the zip's top level ("") is the zip itself."""
  return repr(folder) if folder else repr(location)


def _refuse_special_file(path: str) -> None:
  """Raises MovieLensFormatError if the local `path` is neither a directory nor a
  regular file: opening a FIFO blocks until something writes to it, a device may never
  end."""
  if "://" in path:
    return
  mode = os.stat(path).st_mode
  if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
    return
  kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
          else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")
  raise MovieLensFormatError(
      f"MovieLens data location {path!r} is {kind}, not a directory or a zip file; it "
      "was not read.")


def _directory_listing(path: str) -> Dict[str, Set[str]]:
  """Maps every folder under `path` (itself included) to the file names in it."""
  if "://" not in path:
    return _local_directory_listing(path)
  return {folder: set(files) for folder, _, files in tf.io.gfile.walk(path)}


def _local_directory_listing(path: str) -> Dict[str, Set[str]]:
  """`_directory_listing` of a local directory, safe from symbolic link cycles.

  Links to directories are followed, so a data set linked into the directory is found,
  but each directory is listed once (by device and inode), and a link to `path` itself
  or to a directory above it is not followed: `loop -> .` or `up -> ..` would otherwise
  list the same files again under ever longer paths (false "more than one data set"
  errors), or walk the whole tree above. Only regular files count as files; a FIFO or
  socket is never opened.
  """
  top = os.path.realpath(path)
  folders: Dict[str, Set[str]] = {}
  listed: Set[Tuple[int, int]] = set()
  pending = [path]
  while pending:
    folder = pending.pop()
    try:
      info = os.stat(folder)
      if (info.st_dev, info.st_ino) in listed:
        continue
      listed.add((info.st_dev, info.st_ino))
      with os.scandir(folder) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    except OSError:  # Unreadable or vanished: nothing to find there, as gfile.walk.
      continue
    folders[folder] = {entry.name for entry in entries if entry.is_file()}
    subfolders = [entry.path for entry in entries if entry.is_dir()
                  and not (entry.is_symlink() and _is_at_or_above(entry.path, top))]
    pending.extend(reversed(subfolders))  # Depth-first, in name order.
  return folders


def _is_at_or_above(link: str, top: str) -> bool:
  """Whether the directory `link` points to is `top` or one of its ancestors."""
  target = os.path.realpath(link)
  return top == target or top.startswith(target.rstrip(os.sep) + os.sep)


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


_Complete = Tuple[formats.MovieLensFormat, str]  # Layout, folder.
_Partial = Tuple[formats.MovieLensFormat, str, str, str]  # Layout, folder, present, missing.


def _match_layouts(folders: Dict[str, Set[str]]) -> Tuple[List[_Complete], List[_Partial]]:
  """Finds complete layouts and half layouts (with the missing file) among `folders`.

  Both files must sit in the same folder, as they do in every GroupLens release.
  """
  complete, partial = [], []
  for layout in formats.FORMATS:
    ratings, movies = layout.ratings.name, layout.movies.name
    for folder in sorted(folders):
      names = folders[folder]
      if ratings in names and movies in names:
        complete.append((layout, folder))
      elif ratings in names:
        partial.append((layout, folder, ratings, movies))
      elif movies in names:
        partial.append((layout, folder, movies, ratings))
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
  if source.is_zip:
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


# ---------------------------------------------------------------------------- fingerprint


def content_fingerprint(location: str) -> Optional[str]:
  """A hash of the contents of the files a local MovieLens data set is read from.

  Names, sizes and modification times are not enough: `cp -p`, `rsync -a` or a
  re-extracted archive rewrite a file with its old size and mtime. So the bytes are
  hashed (SHA-256, streamed in 1 MiB chunks; benchmarks/fingerprint_cost.py measures the
  cost): a zip as a whole, a directory's ratings and movies files (other files there, such
  as ml-25m's genome scores, are not read by the pipeline and not hashed).

  Args:
    location: What `detect_source` accepts.

  Returns:
    The hex digest; None for a remote location (gs://, s3://: the pipeline may be
    compiled offline, so there the cache key is the path itself; use versioned data
    paths on a cluster) and for a local path without one known layout (reading it fails
    with the reason, and a failed run is never cached).
  """
  if "://" in location or not os.path.exists(location):
    return None
  try:
    source = detect_source(location)
  except MovieLensFormatError:
    return None
  digest = hashlib.sha256(source.format.encode() + b"\0")
  if source.is_zip:
    _hash_file(location, os.path.basename(location), digest)
  else:
    for path in (source.ratings_file, source.movies_file):
      _hash_file(path, os.path.relpath(path, location), digest)
  return digest.hexdigest()


def _hash_file(path: str, name: str, digest) -> None:
  """Adds `name`, the size and the bytes of the local file `path` to `digest`."""
  buffer = bytearray(_CHUNK_BYTES)
  view = memoryview(buffer)
  with open(path, "rb", buffering=0) as f:
    digest.update(f"{name}\0{os.fstat(f.fileno()).st_size}\0".encode())
    while True:
      size = f.readinto(buffer)
      if not size:
        break
      digest.update(view[:size])
