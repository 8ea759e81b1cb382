"""The parts of benchmarks/scale.py that run no pipeline: sizes, data and growth exponents.

  * `parse_size` reads a number of ratings such as "20k", "100k" or "1m".
  * `catalogue_size` gives the users and movies of a data set of that many ratings, by the
    rule of the GroupLens data sets (see `GROUPLENS_SIZES`).
  * `write_ml_latest` writes synthetic data of that size in the ml-latest CSV layout
    (ratings.csv and movies.csv, as GroupLens writes them), a group of users at a time, so
    that memory stays flat however many ratings are written.
  * `growth_exponent` is the k of cost ~ ratings**k between two sizes.

No absl flags here, so that tests (and other scripts) can import it.
"""
import csv
import dataclasses
import math
import os
import re
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from contracts import configs
from contracts import features
from movielens import formats
from movielens import synthetic

# (ratings, users, movies) of the GroupLens data sets, at their nominal sizes (ml-1m has
# 1,000,209 ratings, ml-10m 10,000,054, ml-25m 25,000,095).
GROUPLENS_SIZES: Tuple[Tuple[int, int, int], ...] = (
    (100_000, 943, 1682),  # ml-100k
    (1_000_000, 6040, 3706),  # ml-1m
    (10_000_000, 69878, 10677),  # ml-10m
    (25_000_000, 162541, 59047),  # ml-25m
)
_SUFFIXES = {"": 1, "k": 1_000, "m": 1_000_000}
_SIZE_PATTERN = re.compile(r"(\d+(?:\.\d+)?)([km]?)")
# Ratings generated and written per group of users: enough to amortize numpy's per-call
# cost, few enough that a group's arrays take tens of MiB.
_GROUP_RATINGS = 1 << 18
# ml-latest's genre names where the generator's (ml-100k's) differ.
_ML_LATEST_GENRES = {"Children's": "Children", "unknown": features.NO_GENRES}


# ------------------------------------------------------------------------------ sizes


def parse_size(text: str) -> int:
  """The number of ratings `text` names: digits with an optional k (thousand) or m
  (million) suffix, any case; "100k" is 100,000, "1.5m" 1,500,000.

  Raises:
    ValueError: Not such a number, or not a positive whole number of ratings.
  """
  match = _SIZE_PATTERN.fullmatch(text.strip().lower())
  if not match:
    raise ValueError(f"Bad size {text!r}: expected a number of ratings with an optional "
                     "k (thousand) or m (million) suffix, e.g. 20k, 100k, 1m, 250000.")
  value = float(match.group(1)) * _SUFFIXES[match.group(2)]
  if value < 1 or value != int(value):
    raise ValueError(f"Bad size {text!r}: it must be a positive whole number of ratings.")
  return int(value)


def parse_sizes(texts: Sequence[str]) -> List[int]:
  """`parse_size` of each, in increasing order; a size given twice is an error."""
  sizes = [parse_size(text) for text in texts]
  if not sizes:
    raise ValueError("No sizes given.")
  if len(set(sizes)) != len(sizes):
    raise ValueError(f"A size is given twice in {list(texts)}.")
  return sorted(sizes)


def size_label(num_ratings: int) -> str:
  """The short name of a size: 100000 -> "100k", 1000000 -> "1m", 12345 -> "12345"."""
  for suffix, unit in (("m", 1_000_000), ("k", 1_000)):
    if num_ratings % unit == 0:
      return f"{num_ratings // unit}{suffix}"
  return str(num_ratings)


def catalogue_size(num_ratings: int, seed: int = 42,
                   shape: synthetic.Shape = synthetic.Shape()
                   ) -> configs.SyntheticDataConfig:
  """The synthetic data set of `num_ratings` ratings: its users, movies and seed.

  Users and movies follow the GroupLens data sets of GROUPLENS_SIZES: between two
  neighbours, the power law through both (a straight line in log-log), so the sizes
  100k, 1m, 10m and 25m get ml-100k's, ml-1m's, ml-10m's and ml-25m's counts. Outside
  that range, the power law of ml-100k to ml-25m as a whole, anchored at the nearer end:
  it grows both less than proportionally, where single segments of the real data do not
  (ml-25m's catalogue holds many more rarely rated movies than ml-10m's). For tiny
  sizes, users are capped at num_ratings / shape.min_ratings_per_user, so that each can
  have the floor, and movies raised to num_ratings / users, so that users can rate them.

  Raises:
    ValueError: Fewer ratings than one user's floor (shape.min_ratings_per_user).
  """
  if num_ratings < shape.min_ratings_per_user:
    raise ValueError(f"{num_ratings} ratings are too few: every user of the synthetic "
                     f"data has at least {shape.min_ratings_per_user}.")
  users, movies = _grouplens_counts(num_ratings)
  users = max(1, min(users, num_ratings // shape.min_ratings_per_user))
  movies = max(movies, -(-num_ratings // users))
  size = configs.SyntheticDataConfig(synthetic_users=users, synthetic_movies=movies,
                                     synthetic_ratings=num_ratings, synthetic_seed=seed)
  synthetic.check_feasible(size, shape)
  return size


def _grouplens_counts(num_ratings: int) -> Tuple[int, int]:
  """Users and movies of `num_ratings` ratings by the power laws of `catalogue_size`."""
  x = math.log(num_ratings)
  logs = [tuple(math.log(value) for value in row) for row in GROUPLENS_SIZES]
  inside = [(a, b) for a, b in zip(logs, logs[1:]) if a[0] <= x <= b[0]]
  start, end = inside[0] if inside else (logs[0], logs[-1])
  anchor = start if inside or x < start[0] else end
  users, movies = (round(math.exp(y + (y1 - y0) / (end[0] - start[0]) * (x - anchor[0])))
                   for y, y0, y1 in zip(anchor[1:], start[1:], end[1:]))
  return users, movies


def growth_exponent(n1: float, n2: float, v1: Optional[float],
                    v2: Optional[float]) -> Optional[float]:
  """k in v ~ n**k from two points: log(v2 / v1) / log(n2 / n1).

  None when a value is missing or not positive (a component that took no time): no
  power law passes through it.

  Raises:
    ValueError: n1 and n2 are not two different positive sizes.
  """
  if not (n1 > 0 and n2 > 0 and n1 != n2):
    raise ValueError(f"Two different positive sizes are needed, got {n1} and {n2}.")
  if v1 is None or v2 is None or v1 <= 0 or v2 <= 0:
    return None
  return math.log(v2 / v1) / math.log(n2 / n1)


# ------------------------------------------------------------------------------- data


def write_ml_latest(output_dir: str, size: configs.SyntheticDataConfig,
                    shape: synthetic.Shape = synthetic.Shape(),
                    group_ratings: int = _GROUP_RATINGS) -> str:
  """Writes synthetic data of `size` as ml-latest's ratings.csv and movies.csv.

  The data is movielens.synthetic's (its movies, users and choice of what each user
  rates), but generated a group of users at a time and written at once, where
  `synthetic.generate` holds every rating in memory to shuffle them: ratings.csv is
  ordered by user and then movie, as GroupLens writes it. Ratings are whole stars written
  as "4.0"; each group's ratings have ml-100k's shares of 1 to 5 stars.

  Args:
    output_dir: Created if missing; the two files are overwritten.
    size: Users, movies, ratings and the seed (see `catalogue_size`).
    shape: How the data is distributed.
    group_ratings: About how many ratings are generated at a time.

  Returns:
    `output_dir`.
  """
  synthetic.check_feasible(size, shape)
  os.makedirs(output_dir, exist_ok=True)
  # pylint: disable=protected-access
  # The generator's parts, not `synthetic.generate`: see above.
  rng = np.random.default_rng(size.synthetic_seed)
  movies = synthetic._make_movies(rng, size, shape)
  users = synthetic._make_users(rng, size, shape, movies)
  # pylint: enable=protected-access
  _write_movies(os.path.join(output_dir, formats.ML_LATEST.movies.name), movies)
  layout = formats.ML_LATEST.ratings
  with open(os.path.join(output_dir, layout.name), "w", encoding="utf-8",
            newline="") as f:
    f.write(",".join(layout.header) + "\n")
    for begin, end in user_groups(users.counts, group_ratings):
      f.write(_csv_lines(*_group_ratings(rng, size, shape, movies, users, begin, end)))
  return output_dir


def user_groups(counts: np.ndarray, group_ratings: int) -> Iterator[Tuple[int, int]]:
  """[begin, end) ranges of consecutive users, cut where the running total of their
  ratings (`counts`) reaches each multiple of `group_ratings`: a group holds fewer than
  `group_ratings` ratings plus its last user's."""
  total = np.cumsum(counts)
  cuts = np.searchsorted(total, np.arange(group_ratings, total[-1], group_ratings)) + 1
  bounds = np.unique(np.concatenate(([0], cuts, [len(counts)])))
  return zip(bounds[:-1].tolist(), bounds[1:].tolist())


def _group_ratings(rng: np.random.Generator, size: configs.SyntheticDataConfig,
                   shape: synthetic.Shape, movies, users, begin: int,
                   end: int) -> Tuple[np.ndarray, ...]:
  """User ids, movie ids, ratings and timestamps of users [begin, end), sorted by user
  and movie."""
  group = type(users)(**{field.name: getattr(users, field.name)[begin:end]
                         for field in dataclasses.fields(users)})
  group_size = dataclasses.replace(size, synthetic_users=end - begin,
                                   synthetic_ratings=int(group.counts.sum()))
  ratings = synthetic._make_ratings(  # pylint: disable=protected-access
      rng, group_size, shape, movies, group)
  order = np.lexsort((ratings.movie_ids, ratings.user_ids))
  return (ratings.user_ids[order] + begin, ratings.movie_ids[order],
          ratings.ratings[order], ratings.timestamps[order])


def _csv_lines(user_ids, movie_ids, ratings, timestamps) -> str:
  columns = (user_ids.tolist(), movie_ids.tolist(), ratings.tolist(), timestamps.tolist())
  return "".join(f"{u},{m},{r}.0,{t}\n" for u, m, r, t in zip(*columns))


def _write_movies(path: str, movies) -> None:
  """movies.csv: header, then id, title (quoted where it holds a comma) and genres."""
  names = [_ML_LATEST_GENRES.get(name, name) for name in formats.ML_100K_GENRES]
  with open(path, "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(formats.ML_LATEST.movies.header)
    for i, (title, flags) in enumerate(zip(movies.titles, movies.genres)):
      writer.writerow([i + 1, title, "|".join(names[g] for g in np.flatnonzero(flags))])
