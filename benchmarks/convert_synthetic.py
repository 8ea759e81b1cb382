"""Rewrites a synthetic (ml-100k-format) data set in the ml-1m and ml-latest formats.

Real MovieLens cannot be downloaded here; this gives real-format inputs of any size for
`local_runner.py --data_dir`, through each format's own loader path:

  python benchmarks/convert_synthetic.py --synthetic_ratings 1000209 --output_dir /tmp/formats
  python local_runner.py --data_dir /tmp/formats/ml-1m --pipeline_root /tmp/root-1m

Writes <output_dir>/ml-1m/{ratings,movies}.dat (`::`, latin-1), <output_dir>/ml-latest/
{ratings,movies}.csv (UTF-8, header, titles quoted where they hold commas) and
<output_dir>/ml-latest.zip (the official zip layout). The size flags are the local
runner's (--synthetic_users, --synthetic_movies, --synthetic_ratings, --synthetic_seed).
Ratings are converted batch by batch, so memory stays flat at 10M ratings.
"""
import contextlib
import csv
import os
import sys
import tempfile
import zipfile
from typing import List, Sequence, TextIO

from absl import app
from absl import flags

# Run as a script, the repository root is not on sys.path.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position
from contracts import config_flags
from contracts import configs
from movielens import formats
from movielens import readers
from movielens import sources
from movielens import synthetic
# pylint: enable=g-import-not-at-top,wrong-import-position


def _write_movies(out: str, movies: Sequence[formats.Movie]) -> None:
  with open(os.path.join(out, "ml-1m", "movies.dat"), "w", encoding="latin-1") as f:
    f.writelines(f"{m.movie_id}::{m.title}::{'|'.join(m.genres)}\n" for m in movies)
  with open(os.path.join(out, "ml-latest", "movies.csv"), "w", encoding="utf-8",
            newline="") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(formats.ML_LATEST.movies.header)
    writer.writerows([m.movie_id, m.title, "|".join(m.genres)] for m in movies)


def _write_rating_batch(ml1m: TextIO, ml_latest: TextIO,
                        batch: readers.RatingBatch) -> None:
  columns = (batch.user_ids, batch.movie_ids, batch.ratings.tolist(),
             batch.timestamps.tolist())
  ml1m.writelines(f"{u}::{m}::{int(r)}::{t}\n" for u, m, r, t in zip(*columns))
  ml_latest.writelines(f"{u},{m},{r:.1f},{t}\n" for u, m, r, t in zip(*columns))


def convert(source_dir: str, out: str) -> int:
  """Writes the ml-1m and ml-latest versions of the ml-100k-format `source_dir`.

  Returns:
    The number of ratings written.
  """
  source = sources.detect_source(source_dir)
  movies, errors = readers.read_movies(source)
  errors.raise_if_over(0, "movies")
  for folder in ("ml-1m", "ml-latest"):
    os.makedirs(os.path.join(out, folder), exist_ok=True)
  _write_movies(out, list(movies.values()))
  count = 0
  with contextlib.ExitStack() as files:
    ml1m = files.enter_context(open(os.path.join(out, "ml-1m", "ratings.dat"), "w",
                                    encoding="latin-1"))
    ml_latest = files.enter_context(open(os.path.join(out, "ml-latest", "ratings.csv"),
                                         "w", encoding="utf-8"))
    ml_latest.write(",".join(formats.ML_LATEST.ratings.header) + "\n")
    for batch in readers.iter_rating_batches(source, movies, batch_size=1 << 20):
      if batch.errors:
        raise ValueError(batch.errors[0])
      _write_rating_batch(ml1m, ml_latest, batch)
      count += len(batch)
  with zipfile.ZipFile(os.path.join(out, "ml-latest.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    for name in ("movies.csv", "ratings.csv"):
      z.write(os.path.join(out, "ml-latest", name), f"ml-latest/{name}")
  return count


def main(argv: List[str]) -> None:
  del argv
  size = config_flags.config_from_flags(configs.SyntheticDataConfig)
  out = flags.FLAGS.output_dir
  with tempfile.TemporaryDirectory() as tmp:
    count = convert(synthetic.generate(tmp, size), out)
  print(f"{count} ratings, {size.synthetic_movies} movies written under {out}")


if __name__ == "__main__":
  # Flags only when run as a script: other benchmarks import `convert`.
  flags.DEFINE_string("output_dir", None, "Where to write the converted sets.",
                      required=True)
  config_flags.define_config_flags(configs.SyntheticDataConfig)
  app.run(main)
