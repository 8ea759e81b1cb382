"""Tests of movielens.sources: layout detection, line streaming, content fingerprint."""
import os
import signal
import zipfile

import pytest

from movielens import errors
from movielens import sources
from tests import movielens_fixtures as fixtures


def _write(path, content: bytes):
  return fixtures.write_file(path, content)


# ------------------------------------------------------------------------------ streaming


def test_read_lines_numbers_lines_and_strips_terminators(tmp_path):
  folder = fixtures.write_ml100k(tmp_path)
  _write(folder / "u.data", b"1\t1\t5\t0\r\n\n2\t1\t4\t1\n3\t1\t3\t2")
  source = sources.detect_source(str(folder))

  lines = list(sources.read_lines(source, source.ratings_file))

  assert lines == [(1, b"1\t1\t5\t0"), (2, b""), (3, b"2\t1\t4\t1"), (4, b"3\t1\t3\t2")]


def test_read_lines_single_final_newline_is_not_a_line(tmp_path):
  zip_path = fixtures.zip_dir(fixtures.write_ml1m(tmp_path), tmp_path / "ml-1m.zip")
  source = sources.detect_source(str(zip_path))

  lines = list(sources.read_lines(source, source.movies_file))

  assert len(lines) == 6
  assert lines[-1] == (6, b"2858::American Beauty (1999)::Comedy|Drama")
  assert lines[2] == (3, b"73::Mis\xe9rables, Les (1995)::Drama|Musical")


def test_read_lines_streams_lines_longer_than_a_chunk(tmp_path, monkeypatch):
  monkeypatch.setattr(sources, "_CHUNK_BYTES", 7)
  folder = fixtures.write_ml100k(tmp_path)
  source = sources.detect_source(str(folder))

  lines = [line for _, line in sources.read_lines(source, source.ratings_file)]

  assert lines == fixtures.ML100K_U_DATA.split(b"\n")[:-1]


# ------------------------------------------------------------------------------ detection


def test_detects_a_data_set_in_a_subdirectory(tmp_path):
  fixtures.write_ml100k(tmp_path / "downloads")

  source = sources.detect_source(str(tmp_path))

  assert source.format == "ml-100k"
  assert source.ratings_file == f"{tmp_path}/downloads/ml-100k/u.data"


def test_detects_a_zip_without_a_top_folder(tmp_path):
  zip_path = tmp_path / "flat.zip"
  with zipfile.ZipFile(zip_path, "w") as archive:
    archive.writestr("ratings.csv", fixtures.ML_LATEST_RATINGS_CSV)
    archive.writestr("movies.csv", fixtures.ML_LATEST_MOVIES_CSV)

  source = sources.detect_source(str(zip_path))

  assert (source.format, source.ratings_file, source.movies_file) == (
      "ml-latest", "ratings.csv", "movies.csv")
  assert source.display_path(source.movies_file) == f"{zip_path}!movies.csv"


def test_display_path(tmp_path):
  folder = fixtures.write_ml1m(tmp_path)
  zip_path = fixtures.zip_dir(folder, tmp_path / "ml-1m.zip")

  from_dir = sources.detect_source(str(folder))
  from_zip = sources.detect_source(str(zip_path))

  assert from_dir.display_path(from_dir.ratings_file) == f"{folder}/ratings.dat"
  assert from_zip.display_path(from_zip.ratings_file) == f"{zip_path}!ml-1m/ratings.dat"


def test_missing_location(tmp_path):
  missing = str(tmp_path / "nowhere")
  with pytest.raises(errors.MovieLensFormatError) as error:
    sources.detect_source(missing)
  assert str(error.value) == (
      f"MovieLens data location {missing!r} does not exist. It should be a directory or "
      "a GroupLens .zip holding one of:\n"
      "  u.data + u.item (ml-100k)\n"
      "  ratings.dat + movies.dat (ml-1m, ml-10m)\n"
      "  ratings.csv + movies.csv (ml-latest-small, ml-latest, ml-20m, ml-25m)")


@pytest.mark.parametrize("container", ["dir", "zip"])
def test_unknown_layout_lists_every_format(tmp_path, container):
  folder = tmp_path / "data"
  _write(folder / "notes.txt", b"hello\n")
  _write(folder / "ratings.json", b"{}\n")
  location = str(folder if container == "dir" else fixtures.zip_dir(folder,
                                                                    tmp_path / "d.zip"))
  with pytest.raises(errors.MovieLensFormatError) as error:
    sources.detect_source(location)
  message = str(error.value)
  assert f"No MovieLens data found in {location!r}" in message
  assert "u.data + u.item (ml-100k)" in message
  assert "ratings.dat + movies.dat (ml-1m, ml-10m)" in message
  assert ("ratings.csv + movies.csv (ml-latest-small, ml-latest, ml-20m, ml-25m)"
          in message)


@pytest.mark.parametrize("present, missing, format_name", [
    ("u.data", "u.item", "ml-100k"),
    ("u.item", "u.data", "ml-100k"),
    ("ratings.dat", "movies.dat", "ml-1m"),
    ("movies.csv", "ratings.csv", "ml-latest"),
])
def test_half_layout_names_the_missing_file(tmp_path, present, missing, format_name):
  _write(tmp_path / "ml" / present, b"1\n")
  with pytest.raises(errors.MovieLensFormatError) as error:
    sources.detect_source(str(tmp_path))
  message = str(error.value)
  assert f"Incomplete {format_name} data" in message
  assert f"found {present} but {missing} is missing" in message


def test_half_layout_in_a_zip(tmp_path):
  zip_path = tmp_path / "ml-100k.zip"
  with zipfile.ZipFile(zip_path, "w") as archive:
    archive.writestr("ml-100k/u.data", fixtures.ML100K_U_DATA)
  with pytest.raises(errors.MovieLensFormatError,
                     match="Incomplete ml-100k data in 'ml-100k': found u.data but u.item "
                     "is missing"):
    sources.detect_source(str(zip_path))


def test_a_complete_layout_wins_over_unrelated_half_layouts(tmp_path):
  folder = fixtures.write_ml100k(tmp_path)
  _write(folder / "ratings.csv", b"userId,movieId,rating,timestamp\n")
  assert sources.detect_source(str(tmp_path)).format == "ml-100k"


def test_several_data_sets_are_ambiguous(tmp_path):
  fixtures.write_ml100k(tmp_path)
  fixtures.write_ml1m(tmp_path)
  with pytest.raises(errors.MovieLensFormatError,
                     match="holds more than one MovieLens data set") as error:
    sources.detect_source(str(tmp_path))
  assert "ml-100k in" in str(error.value) and "ml-1m in" in str(error.value)


def test_a_file_that_is_not_a_zip(tmp_path):
  path = _write(tmp_path / "ratings.zip", b"not a zip")
  with pytest.raises(errors.MovieLensFormatError, match="neither a directory nor a zip"):
    sources.detect_source(str(path))


# ---------------------------------------------------------------------------- fingerprint


def _rewrite_keeping_size_and_mtime(path, old: bytes, new: bytes) -> None:
  """Replaces `old` by `new` (same length) in `path`, as `cp -p` or `rsync -a` would."""
  stat = os.stat(path)
  content = path.read_bytes()
  assert len(old) == len(new) and old in content
  path.write_bytes(content.replace(old, new, 1))
  os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
  assert os.stat(path).st_size == stat.st_size
  assert os.stat(path).st_mtime_ns == stat.st_mtime_ns


@pytest.mark.parametrize("container", ["dir", "zip"])
def test_fingerprint_sees_a_same_size_rewrite_with_the_old_mtime(tmp_path, container):
  folder = fixtures.write_ml1m(tmp_path / "data")
  changed = folder / "ratings.dat"
  if container == "zip":
    changed = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(changed, "w") as archive:  # Stored: the bytes appear as is.
      archive.writestr("ml-1m/ratings.dat", fixtures.ML1M_RATINGS_DAT)
      archive.writestr("ml-1m/movies.dat", fixtures.ML1M_MOVIES_DAT)
  location = str(folder if container == "dir" else changed)
  before = sources.content_fingerprint(location)

  _rewrite_keeping_size_and_mtime(changed, b"1::1::5::", b"1::1::4::")

  assert before is not None
  assert sources.content_fingerprint(location) != before


def test_fingerprint_depends_on_content_only(tmp_path):
  folder = fixtures.write_ml100k(tmp_path / "data")
  before = sources.content_fingerprint(str(folder))
  os.utime(folder / "u.data", (1, 1))  # `touch`: nothing to redo.
  (folder / "README").write_bytes(b"not read by the pipeline\n")
  assert sources.content_fingerprint(str(folder)) == before
  copy = fixtures.write_ml100k(tmp_path / "copy")
  assert sources.content_fingerprint(str(copy)) == before


def test_fingerprint_covers_both_files(tmp_path):
  folder = fixtures.write_ml100k(tmp_path / "data")
  before = sources.content_fingerprint(str(folder))
  _rewrite_keeping_size_and_mtime(folder / "u.item", b"GoldenEye", b"GoldenEyf")
  assert sources.content_fingerprint(str(folder)) != before


@pytest.mark.parametrize("location", ["gs://bucket/ml-1m.zip", "missing"])
def test_no_fingerprint_for_remote_or_missing_data(tmp_path, location):
  assert sources.content_fingerprint(location if "://" in location
                                     else str(tmp_path / location)) is None


def test_no_fingerprint_without_a_known_layout(tmp_path):
  _write(tmp_path / "notes.txt", b"hello\n")
  assert sources.content_fingerprint(str(tmp_path)) is None


# ------------------------------------------------------------------- odd paths: links, FIFOs


@pytest.fixture
def within_20_seconds():
  """Fails the test, instead of hanging the suite, if it runs longer than 20 s."""

  def too_long(signum, frame):
    raise TimeoutError("took longer than 20 s: a hang")

  previous = signal.signal(signal.SIGALRM, too_long)
  signal.alarm(20)
  yield
  signal.alarm(0)
  signal.signal(signal.SIGALRM, previous)


def test_a_link_back_to_the_directory_is_not_a_second_data_set(tmp_path, within_20_seconds):
  fixtures.write_ml100k(tmp_path)
  os.symlink(".", tmp_path / "loop")
  source = sources.detect_source(str(tmp_path))
  assert source.ratings_file == f"{tmp_path}/ml-100k/u.data"


def test_two_links_back_do_not_hang_detection(tmp_path, within_20_seconds):
  fixtures.write_ml1m(tmp_path)
  os.symlink(".", tmp_path / "a")
  os.symlink(".", tmp_path / "b")
  os.symlink("..", tmp_path / "ml-1m" / "up")
  assert sources.detect_source(str(tmp_path)).ratings_file == f"{tmp_path}/ml-1m/ratings.dat"


def test_a_link_above_the_directory_is_not_followed(tmp_path, within_20_seconds):
  fixtures.write_ml1m(tmp_path / "elsewhere")
  data = tmp_path / "data"
  fixtures.write_ml100k(data)
  os.symlink("..", data / "up")
  assert sources.detect_source(str(data)).format == "ml-100k"


def test_a_linked_data_set_is_found(tmp_path, within_20_seconds):
  real = fixtures.write_ml1m(tmp_path / "store")
  (tmp_path / "data").mkdir()
  os.symlink(real, tmp_path / "data" / "current")
  source = sources.detect_source(str(tmp_path / "data"))
  assert source.ratings_file == f"{tmp_path}/data/current/ratings.dat"


def test_a_fifo_is_refused_not_read(tmp_path, within_20_seconds):
  fifo = tmp_path / "ml-1m.zip"
  os.mkfifo(fifo)
  with pytest.raises(errors.MovieLensFormatError,
                     match=f"MovieLens data location '{fifo}' is a FIFO, not a directory "
                     "or a zip file"):
    sources.detect_source(str(fifo))
  assert sources.content_fingerprint(str(fifo)) is None
