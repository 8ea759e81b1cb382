"""A few seeded eval users, for the report: what they rated last, and what they are offered.

Numbers say how a model does on average; a handful of users shows what it does. For each
user: the most recent movies they rated in train, and each model's top 10 with seen movies
excluded (the slots the metrics score), each flagged when it is one of the user's eval
movies.
"""
from typing import Dict, List, Mapping, Sequence

import numpy as np

from ranking_core import rankings as rankings_lib

USER_ID = "user_id"
LAST_RATED = "last_rated"
NUM_EVAL_MOVIES = "num_eval_movies"
TOP = "top"  # {section: [{"title": str, "hit": bool}, ...]}
TITLE = "title"
HIT = "hit"
# Train movies shown per user, most recent first.
LAST_RATED_SHOWN = 5


def example_users(user_ids: np.ndarray, train_users: np.ndarray, train_movies: np.ndarray,
                  train_timestamps: np.ndarray, titles: Sequence[str],
                  rankings: Mapping[str, rankings_lib.Rankings], num_users: int,
                  seed: int) -> List[Dict]:
  """The report's example users, a seeded sample of the ranked users, by user row.

  Args:
    user_ids: Id of each user row (bytes or str) [U].
    train_users, train_movies, train_timestamps: Train ratings of the user rows.
    titles: Title of each catalog column [M].
    rankings: {section: that model's rankings}, every one over the same users.
    num_users: How many users to show (fewer if there are fewer).
    seed: Seed of the sample.
  """
  if num_users <= 0 or not rankings:
    return []
  ranked = next(iter(rankings.values()))
  rng = np.random.default_rng(seed)
  chosen = np.sort(rng.choice(len(ranked.users), min(num_users, len(ranked.users)),
                              replace=False))
  return [_example(position, int(ranked.users[position]), user_ids, train_users,
                   train_movies, train_timestamps, titles, rankings)
          for position in chosen]


def _example(position: int, row: int, user_ids: np.ndarray, train_users: np.ndarray,
             train_movies: np.ndarray, train_timestamps: np.ndarray,
             titles: Sequence[str], rankings: Mapping[str, rankings_lib.Rankings]) -> Dict:
  mine = np.flatnonzero(train_users == row)
  recent = mine[np.argsort(-train_timestamps[mine], kind="stable")[:LAST_RATED_SHOWN]]
  user_id = user_ids[row]
  any_rankings = next(iter(rankings.values()))
  eval_movies = set(any_rankings.pair_movies[any_rankings.pair_users == position].tolist())
  return {
      USER_ID: user_id.decode() if isinstance(user_id, bytes) else str(user_id),
      LAST_RATED: [titles[m] for m in train_movies[recent]],
      NUM_EVAL_MOVIES: len(eval_movies),
      TOP: {section: [{TITLE: titles[m], HIT: m in eval_movies}
                      for m in ranked.top_movies[position].tolist()
                      if m != rankings_lib.EMPTY_SLOT]
            for section, ranked in rankings.items()},
  }
