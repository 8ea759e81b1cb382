"""Rewrites a synthetic (ml-100k-format) data set in the ml-1m and ml-latest formats.

Real MovieLens cannot be downloaded here; this gives real-format inputs of any size for
`local_runner.py --data_dir`, through each format's own loader path:

  python benchmarks/convert_synthetic.py --num_ratings 1000209 --output_dir /tmp/formats
  python local_runner.py --data_dir /tmp/formats/ml-1m --pipeline_root /tmp/root-1m

Writes <output_dir>/ml-1m/{ratings,movies}.dat (`::`, latin-1), <output_dir>/ml-latest/
{ratings,movies}.csv (UTF-8, header, titles quoted where they hold commas) and
<output_dir>/ml-latest.zip (the official zip layout).
"""
import csv
import os
import tempfile
import zipfile

from absl import app
from absl import flags

from components.movielens_example_gen import formats
from components.movielens_example_gen import synthetic

_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where to write the converted sets.")
_NUM_USERS = flags.DEFINE_integer("num_users", 943, "Synthetic users.")
_NUM_MOVIES = flags.DEFINE_integer("num_movies", 1682, "Synthetic movies.")
_NUM_RATINGS = flags.DEFINE_integer("num_ratings", 100_000, "Synthetic ratings.")


def _read(source_dir: str):
  source = formats.detect_source(source_dir)
  movies, errors = formats.read_movies(source)
  errors.raise_if_over(0, "movies")
  ratings = []
  for batch in formats.iter_rating_batches(source, movies):
    if batch.errors:
      raise ValueError(batch.errors[0])
    ratings.extend(zip(batch.user_ids, batch.movie_ids, batch.ratings.tolist(),
                       batch.timestamps.tolist()))
  return list(movies.values()), ratings


def _write_ml1m(folder: str, movies, ratings) -> None:
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, "movies.dat"), "w", encoding="latin-1") as f:
    f.writelines(f"{m.movie_id}::{m.title}::{'|'.join(m.genres)}\n" for m in movies)
  with open(os.path.join(folder, "ratings.dat"), "w", encoding="latin-1") as f:
    f.writelines(f"{u}::{m}::{int(r)}::{t}\n" for u, m, r, t in ratings)


def _write_ml_latest(folder: str, movies, ratings) -> None:
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, "movies.csv"), "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(["movieId", "title", "genres"])
    writer.writerows([m.movie_id, m.title, "|".join(m.genres)] for m in movies)
  with open(os.path.join(folder, "ratings.csv"), "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(["userId", "movieId", "rating", "timestamp"])
    writer.writerows([u, m, f"{r:.1f}", t] for u, m, r, t in ratings)


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as tmp:
    source = synthetic.generate(tmp, synthetic.SyntheticConfig(
        num_users=_NUM_USERS.value, num_movies=_NUM_MOVIES.value,
        num_ratings=_NUM_RATINGS.value))
    movies, ratings = _read(source)
  out = _OUTPUT_DIR.value
  _write_ml1m(os.path.join(out, "ml-1m"), movies, ratings)
  _write_ml_latest(os.path.join(out, "ml-latest"), movies, ratings)
  with zipfile.ZipFile(os.path.join(out, "ml-latest.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    for name in ("movies.csv", "ratings.csv"):
      z.write(os.path.join(out, "ml-latest", name), f"ml-latest/{name}")
  print(f"{len(ratings)} ratings, {len(movies)} movies written under {out}")


if __name__ == "__main__":
  flags.mark_flag_as_required("output_dir")
  app.run(main)
