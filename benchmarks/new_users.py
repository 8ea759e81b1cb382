"""Users the model never saw, who bring a history: the model's list from it against EASE's.

The Evaluator's users are all in training. This benchmark holds a share of the users out
of the pipeline altogether (the "strong generalization" protocol of Liang et al. 2018
and of the EASE paper) and asks what a new user gets from `serving_with_context`:

  prepare    copies a MovieLens data set (any supported format) without the held-out
             users' ratings, in the same format, plus their ratings in held_out.tsv;
  (run the pipeline on the copy)
  evaluate   splits each held-out user's ratings at random into a given 80% (the
             history) and a hidden 20% (the targets), and ranks the whole catalog for them:

  popularity            the train split's rating counts
  EASE                  the Evaluator's EASE (fitted on the run's train split) scored from
                        the whole given history
  model                 the run's query model (its with_context signature, under an id it
                        never saw) from the whole given history, most recent first: the
                        towers read its `max_context` most recent movies, the EASE
                        factor all of them
  model / EASE, N random
                        both from N random movies of the given history (--short_histories)

The given movies are excluded from every list (hit_rate), or not (top_k_accuracy); the
targets are the same in every row. Nothing is fitted on the held-out users. evaluate
prints the rows and writes them to docs/benchmarks/new_users-<data set>.md, the data set
being the one prepare copied (its path is kept in the copy's source.txt;
benchmarks/results.py).

  python benchmarks/new_users.py --mode=prepare \
      --data_dir ../shared/data/ml-latest-small --output_dir /tmp/nu_data
  python local_runner.py --data_dir /tmp/nu_data --pipeline_root /tmp/nu
  python benchmarks/new_users.py --mode=evaluate --output_dir /tmp/nu_data \
      --pipeline_root /tmp/nu
"""
import csv
import os
from typing import Callable, Dict, List, Tuple

from absl import app
from absl import flags

import pipeline_outputs
import results
import trainer_module  # pylint: disable=unused-import  # Sets TF_USE_LEGACY_KERAS first.
from closed_form import ease
from components.retrieval_evaluator import data
from components.retrieval_evaluator import metrics
from components.retrieval_evaluator import scoring
from contracts import configs
from contracts import features
from contracts import serving
from movielens import formats
from movielens import sources
from ranking_core import scores as scores_lib

import numpy as np  # pylint: disable=g-bad-import-order

_MODE = flags.DEFINE_enum("mode", None, ["prepare", "evaluate"], "The step to run.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "prepare: the MovieLens data set.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "The copy without the held-out users (prepare writes it, evaluate "
    "reads its held_out.tsv).")
_PIPELINE_ROOT = flags.DEFINE_string("pipeline_root", "tfx_root",
                                     "evaluate: a finished local run on the copy.")
_HOLDOUT_FRACTION = flags.DEFINE_float("holdout_fraction", 0.2, "Share of users held out.")
_GIVEN_FRACTION = flags.DEFINE_float(
    "given_fraction", 0.8, "Share of a held-out user's ratings given as their history.")
_SHORT_HISTORIES = flags.DEFINE_list("short_histories", ["5", "10", "20"],
                                     "N of the 'N random' rows.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the held-out users and of the splits.")

HELD_OUT_FILE = "held_out.tsv"
SOURCE_FILE = "source.txt"  # The data set the copy was made from, for the results file.
_KS = (10, 100)


# --------------------------------------------------------------------------------- prepare


def _user_of(line: bytes, layout: formats.MovieLensFormat) -> str:
  fields = line.split(layout.ratings.separator)
  return fields[layout.ratings.columns.index(formats.USER_ID)].strip().decode("ascii")


def _data_lines(source: sources.MovieLensSource, file: str, has_header: bool):
  for number, line in sources.read_lines(source, file):
    yield number == 1 and has_header, line


def prepare(data_dir: str, output_dir: str, fraction: float, seed: int) -> None:
  """Writes `output_dir`: the data set without a seeded `fraction` of its users."""
  source = sources.detect_source(data_dir)
  layout = source.layout
  has_header = bool(layout.ratings.header)
  users = sorted({_user_of(line, layout) for is_header, line
                  in _data_lines(source, source.ratings_file, has_header) if not is_header})
  held_out = set(np.random.default_rng(seed).permutation(users)[:round(fraction * len(users))])
  os.makedirs(output_dir, exist_ok=False)
  kept = dropped = 0
  column = {name: layout.ratings.columns.index(name)
            for name in (formats.MOVIE_ID, formats.TIMESTAMP)}
  with open(os.path.join(output_dir, layout.ratings.name), "wb") as ratings, \
       open(os.path.join(output_dir, HELD_OUT_FILE), "w", encoding="ascii") as held:
    for is_header, line in _data_lines(source, source.ratings_file, has_header):
      user = None if is_header else _user_of(line, layout)
      if user in held_out:
        fields = [field.strip().decode("ascii")
                  for field in line.split(layout.ratings.separator)]
        held.write(f"{user}\t{fields[column[formats.MOVIE_ID]]}\t"
                   f"{fields[column[formats.TIMESTAMP]]}\n")
        dropped += 1
      else:
        ratings.write(line + b"\n")
        kept += not is_header
  with open(os.path.join(output_dir, layout.movies.name), "wb") as movies:
    for _, line in sources.read_lines(source, source.movies_file):
      movies.write(line + b"\n")
  with open(os.path.join(output_dir, SOURCE_FILE), "w", encoding="utf-8") as f:
    f.write(os.path.abspath(data_dir) + "\n")
  print(f"{source.format}: {len(held_out)} of {len(users)} users held out ({dropped} "
        f"ratings in {HELD_OUT_FILE}); {kept} ratings kept in {output_dir}")


# -------------------------------------------------------------------------------- evaluate


def _held_out_pairs(path: str, column_of: Dict[str, int]
                    ) -> Tuple[List[str], np.ndarray, np.ndarray, np.ndarray, int]:
  """(user ids, user rows, movie columns, timestamps, ratings of uncatalogued movies).

  A movie a user rated twice counts once, at its latest time, as ExampleGen keeps it.
  """
  with open(path, encoding="ascii") as held:
    rows = list(csv.reader(held, delimiter="\t"))
  latest: Dict[Tuple[str, str], int] = {}
  for user, movie, timestamp in rows:
    latest[(user, movie)] = max(int(timestamp), latest.get((user, movie), -1))
  in_catalog = [(user, movie, timestamp) for (user, movie), timestamp in latest.items()
                if movie in column_of]
  user_ids = sorted({row[0] for row in in_catalog})
  row_of = {user: index for index, user in enumerate(user_ids)}
  return (user_ids, np.array([row_of[row[0]] for row in in_catalog]),
          np.array([column_of[row[1]] for row in in_catalog]),
          np.array([row[2] for row in in_catalog]), len(latest) - len(in_catalog))


def _first_n_per_user(users: np.ndarray, order: np.ndarray, n: int) -> np.ndarray:
  """Bool mask over the pairs: the first n of each user in `order` (pair indices grouped
  by user, all of them or a subset); pairs outside `order` are False."""
  sorted_users = users[order]
  keep = np.zeros(len(users), bool)
  keep[order] = np.arange(len(order)) - np.searchsorted(sorted_users, sorted_users) < n
  return keep


def _model_scores(model_uri: str, catalog: List[str], user_ids: List[str],
                  users: np.ndarray, movies: np.ndarray, timestamps: np.ndarray,
                  query_times: np.ndarray) -> scores_lib.ScoreFn:
  """The query model from each user's given movies, most recent first, as a new user's
  request (the towers read the first max_context, the EASE factor all of them)."""
  order = np.lexsort((-timestamps, users))
  place = np.arange(len(order)) - np.searchsorted(users[order], users[order])
  contexts = np.full((len(user_ids), max(int(place.max()) + 1, 1)), "", dtype=object)
  contexts[users[order], place] = np.asarray(catalog, dtype=object)[movies[order]]
  queries = {features.USER_ID: np.array([f"never-seen-{user}" for user in user_ids],
                                        dtype=object),
             features.TIMESTAMP: query_times,
             features.CONTEXT_MOVIE_IDS: contexts}
  embeddings = data.query_embeddings(model_uri, queries,
                                     serving.QUERY_WITH_CONTEXT_SIGNATURE)
  candidates, present = data.Candidates.load(model_uri).aligned_to(catalog)
  return scoring.embedding_score_fn(embeddings, candidates, present)


def evaluate(output_dir: str, pipeline_root: str, given_fraction: float,
             short_histories: List[int], seed: int) -> None:
  """Prints the rows of the module docstring for the held-out users of `output_dir`, and
  writes them to the results file of the data set the copy was made from."""
  source_path = os.path.join(output_dir, SOURCE_FILE)
  if os.path.exists(source_path):
    with open(source_path, encoding="utf-8") as f:
      results_file = results.results_name(__file__, f.read().strip())
  else:  # A copy made before source.txt: the run's data set, the copy itself.
    results_file = results.results_name(__file__, results.run_data_set(pipeline_root))
  model_uri, catalog, train = pipeline_outputs.evaluation_problem(pipeline_root)
  column_of = {movie: column for column, movie in enumerate(catalog)}
  user_ids, users, movies, timestamps, uncatalogued = _held_out_pairs(
      os.path.join(output_dir, HELD_OUT_FILE), column_of)
  rng = np.random.default_rng(seed)
  given = rng.random(len(users)) < given_fraction
  num_users = len(user_ids)
  query_times = np.zeros(num_users, np.int64)
  for row in range(num_users):  # The Evaluator's query time: the targets' median.
    mine = (users == row) & ~given
    query_times[row] = np.median(timestamps[mine]) if mine.any() else timestamps.max()
  config = configs.EvaluatorConfig()
  fitted = ease.fit(train.all_train_users, train.all_train_movies, train.num_train_users,
                    train.train_counts, config.ease_l2, config.ease_max_items)

  def model_from(keep: np.ndarray) -> scores_lib.ScoreFn:
    return _model_scores(model_uri, catalog, user_ids, users[keep], movies[keep],
                         timestamps[keep], query_times)

  rows: Dict[str, Callable[[], scores_lib.ScoreFn]] = {
      "popularity": lambda: scoring.popularity_score_fn(train.train_counts),
      "EASE, whole given history": lambda: fitted.score_fn(users[given], movies[given],
                                                           num_users),
      "model, whole given history": lambda: model_from(given),
  }
  random_order = np.lexsort((rng.random(len(users)), users))
  for n in short_histories:
    keep = given & _first_n_per_user(users, random_order[given[random_order]], n)
    rows[f"model, {n} random given"] = lambda keep=keep: model_from(keep)
    rows[f"EASE, {n} random given"] = (
        lambda keep=keep: fitted.score_fn(users[keep], movies[keep], num_users))

  print(f"{num_users} held-out users, {given.sum()} given and {(~given).sum()} hidden "
        f"ratings ({uncatalogued} of movies outside the catalog left out); "
        f"model {model_uri}")
  print(f"{'scores':<34} {'hit@10':>7} {'hit@100':>8} {'top100':>7}")
  table = []
  for name, build in rows.items():
    ranked = metrics.rank(build(), len(catalog), users[~given], movies[~given],
                          users[given], movies[given], depth=max(_KS), batch_size=512)
    summary = metrics.summarize(ranked, _KS)
    print(f"{name:<34} {summary['hit_rate@10']:>7.4f} {summary['hit_rate@100']:>8.4f} "
          f"{summary['top_k_accuracy@100']:>7.4f}", flush=True)
    table.append([name, f"{summary['hit_rate@10']:.4f}", f"{summary['hit_rate@100']:.4f}",
                  f"{summary['top_k_accuracy@100']:.4f}"])
  results.write(results_file, "Users held out of training altogether", [(
      "Held-out users' hidden ratings",
      f"{num_users:,} held-out users, {given.sum():,} given and {(~given).sum():,} hidden "
      f"ratings ({uncatalogued} of movies outside the catalog left out); given fraction "
      f"{given_fraction}, seed {seed}. hit@k excludes the given movies, top100 "
      "(top_k_accuracy@100) does not.\n\n"
      + results.table(["scores", "hit@10", "hit@100", "top100"], table))])


def main(argv):
  del argv
  if _MODE.value == "prepare":
    prepare(_DATA_DIR.value, _OUTPUT_DIR.value, _HOLDOUT_FRACTION.value, _SEED.value)
  else:
    evaluate(_OUTPUT_DIR.value, _PIPELINE_ROOT.value, _GIVEN_FRACTION.value,
             [int(n) for n in _SHORT_HISTORIES.value], _SEED.value)


if __name__ == "__main__":
  flags.mark_flags_as_required(["mode", "output_dir"])
  app.run(main)
