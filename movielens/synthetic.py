"""Deterministic synthetic MovieLens data in the ml-100k file format.

This is the project's built-in default data set: it needs no download, and the same
loader that reads real ml-100k reads it. `generate` writes

  * `u.data`: `user_id<TAB>item_id<TAB>rating<TAB>timestamp`, ids from 1, ratings 1-5,
    Unix seconds, in shuffled order as in the real file;
  * `u.item`: latin-1, `id|title|release date|video release date|IMDb URL|` followed by
    19 genre flags in `formats.ML_100K_GENRES` order;
  * `u.genre`: `name|index` lines, and a `README` naming the generator parameters.

The data has the structure a retrieval model must cope with in real MovieLens:

  * Movie popularity is Zipf-like and user activity is heavy-tailed above a floor of
    `min_ratings_per_user` ratings.
  * Preferences come from latent factors tied to genres. Each movie has 1-3 genres
    (Drama and Comedy most often) and a latent vector that mixes its genres' vectors;
    each user mixes 1-3 favourite genres. Users choose which movies to rate with
    probability proportional to `popularity * exp(affinity / temperature)`, so a model
    that learns preferences beats popularity.
  * Titles draw partly on genre-specific words ("Love", "Murder", "Planet"), so title
    tokens carry signal.
  * Ratings grow with affinity, movie quality and user leniency, with the ml-100k rating
    distribution (mean about 3.53).
  * Timestamps span about seven months (as ml-100k: Sep 1997 - Apr 1998). Each user is
    active in a window; a few movies are released inside the span and can only be rated
    after release, so popularity drifts over time.

The size and seed are `configs.SyntheticDataConfig` (the local runner's --synthetic_*
flags, and this module's command-line flags); how the data is distributed is `Shape`,
whose defaults imitate ml-100k.

Output is byte-identical for the same config on the same platform and numpy version:
one seeded `numpy.random.Generator` drives everything, in a fixed order, and all
floating point work that decides outcomes is float64, so that platform-dependent
last-bit differences would almost never change a rating.

Usage:
  python -m movielens.synthetic --output_dir=/tmp/ml [--synthetic_users=943 \
      --synthetic_movies=1682 --synthetic_ratings=100000 --synthetic_seed=42]
"""
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import tempfile
import urllib.parse
from typing import Dict, List, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np

from contracts import config_flags
from contracts import configs
from movielens import formats

# ml-100k genre names, in u.item flag order; the index is the u.genre index.
_GENRES = formats.ML_100K_GENRES
_UNKNOWN = _GENRES.index("unknown")
_LAYOUT = formats.ML_100K

# Movies per genre in real ml-100k, used as genre sampling weights. "unknown" is
# handled apart: in real data it only ever appears alone, on a handful of movies.
_GENRE_COUNTS = np.array([0, 251, 135, 42, 122, 505, 109, 50, 725, 22, 24, 92, 56, 61,
                          247, 101, 251, 71, 27], dtype=np.float64)
_UNKNOWN_GENRE_FRACTION = 0.0012  # 2 of 1682 movies in ml-100k.
# Probability of a movie having 1, 2 or 3 genres; mean 1.72 genres as in ml-100k.
_GENRES_PER_MOVIE_PROBS = np.array([0.45, 0.38, 0.17])

# Share of ratings 1..5 in ml-100k (6110, 11370, 27145, 34174, 21201 of 100000).
_RATING_SHARES = np.array([0.06110, 0.11370, 0.27145, 0.34174, 0.21201])
# Weights of the standardized rating drivers. Affinity dominates so that ratings agree
# with what users chose to rate; the rest keeps ratings from being a function of it.
_RATING_AFFINITY_WEIGHT = 1.0
_RATING_QUALITY_WEIGHT = 0.6
_RATING_LENIENCY_WEIGHT = 0.5
_RATING_NOISE_WEIGHT = 0.8

# Log-popularity bonus of movies released during the span: new releases are what people
# see, which makes popularity drift towards them after their release.
_NEW_RELEASE_LOG_BOOST = 1.5
# Days before the end of the span after which no movie is released, so that every new
# release can still collect ratings.
_LAST_RELEASE_MARGIN_DAYS = 14
# Release ages of older movies: mostly recent (ml-100k peaks at 1995-1996), with a long
# tail back to the 1920s.
_RECENT_AGE_MEAN_YEARS = 3.0
_OLD_MOVIE_FRACTION = 0.25
_MAX_AGE_YEARS = 75.0
# Log-weight given to a movie released after the user's active window: the Gumbel trick
# then ranks it after every available movie, so it is only taken when a user's count
# exceeds the available catalogue (the rating then falls after the release).
_UNAVAILABLE_PENALTY = -1.0e4

# Elements (users x movies) of one float64 score block: about 32 MiB per temporary,
# which keeps 10M-rating data sets well under a few GB while amortizing numpy overheads.
_BLOCK_ELEMENTS = 1 << 22
# Rows of u.data formatted per write.
_WRITE_CHUNK_ROWS = 1 << 20

# Subtracted from the log-normal activity draws (median 1) and clipped at 0, so that a
# few percent of users sit exactly at the floor, as in every GroupLens data set.
_ACTIVITY_OFFSET = 0.15

_SECONDS_PER_DAY = 86_400
_SECONDS_PER_YEAR = 365.25 * _SECONDS_PER_DAY
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")
_MARKER = "_COMPLETE"
# Bump when the output for a given config changes, so ensure_generated redoes old dirs.
_GENERATOR_VERSION = 1

# Title vocabulary. Most titles have a word of one of the movie's genres, so title
# tokens predict genres (and through them, preferences); the generic words add noise.
_GENRE_WORDS: Dict[str, Tuple[str, ...]] = {
    "unknown": ("Untitled", "Project", "Reel", "Picture"),
    "Action": ("Fury", "Strike", "Bullet", "Force", "Target", "Steel", "Fire", "Chase",
               "Justice", "Blast", "Impact"),
    "Adventure": ("Quest", "Island", "Treasure", "Journey", "Jungle", "Voyage", "Kingdom",
                  "Expedition", "Lost"),
    "Animation": ("Toy", "Magic", "Cartoon", "Bear", "Rabbit", "Mouse", "Tale", "Lion"),
    "Children's": ("Kid", "Puppy", "Friends", "Pet", "Dog", "Adventures", "Little",
                   "Pony"),
    "Comedy": ("Crazy", "Funny", "Wedding", "Party", "Dumb", "Lucky", "Trouble", "Nutty",
               "Mr.", "Weekend", "Club"),
    "Crime": ("Gang", "Heist", "Money", "Dirty", "Cop", "Killer", "Deal", "Mob",
              "Getaway"),
    "Documentary": ("Portrait", "Inside", "Truth", "Voices", "Chronicle", "Report",
                    "Witnesses"),
    "Drama": ("Heart", "Life", "Home", "Father", "Mother", "Dreams", "Letter", "Days",
              "Winter", "Promise", "Son", "Daughter"),
    "Fantasy": ("Dragon", "Sword", "Wizard", "Spell", "Legend", "Realm", "Enchanted"),
    "Film-Noir": ("Shadow", "Dark", "Double", "Sleep", "Falcon", "Dame", "Alley"),
    "Horror": ("Blood", "Dead", "Evil", "Scream", "Fear", "Curse", "Zombie", "Haunting",
               "Terror", "Nightmare"),
    "Musical": ("Song", "Dance", "Music", "Sing", "Melody", "Broadway", "Rhythm"),
    "Mystery": ("Secret", "Clue", "Mystery", "Vanishing", "Stranger", "Puzzle",
                "Witness"),
    "Romance": ("Love", "Heart", "Kiss", "Sweet", "Bride", "Romance", "Forever",
                "Moonlight", "Affair"),
    "Sci-Fi": ("Space", "Planet", "Star", "Alien", "Robot", "Galaxy", "Future",
               "Machine", "Orbit"),
    "Thriller": ("Murder", "Night", "Danger", "Deadly", "Edge", "Trap", "Hunt", "Panic",
                 "Fatal"),
    "War": ("War", "Battle", "Soldier", "Hero", "Glory", "Enemy", "Command", "Platoon"),
    "Western": ("Gun", "Outlaw", "Ranch", "Frontier", "Sheriff", "Rider", "Canyon",
                "Dust", "Wild"),
}
_ADJECTIVES = ("Silent", "Last", "Golden", "Blue", "Lonely", "Broken", "Long", "Secret",
               "Perfect", "Hidden", "Strange", "Bright", "Cold", "Red", "Empty", "Lost",
               "Little", "Great", "Naïve", "Sweet", "First", "Final", "Black", "White")
# A few words are latin-1 ("Naïve" above), as some real ml-100k titles are ("Café au
# Lait"), so that readers must decode u.item as latin-1.
_NOUNS = ("River", "City", "Road", "House", "Man", "Woman", "Summer", "Game", "Street",
          "Sky", "Garden", "Train", "Mirror", "Door", "Island", "Sun", "Girl", "Boy",
          "Town", "Story", "World", "Hour", "Café", "Señorita", "Angel", "Circle")
_ROMAN = ("II", "III", "IV")

_TITLE_PATTERNS = (
    "{G}",  # Heat (1995)
    "{A} {G}",  # Silent Murder (1995)
    "{G} {N}",  # Love Road (1995)
    "{N} of {G}",  # City of Blood (1995)
    "{G} {N}, The",  # ml-100k moves the article: "Usual Suspects, The (1995)".
    "{A} {N}",  # Golden River (1995): no genre word, as some real titles.
    "{A} {G} {R}",  # Deadly Fury II (1995)
    "{G} and {G2}",  # War and Love (1995)
)
_TITLE_PATTERN_PROBS = np.array([0.14, 0.22, 0.18, 0.12, 0.12, 0.08, 0.06, 0.08])
# Real ml-100k has a few movies with no IMDb URL.
_MISSING_URL_FRACTION = 0.01


@dataclasses.dataclass(frozen=True)
class Shape:
  """How the synthetic data is distributed; the defaults imitate ml-100k.

  The size and the seed are `configs.SyntheticDataConfig`'s (flags); these parameters of
  the generator's model are not flags: tests and experiments set them in code.

  Attributes:
    min_ratings_per_user: Floor of ratings per user (20 in every GroupLens data set).
    latent_dim: Dimension of the user and movie latent vectors.
    popularity_exponent: Zipf exponent s: a movie's base popularity is rank**-s.
    popularity_cutoff: Popularity also decays as exp(-rank / (cutoff * num_movies)),
      which thins the tail whatever the catalogue size.
    affinity_temperature: Divides the user-movie affinity in the choice of movies to
      rate; lower means preferences matter more relative to popularity.
    movie_noise: Scale of a movie's own latent noise relative to its genre mix.
    user_noise: Scale of a user's own latent noise relative to the favourite genres.
    activity_sigma: Sigma of the log-normal user activity (ratings above the floor).
    start_timestamp: Unix second of the first possible rating (ml-100k's first one).
    span_days: Length of the rating period in days.
    mean_active_days: Mean length of a user's active window (exponential).
    new_release_fraction: Fraction of movies released during the rating period.
  """
  min_ratings_per_user: int = 20
  latent_dim: int = 16
  popularity_exponent: float = 0.6
  popularity_cutoff: float = 0.2
  affinity_temperature: float = 0.2
  movie_noise: float = 0.6
  user_noise: float = 0.6
  activity_sigma: float = 0.8
  start_timestamp: int = 874_724_710  # 1997-09-20 03:05:10 UTC.
  span_days: int = 215
  mean_active_days: float = 30.0
  new_release_fraction: float = 0.04

  def __post_init__(self):
    positive = {"min_ratings_per_user": self.min_ratings_per_user,
                "latent_dim": self.latent_dim,
                "popularity_cutoff": self.popularity_cutoff,
                "affinity_temperature": self.affinity_temperature,
                "activity_sigma": self.activity_sigma, "span_days": self.span_days,
                "mean_active_days": self.mean_active_days}
    for name, value in positive.items():
      if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}.")
    if min(self.popularity_exponent, self.movie_noise, self.user_noise) < 0:
      raise ValueError("popularity_exponent, movie_noise and user_noise must be "
                       "non-negative.")
    if not 0 <= self.new_release_fraction < 1:
      raise ValueError(
          f"new_release_fraction must be in [0, 1), got {self.new_release_fraction}.")
    if self.span_days <= _LAST_RELEASE_MARGIN_DAYS:
      raise ValueError(f"span_days must exceed {_LAST_RELEASE_MARGIN_DAYS}.")

  @property
  def end_timestamp(self) -> int:
    """Unix second of the last possible rating."""
    return self.start_timestamp + self.span_days * _SECONDS_PER_DAY


_Size = configs.SyntheticDataConfig
_DEFAULT_SIZE = _Size()
_DEFAULT_SHAPE = Shape()


def check_feasible(size: configs.SyntheticDataConfig, shape: Shape = _DEFAULT_SHAPE) -> None:
  """Raises ValueError, naming the flags, if no data set has this size.

  Every user needs at least `shape.min_ratings_per_user` ratings, and rates each movie
  at most once.
  """
  lowest = size.synthetic_users * shape.min_ratings_per_user
  highest = size.synthetic_users * size.synthetic_movies
  if not lowest <= size.synthetic_ratings <= highest:
    raise ValueError(
        f"--synthetic_ratings={size.synthetic_ratings} is infeasible: "
        f"--synthetic_users={size.synthetic_users} users with at least "
        f"{shape.min_ratings_per_user} ratings each and at most "
        f"--synthetic_movies={size.synthetic_movies} distinct movies each need "
        f"{lowest} <= synthetic_ratings <= {highest}.")


# ------------------------------------------------------------------------- public API


def generate(output_dir: str, size: configs.SyntheticDataConfig = _DEFAULT_SIZE,
             shape: Shape = _DEFAULT_SHAPE) -> str:
  """Writes a synthetic ml-100k-format data set into `output_dir`.

  Existing files of the same names are overwritten. The completion marker is removed
  first and written last, so a directory with the marker holds a whole data set.

  Args:
    output_dir: Directory to write into; created if missing.
    size: Users, movies, ratings and the seed.
    shape: How the data is distributed.

  Returns:
    `output_dir`.

  Raises:
    ValueError: No data set has this size (`check_feasible`).
  """
  check_feasible(size, shape)
  os.makedirs(output_dir, exist_ok=True)
  marker = os.path.join(output_dir, _MARKER)
  if os.path.exists(marker):
    os.remove(marker)

  rng = np.random.default_rng(size.synthetic_seed)
  movies = _make_movies(rng, size, shape)
  users = _make_users(rng, size, shape, movies)
  ratings = _make_ratings(rng, size, shape, movies, users)

  _write_items(os.path.join(output_dir, _LAYOUT.movies.name), movies)
  _write_ratings(os.path.join(output_dir, _LAYOUT.ratings.name), ratings)
  _write_genres(os.path.join(output_dir, "u.genre"))
  _write_text(os.path.join(output_dir, "README"), _readme(size, shape))
  _write_text(marker, _marker_text(size, shape))
  return output_dir


def default_data_dir(root: str, size: configs.SyntheticDataConfig = _DEFAULT_SIZE,
                     shape: Shape = _DEFAULT_SHAPE) -> str:
  """Returns the data directory under `root` for `size` and `shape`.

  The name shows the size and seed, e.g. root/synthetic-u943-m1682-r100000-s42. A shape
  other than the default gets a short hash of its non-default fields appended, so two
  data sets never share a directory.
  """
  name = (f"synthetic-u{size.synthetic_users}-m{size.synthetic_movies}"
          f"-r{size.synthetic_ratings}-s{size.synthetic_seed}")
  defaults = dataclasses.asdict(_DEFAULT_SHAPE)
  others = {key: value for key, value in dataclasses.asdict(shape).items()
            if value != defaults[key]}
  if others:
    digest = hashlib.sha256(json.dumps(others, sort_keys=True).encode()).hexdigest()
    name += f"-{digest[:8]}"
  return os.path.join(root, name)


def ensure_generated(root: str, size: configs.SyntheticDataConfig = _DEFAULT_SIZE,
                     shape: Shape = _DEFAULT_SHAPE) -> str:
  """Returns `default_data_dir(root, size, shape)`, generating it unless already complete.

  A directory is complete when its marker names this size, shape and generator version.
  An incomplete one (an interrupted run, another size, shape or version) is replaced. Data is
  generated in a temporary sibling and renamed into place, so readers never see a
  partial data set; if another process completes the directory first, its result is
  kept.

  Args:
    root: Parent directory; created if missing.
    size: Users, movies, ratings and the seed.
    shape: How the data is distributed.

  Returns:
    The data directory.
  """
  target = default_data_dir(root, size, shape)
  if _is_complete(target, size, shape):
    return target
  os.makedirs(root, exist_ok=True)
  # Dot-prefixed, so that listings and globs of finished data sets skip it.
  staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-", dir=root)
  try:
    generate(staging, size, shape)
    if _is_complete(target, size, shape):  # Another process finished first.
      return target
    if os.path.isdir(target) and not os.path.islink(target):
      shutil.rmtree(target)
    elif os.path.lexists(target):
      os.remove(target)
    try:
      os.rename(staging, target)
    except OSError:
      # Lost a race to a concurrent rename; accept its result if it is complete.
      if not _is_complete(target, size, shape):
        raise
  finally:
    if os.path.exists(staging):
      shutil.rmtree(staging)
  return target


# ------------------------------------------------------------------------------ movies


@dataclasses.dataclass
class _Movies:
  """Catalogue arrays, indexed by movie id - 1."""
  genres: np.ndarray  # bool [num_movies, 19].
  genre_vectors: np.ndarray  # float64 [19, latent_dim], unit length; shared with users.
  vectors: np.ndarray  # float64 [num_movies, latent_dim].
  log_popularity: np.ndarray  # float64 [num_movies].
  quality: np.ndarray  # float64 [num_movies], standard normal rating bias.
  release: np.ndarray  # int64 [num_movies], Unix seconds (negative before 1970).
  titles: List[str]
  urls: List[str]


def _make_movies(rng: np.random.Generator, size: _Size, shape: Shape) -> _Movies:
  """Draws genres, latent vectors, popularity, release dates and titles of all movies."""
  n = size.synthetic_movies
  genres = _draw_movie_genres(rng, n)
  genre_vectors = rng.standard_normal((len(_GENRES), shape.latent_dim))
  genre_vectors /= np.linalg.norm(genre_vectors, axis=1, keepdims=True)
  # Dividing by sqrt(count) keeps multi-genre movies at the same scale as single-genre.
  counts = genres.sum(axis=1, keepdims=True)
  vectors = genres @ genre_vectors / np.sqrt(counts)
  vectors += (shape.movie_noise / np.sqrt(shape.latent_dim)
              * rng.standard_normal((n, shape.latent_dim)))

  release, is_new = _draw_release_times(rng, size, shape)
  ranks = rng.permutation(n) + 1
  # Zipf head with an exponential cutoff: real MovieLens counts fall off faster than a
  # power law in the tail, leaving many movies with a handful of ratings.
  log_popularity = (-shape.popularity_exponent * np.log(ranks)
                    - ranks / (shape.popularity_cutoff * n))
  log_popularity += _NEW_RELEASE_LOG_BOOST * is_new
  quality = rng.standard_normal(n)
  titles = _draw_titles(rng, genres, release)
  missing_url = rng.random(n) < _MISSING_URL_FRACTION
  urls = ["" if missing else
          "http://us.imdb.com/M/title-exact?" + urllib.parse.quote(title, safe="(),'")
          for title, missing in zip(titles, missing_url)]
  return _Movies(genres=genres, genre_vectors=genre_vectors, vectors=vectors,
                 log_popularity=log_popularity, quality=quality, release=release,
                 titles=titles, urls=urls)


def _draw_movie_genres(rng: np.random.Generator, n: int) -> np.ndarray:
  """Returns bool [n, 19] genre flags: 1-3 genres per movie, weighted as in ml-100k."""
  num_genres = rng.choice(len(_GENRES_PER_MOVIE_PROBS), size=n,
                          p=_GENRES_PER_MOVIE_PROBS) + 1
  # Weighted sampling without replacement: the top keys of log(weight) + Gumbel noise.
  with np.errstate(divide="ignore"):
    log_weights = np.log(_GENRE_COUNTS)  # -inf for "unknown": never drawn here.
  keys = log_weights + rng.gumbel(size=(n, len(_GENRES)))
  order = np.argsort(-keys, axis=1, kind="stable")[:, :3]
  genres = np.zeros((n, len(_GENRES)), dtype=bool)
  chosen = np.arange(3)[None, :] < num_genres[:, None]
  rows = np.broadcast_to(np.arange(n)[:, None], order.shape)
  genres[rows[chosen], order[chosen]] = True
  unknown = rng.random(n) < _UNKNOWN_GENRE_FRACTION
  genres[unknown] = False
  genres[unknown, _UNKNOWN] = True
  return genres


def _draw_release_times(rng: np.random.Generator,
                        size: _Size, shape: Shape) -> Tuple[np.ndarray, np.ndarray]:
  """Returns release Unix seconds and a mask of movies released during the span."""
  n = size.synthetic_movies
  is_new = rng.random(n) < shape.new_release_fraction
  is_old = rng.random(n) < _OLD_MOVIE_FRACTION
  age_years = np.where(is_old, rng.uniform(0.0, _MAX_AGE_YEARS, n),
                       np.minimum(rng.exponential(_RECENT_AGE_MEAN_YEARS, n),
                                  _MAX_AGE_YEARS))
  before = shape.start_timestamp - np.floor(age_years * _SECONDS_PER_YEAR)
  last_release = shape.end_timestamp - _LAST_RELEASE_MARGIN_DAYS * _SECONDS_PER_DAY
  during = rng.uniform(shape.start_timestamp, last_release, n)
  release = np.where(is_new, np.floor(during), before).astype(np.int64)
  return release, is_new


def _draw_titles(rng: np.random.Generator, genres: np.ndarray,
                 release: np.ndarray) -> List[str]:
  """Returns "Words (YYYY)" titles whose words depend partly on the movie's genres."""
  n = len(genres)
  pattern = rng.choice(len(_TITLE_PATTERNS), size=n, p=_TITLE_PATTERN_PROBS)
  # Uniform draws, turned into list indices below; drawing them as one block keeps the
  # random stream independent of the word lists' lengths.
  picks = rng.random((n, 7))
  titles = []
  for i in range(n):
    movie_genres = [_GENRES[g] for g in np.flatnonzero(genres[i])]
    first = _GENRE_WORDS[movie_genres[int(picks[i, 0] * len(movie_genres))]]
    second = _GENRE_WORDS[movie_genres[int(picks[i, 1] * len(movie_genres))]]
    words = {
        "G": _pick(first, picks[i, 2]),
        "G2": _pick(second, picks[i, 3]),
        "A": _pick(_ADJECTIVES, picks[i, 4]),
        "N": _pick(_NOUNS, picks[i, 5]),
        "R": _pick(_ROMAN, picks[i, 6]),
    }
    name = _TITLE_PATTERNS[pattern[i]].format(**words)
    titles.append(f"{name} ({_year(int(release[i]))})")
  return titles


def _pick(words: Sequence[str], uniform: float) -> str:
  return words[int(uniform * len(words))]


def _utc(timestamp: int) -> datetime.datetime:
  # Epoch plus a timedelta works for negative (pre-1970) seconds on every platform.
  return (datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
          + datetime.timedelta(seconds=timestamp))


def _year(timestamp: int) -> int:
  return _utc(timestamp).year


def _release_date(timestamp: int) -> str:
  """Formats as ml-100k does, "01-Jan-1995", independent of the locale."""
  day = _utc(timestamp)
  return f"{day.day:02d}-{_MONTHS[day.month - 1]}-{day.year:04d}"


# ------------------------------------------------------------------------------- users


@dataclasses.dataclass
class _Users:
  """User arrays, indexed by user id - 1."""
  vectors: np.ndarray  # float64 [num_users, latent_dim].
  counts: np.ndarray  # int64 [num_users], ratings per user; sums to num_ratings.
  leniency: np.ndarray  # float64 [num_users], standard normal rating bias.
  window_start: np.ndarray  # int64 [num_users], Unix seconds.
  window_end: np.ndarray  # int64 [num_users], Unix seconds, inclusive.


def _make_users(rng: np.random.Generator, size: _Size, shape: Shape,
                movies: _Movies) -> _Users:
  """Draws user tastes, activity and active windows."""
  n = size.synthetic_users
  # Favourite genres: 1-3, favouring common genres but less steeply than the catalogue
  # does, so that fans of small genres exist.
  num_favourites = rng.integers(1, 4, size=n)
  with np.errstate(divide="ignore"):
    log_weights = 0.5 * np.log(_GENRE_COUNTS)
  keys = log_weights + rng.gumbel(size=(n, len(_GENRES)))
  favourites = np.argsort(-keys, axis=1, kind="stable")[:, :3]
  mix = rng.dirichlet(np.ones(3), size=n)
  mix *= np.arange(3)[None, :] < num_favourites[:, None]
  mix /= np.linalg.norm(mix, axis=1, keepdims=True)
  vectors = np.einsum("uk,ukd->ud", mix, movies.genre_vectors[favourites])
  vectors += (shape.user_noise / np.sqrt(shape.latent_dim)
              * rng.standard_normal((n, shape.latent_dim)))

  activity = np.maximum(rng.lognormal(0.0, shape.activity_sigma, n) - _ACTIVITY_OFFSET,
                        0.0)
  counts = _allocate_counts(activity, size, shape)
  leniency = rng.standard_normal(n)
  span = shape.span_days * _SECONDS_PER_DAY
  length = np.minimum(rng.exponential(shape.mean_active_days * _SECONDS_PER_DAY, n),
                      span)
  start = shape.start_timestamp + rng.random(n) * (span - length)
  window_start = np.floor(start).astype(np.int64)
  window_end = np.floor(start + length).astype(np.int64)
  return _Users(vectors=vectors, counts=counts, leniency=leniency,
                window_start=window_start, window_end=window_end)


def _allocate_counts(activity: np.ndarray, size: _Size, shape: Shape) -> np.ndarray:
  """Splits num_ratings into per-user counts: the floor plus shares of the rest.

  The ratings above the floor go to users in proportion to `activity`, capped at the
  catalogue size (water-filling: capped users' excess is re-spread over the others),
  then rounded by largest remainder so that the counts sum exactly to num_ratings.
  """
  floor = shape.min_ratings_per_user
  capacity = float(size.synthetic_movies - floor)
  share = np.zeros_like(activity)
  free = np.ones(activity.shape, dtype=bool)
  remaining = float(size.synthetic_ratings - floor * size.synthetic_users)
  while free.any():
    total = activity[free].sum()
    # All-zero activity (possible for a handful of users) means an even split.
    share[free] = remaining * (activity[free] / total if total > 0 else
                               1.0 / np.count_nonzero(free))
    over = free & (share > capacity)
    if not over.any():
      break
    share[over] = capacity
    free &= ~over
    remaining = float(size.synthetic_ratings - floor * size.synthetic_users
                      - capacity * np.count_nonzero(~free))
  extra = np.floor(share).astype(np.int64)
  leftover = size.synthetic_ratings - floor * size.synthetic_users - int(extra.sum())
  # Largest remainder among users below the cap; the stable sort breaks ties by user
  # index, which keeps the result deterministic.
  remainder = np.where(extra < capacity, share - extra, -1.0)
  order = np.argsort(-remainder, kind="stable")
  extra[order[:leftover]] += 1
  return extra + floor


# ----------------------------------------------------------------------------- ratings


@dataclasses.dataclass
class _Ratings:
  """Parallel rating columns, in u.data row order."""
  user_ids: np.ndarray  # int64, from 1.
  movie_ids: np.ndarray  # int64, from 1.
  ratings: np.ndarray  # int64, 1..5.
  timestamps: np.ndarray  # int64, Unix seconds.


def _make_ratings(rng: np.random.Generator, size: _Size, shape: Shape, movies: _Movies,
                  users: _Users) -> _Ratings:
  """Chooses the movies each user rates, then rating values and timestamps."""
  user_index, movie_index, affinity = _choose_movies(rng, size, shape, movies, users)
  ratings = _rating_values(rng, affinity, movies.quality[movie_index],
                           users.leniency[user_index])
  timestamps = _timestamps(rng, shape, movies.release[movie_index],
                           users.window_start[user_index],
                           users.window_end[user_index])
  # Real u.data is not grouped by user; shuffling also hides the processing order.
  order = rng.permutation(len(user_index))
  return _Ratings(user_ids=user_index[order] + 1, movie_ids=movie_index[order] + 1,
                  ratings=ratings[order], timestamps=timestamps[order])


def _choose_movies(rng: np.random.Generator, size: _Size, shape: Shape, movies: _Movies,
                   users: _Users) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Samples each user's movies without replacement, weights popularity * exp(aff / T).

  Gumbel-top-k: the k largest of `log weight + Gumbel noise` are a weighted sample
  without replacement of size k. Users are processed in blocks sorted by count, so a
  block only partitions out as many columns as its most active user needs.

  Returns:
    User indices, movie indices and the user-movie affinities of the chosen pairs,
    int64/int64/float64 arrays of length num_ratings, grouped by user.
  """
  num_movies = size.synthetic_movies
  order = np.argsort(users.counts, kind="stable")
  block_rows = max(1, _BLOCK_ELEMENTS // num_movies)
  user_index = np.repeat(order, users.counts[order])
  movie_index = np.empty(size.synthetic_ratings, dtype=np.int64)
  affinity = np.empty(size.synthetic_ratings, dtype=np.float64)
  # Only movies released during the span can be unavailable to a user.
  new_releases = np.flatnonzero(movies.release > shape.start_timestamp)
  filled = 0
  for begin in range(0, size.synthetic_users, block_rows):
    block = order[begin:begin + block_rows]
    counts = users.counts[block]
    # Operations in place: the score block is the largest array of the whole run.
    keys = users.vectors[block] @ movies.vectors.T
    keys *= 1.0 / shape.affinity_temperature
    keys += movies.log_popularity[None, :]
    keys[:, new_releases] += _UNAVAILABLE_PENALTY * (
        movies.release[new_releases] > users.window_end[block, None])
    # Gumbel noise as -log(Exp(1)): the ziggurat exponential is cheaper than gumbel().
    noise = rng.standard_exponential(keys.shape)
    keys -= np.log(noise, out=noise)
    chosen = _top_k_per_row(keys, counts)
    end = filled + len(chosen)
    movie_index[filled:end] = chosen
    chooser = np.repeat(block, counts)
    affinity[filled:end] = np.einsum("nd,nd->n", users.vectors[chooser],
                                     movies.vectors[chosen])
    filled = end
  return user_index, movie_index, affinity


def _top_k_per_row(keys: np.ndarray, counts: np.ndarray) -> np.ndarray:
  """Column indices of the counts[i] largest keys of each row i, concatenated by row."""
  num_columns = keys.shape[1]
  k_max = int(counts.max())
  if k_max < num_columns:
    top = np.argpartition(keys, num_columns - k_max, axis=1)[:, num_columns - k_max:]
  else:
    top = np.broadcast_to(np.arange(num_columns), keys.shape)
  # Order the k_max candidates so that each row's first counts[i] are its largest.
  by_key = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
  top = np.take_along_axis(top, by_key, axis=1)
  keep = np.arange(k_max)[None, :] < counts[:, None]
  return top[keep]


def _rating_values(rng: np.random.Generator, affinity: np.ndarray, quality: np.ndarray,
                   leniency: np.ndarray) -> np.ndarray:
  """Rates 1-5 from affinity, movie quality, user leniency and noise.

  The weighted score is cut at its quantiles, so the rating shares equal ml-100k's
  whatever the score's scale.
  """
  standardized = (affinity - affinity.mean()) / max(affinity.std(), 1e-12)
  score = (_RATING_AFFINITY_WEIGHT * standardized + _RATING_QUALITY_WEIGHT * quality
           + _RATING_LENIENCY_WEIGHT * leniency
           + _RATING_NOISE_WEIGHT * rng.standard_normal(len(affinity)))
  cuts = np.quantile(score, np.cumsum(_RATING_SHARES)[:-1])
  return np.searchsorted(cuts, score, side="right").astype(np.int64) + 1


def _timestamps(rng: np.random.Generator, shape: Shape, release: np.ndarray,
                window_start: np.ndarray, window_end: np.ndarray) -> np.ndarray:
  """Draws each rating's time uniformly in the user's window, after the release.

  A movie released after the window (only chosen when a user rates nearly everything)
  is rated between its release and the end of the span instead.
  """
  low = np.maximum(window_start, release)
  late = low > window_end
  high = np.where(late, shape.end_timestamp, window_end)
  low = np.where(late, release, low)
  offset = np.floor(rng.random(len(low)) * (high - low + 1)).astype(np.int64)
  return low + offset


# ----------------------------------------------------------------------------- writing


def _write_items(path: str, movies: _Movies) -> None:
  """Writes u.item: 24 '|'-separated fields per movie, latin-1."""
  lines = []
  for i, (title, url) in enumerate(zip(movies.titles, movies.urls)):
    flags = "|".join("1" if flag else "0" for flag in movies.genres[i])
    date = _release_date(int(movies.release[i]))
    lines.append(f"{i + 1}|{title}|{date}||{url}|{flags}\n")
  with open(path, "wb") as f:
    f.write("".join(lines).encode("latin-1"))


def _write_ratings(path: str, ratings: _Ratings) -> None:
  """Writes u.data in chunks, formatted without a per-row Python loop."""
  columns = (ratings.user_ids, ratings.movie_ids, ratings.ratings, ratings.timestamps)
  with open(path, "wb") as f:
    for begin in range(0, len(ratings.user_ids), _WRITE_CHUNK_ROWS):
      chunk = [column[begin:begin + _WRITE_CHUNK_ROWS] for column in columns]
      f.write(_format_int_rows(chunk))


def _format_int_rows(columns: Sequence[np.ndarray]) -> bytes:
  """Formats non-negative integer columns as tab-separated decimal lines.

  Each row is laid out in a fixed-width byte matrix, digits right-aligned in their
  column's widest width; dropping the unused leading cells of every field and reading
  the rest in row-major order yields the variable-width lines.
  """
  rows = len(columns[0])
  widths = [len(str(int(column.max()))) if rows else 1 for column in columns]
  line_width = sum(widths) + len(columns)  # One separator or newline per field.
  text = np.empty((rows, line_width), dtype=np.uint8)
  used = np.empty((rows, line_width), dtype=bool)
  position = 0
  for i, (column, width) in enumerate(zip(columns, widths)):
    value = column.astype(np.int64)
    num_digits = np.ones(rows, dtype=np.int64)  # 0 is written as one digit.
    for power in range(1, width):
      num_digits += value >= 10**power
    for place in range(width - 1, -1, -1):  # Least significant digit first.
      text[:, position + place] = ord("0") + value % 10
      value //= 10
      used[:, position + place] = num_digits >= width - place
    position += width
    text[:, position] = ord("\t") if i < len(columns) - 1 else ord("\n")
    used[:, position] = True
    position += 1
  return text[used].tobytes()


def _write_genres(path: str) -> None:
  """Writes u.genre as ml-100k ships it, including its trailing empty line."""
  text = "".join(f"{name}|{index}\n" for index, name in enumerate(_GENRES)) + "\n"
  _write_text(path, text)


def _readme(size: _Size, shape: Shape) -> str:
  values = {**dataclasses.asdict(size), **dataclasses.asdict(shape)}
  parameters = "\n".join(f"  {key} = {value}" for key, value in values.items())
  return (
      "SYNTHETIC MovieLens data in the ml-100k file format (u.data, u.item, u.genre).\n"
      "\n"
      "These are not real ratings: they were generated by\n"
      "movielens.synthetic (generator version "
      f"{_GENERATOR_VERSION}) with\n{parameters}\n"
      "\n"
      "The same parameters reproduce these files byte for byte. Users rate movies\n"
      "chosen by Zipf-like popularity and genre-based latent preferences; ratings\n"
      "follow the ml-100k rating distribution; timestamps span "
      f"{shape.span_days} days from\n{_utc(shape.start_timestamp):%Y-%m-%d}.\n")


def _marker_text(size: _Size, shape: Shape) -> str:
  return json.dumps({"generator_version": _GENERATOR_VERSION,
                     "size": dataclasses.asdict(size), "shape": dataclasses.asdict(shape)},
                    sort_keys=True) + "\n"


def _is_complete(directory: str, size: _Size, shape: Shape) -> bool:
  """True if `directory` holds a finished data set of this size, shape and generator."""
  try:
    with open(os.path.join(directory, _MARKER), encoding="utf-8") as f:
      return f.read() == _marker_text(size, shape)
  except OSError:
    return False


def _write_text(path: str, text: str) -> None:
  # Binary mode: no platform newline translation, so files are byte-identical.
  with open(path, "wb") as f:
    f.write(text.encode("latin-1"))


# --------------------------------------------------------------------------------- CLI


def _define_flags() -> None:
  """Defines the CLI flags; only when run as a script, so importers get no flags.

  --output_dir, and one flag per knob of `configs.SyntheticDataConfig`, as the local
  runner defines them.
  """
  flags.DEFINE_string("output_dir", None, "Directory to write the data set into.",
                      required=True)
  config_flags.define_config_flags(configs.SyntheticDataConfig)


def _main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  try:
    size = config_flags.config_from_flags(configs.SyntheticDataConfig)
    check_feasible(size)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  print(generate(flags.FLAGS.output_dir, size))


if __name__ == "__main__":
  _define_flags()
  app.run(_main)
