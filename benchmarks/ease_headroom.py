"""Headroom over EASE: how far the trained model is from the baseline, and what would close it.

Reads a finished local pipeline run and ranks the RetrievalEvaluator's eval users exactly
as the Evaluator does (the same users, eval pairs and train exclusions, with its own
modules), with each of these score functions:

  model                 the run's newest trained two-tower model (RetrievalTrainer), as
                        served: with the EASE factor, on by default, included (run the
                        pipeline with --ease_factor_rank 0 for the towers alone, which
                        the "model + w x EASE" rows assume)
  EASE λ=L              the baseline at each penalty of --ease_l2s: is the Evaluator's
                        (configs.EvaluatorConfig.ease_l2) near EASE's best?
  EDLAE p=P             EASE with the input-dropout penalty of Steck 2020 (ease.py), p in
                        --edlae_dropouts
  RP3β β=B              the item-item random walk of Paudel et al. 2017, popularity
                        damped by deg^β (--rp3_betas): with EDLAE, the classical rivals
                        of EASE; is EASE the strongest baseline here?
  EASE, N recent        EASE fed only each user's N most recent train movies (ties in
                        time as UserContext breaks them): what the model's query holds
  EASE, N random        EASE fed N of each user's train movies drawn at random (seeded)
  EASE rank R           EASE's weights truncated to rank R (scikit-learn's randomized
                        SVD): what R-d query and candidate vectors can keep of them
  model + w x EASE      per user, both score rows standardized and summed: an ensemble,
                        which the serving model does not do
  model + w x EASE rank R, raw
                        the model's cosine + w x the rank-R EASE score, unstandardized
                        (--factor_weights; R from --ranks, or "full"): what the Trainer's
                        EASE factor serves (--ease_factor_rank, trainer_module/
                        ease_factor.py), here with EASE fitted on the whole train split
  iALS d=D              implicit ALS (Hu et al. 2008) as tuned in Rendle et al. 2021: D-d
                        user and movie vectors, unobserved pairs weighted --ials_alpha0,
                        each row's penalty --ials_l2 x (alpha0 + its share of the other
                        side rated); eval users folded in from their train movies. A
                        user-id two-tower model trained by least squares, not sampling
  EASE + iALS d=D       both standardized and summed, as above
  co-rated W            movies rated within W places of each other in a user's time-ordered
                        train history (the eval users'), counts over (n_i n_j)^0.5: an
                        item-item model of rating sessions (--corated_windows)
  EASE + 0.3 x co-rated W
  EASE, session rows W:γ
                        EASE with session rows (closed_form/ease.py, ease.Sessions): each
                        run of W consecutive ratings of an eval user's time-ordered train
                        history one more row of the fit, weighted γ (--session_rows, W:γ;
                        the fit reads the eval users' train rows, every train user when
                        the Evaluator does not sample them, as on ml-latest-small)
  EASE, session rows W:γ rank R
                        the same truncated to rank R (--ranks): what the Trainer's EASE
                        factor serves by default
  EASE, session diagonal W:γ
                        the session rows' diagonal alone added to the fit (a penalty that
                        grows with each movie's ratings, as EDLAE's): is the gain theirs?
  model, C chunks       the model queried from each user's C x max_context most recent
                        train movies, one query per chunk of max_context, the normalized
                        queries summed (--history_chunks): can the model read the whole
                        history at serving time, as EASE does?
  model, N random       the model queried from N random train movies of each user, and
  EASE, N random        EASE scored from the same N (--short_histories): how each maps a
                        short history, as a new user brings one, to a list. Both were
                        fitted on these users' whole train rows, so it flatters both
Rows other than "model" and "EASE λ=L" use the Evaluator's λ. Prints hit_rate@10 and
hit_rate@100 (seen-excluded) and top_k_accuracy@100 (seen movies not excluded) per row, after the share of eval pairs whose movie no train
rating has (no collaborative score can rank those: EASE never recommends them). The rows
also go to docs/benchmarks/ease_headroom-<data set>.md (ease_headroom.md on the built-in
data; benchmarks/results.py); docs/model_quality.md says what they showed.

  python local_runner.py --data_dir ../shared/data/ml-latest-small --pipeline_root /tmp/mls
  python benchmarks/ease_headroom.py --pipeline_root /tmp/mls

The EASE and EDLAE fits are dense [items, items] matrices whose inversion grows as items³,
up to the cap of items (configs.EvaluatorConfig.ease_max_items); RP3β's is [catalog,
catalog], with no cap. Use --ease_l2s=, --edlae_dropouts=, --rp3_betas= and --ranks= to skip rows.
"""
import dataclasses
import functools
import time
from typing import Callable, Dict, Sequence, Tuple

from absl import app
from absl import flags

import pipeline_outputs
import results
import trainer_module  # pylint: disable=unused-import  # Sets TF_USE_LEGACY_KERAS first.
from components.retrieval_evaluator import data
from closed_form import ease
from components.retrieval_evaluator import executor as evaluator
from components.retrieval_evaluator import scoring
from contracts import configs
from contracts import features
from contracts import serving
from ranking_core import scores as scores_lib

import numpy as np  # pylint: disable=g-bad-import-order
from scipy import sparse  # pylint: disable=g-bad-import-order

_ROOT = flags.DEFINE_string("pipeline_root", "tfx_root", "Root of a finished local run.")
_EASE_L2S = flags.DEFINE_list("ease_l2s", ["50", "100", "400", "800"],
                              "Other EASE penalties to rank with.")
_EDLAE_DROPOUTS = flags.DEFINE_list("edlae_dropouts", ["0.1", "0.25"],
                                    "p of the 'EDLAE p=P' rows (at the Evaluator's λ).")
_RP3_BETAS = flags.DEFINE_list("rp3_betas", ["0.3", "0.5"], "β of the 'RP3β β=B' rows.")
_CONTEXT_SIZES = flags.DEFINE_list("context_sizes", ["50", "200"],
                                   "N of the 'EASE, N recent / N random' rows.")
_RANKS = flags.DEFINE_list("ranks", ["128", "512"], "R of the 'EASE rank R' rows.")
_BLEND_WEIGHTS = flags.DEFINE_list("blend_weights", ["0.5", "1", "2"],
                                   "w of the 'model + w x EASE' rows.")
_FACTOR_WEIGHTS = flags.DEFINE_list("factor_weights", ["1", "2", "4"],
                                    "w of the 'model + w x EASE rank R, raw' rows.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the random contexts and the SVD.")
_IALS_DIMS = flags.DEFINE_list("ials_dims", ["128"], "D of the 'iALS d=D' rows.")
_IALS_L2 = flags.DEFINE_float("ials_l2", 50.0, "iALS penalty scale (see the rows above).")
_IALS_ALPHA0 = flags.DEFINE_float("ials_alpha0", 0.1, "iALS weight of unobserved pairs.")
_IALS_EPOCHS = flags.DEFINE_integer("ials_epochs", 12, "iALS alternations.")
_HISTORY_CHUNKS = flags.DEFINE_list("history_chunks", ["2", "4"],
                                    "C of the 'model, C chunks' rows.")
_SHORT_HISTORIES = flags.DEFINE_list(
    "short_histories", ["5", "10", "20"],
    "N of the 'model, N random' and 'EASE, N random' rows: both scored from N random "
    "train movies of each user, as for a new user who brings a short history.")
_CORATED_WINDOWS = flags.DEFINE_list("corated_windows", ["5"],
                                     "W of the 'co-rated W' rows.")
_SESSION_ROWS = flags.DEFINE_list("session_rows", ["8:0.25"],
                                  "W:γ of the 'EASE, session rows W:γ' rows.")



def _standardized(scores: np.ndarray) -> np.ndarray:
  """Each row minus its mean over finite entries, over their std; others at the row's min."""
  finite = np.isfinite(scores)
  values = np.where(finite, scores, np.nan)
  mean = np.nanmean(values, axis=1, keepdims=True)
  std = np.nanstd(values, axis=1, keepdims=True) + 1e-9
  z = (values - mean) / std
  return np.where(finite, z, np.nanmin(z, axis=1, keepdims=True)).astype(np.float32)


def _subset(eval_data: data.EvalData, keep: np.ndarray) -> Dict[str, np.ndarray]:
  return {"users": eval_data.train_users[keep], "movies": eval_data.train_movies[keep]}


def _recent_first(eval_data: data.EvalData, catalog: Sequence[str]) -> np.ndarray:
  """The eval users' train pairs grouped by user, each user's most recent first.

  Ties in time go to the larger raw movie id, as in UserContext's `context.recent_first`.
  """
  id_rank = np.argsort(np.argsort(np.asarray(catalog, dtype=object)))
  return np.lexsort((-id_rank[eval_data.train_movies], -eval_data.train_timestamps,
                     eval_data.train_users))


def _recent(eval_data: data.EvalData, catalog: Sequence[str], n: int) -> np.ndarray:
  """Bool mask over the eval users' train pairs: each user's n most recent."""
  return _first_n_per_user(eval_data.train_users, _recent_first(eval_data, catalog), n)


def _model_from(model_uri: str, catalog: Sequence[str], eval_data: data.EvalData,
                keep: np.ndarray, size: int) -> scores_lib.ScoreFn:
  """The model's scores with each user's context made of the kept train pairs only.

  `keep` is a mask over the eval users' train pairs (at most `size` a user); a user's kept
  movies fill the context most recent first, and a user with none gets an empty one.
  """
  order = _recent_first(eval_data, catalog)
  order = order[keep[order]]
  users = eval_data.train_users[order]
  place = np.arange(len(order)) - np.searchsorted(users, users, "left")
  contexts = np.full((len(eval_data.user_ids), size), "", dtype=object)
  contexts[users, place] = np.asarray(catalog, dtype=object)[eval_data.train_movies[order]]
  queries = data.query_embeddings(
      model_uri, {**eval_data.queries, features.CONTEXT_MOVIE_IDS: contexts},
      serving.QUERY_WITH_CONTEXT_SIGNATURE)
  embeddings, present = data.Candidates.load(model_uri).aligned_to(list(catalog))
  return scoring.embedding_score_fn(queries, embeddings, present)


def _model_from_chunks(model_uri: str, catalog: Sequence[str], eval_data: data.EvalData,
                       chunks: int, size: int) -> scores_lib.ScoreFn:
  """The model's scores with each user's query summed over chunks of their history.

  Chunk c holds the user's train movies at places [c * size, (c + 1) * size) of their
  most-recent-first history; each chunk is a context of the query model, its query
  normalized, and a user's queries summed (chunks a user's history does not reach add
  nothing; the first always counts: the stored history, for a user with none).
  """
  order = _recent_first(eval_data, catalog)
  users = eval_data.train_users[order]
  movie_ids = np.asarray(catalog, dtype=object)[eval_data.train_movies[order]]
  place = np.arange(len(order)) - np.searchsorted(users, users, "left")
  num_users = len(eval_data.user_ids)
  summed = 0.0
  for chunk in range(chunks):
    in_chunk = place // size == chunk
    contexts = np.full((num_users, size), "", dtype=object)
    contexts[users[in_chunk], place[in_chunk] - chunk * size] = movie_ids[in_chunk]
    queries = data.query_embeddings(
        model_uri, {**eval_data.queries, features.CONTEXT_MOVIE_IDS: contexts},
        serving.QUERY_WITH_CONTEXT_SIGNATURE)
    queries /= np.linalg.norm(queries, axis=-1, keepdims=True)
    reached = np.bincount(users[in_chunk], minlength=num_users) > 0
    if chunk == 0:
      reached[:] = True
    summed = summed + np.where(reached.reshape((-1,) + (1,) * (queries.ndim - 1)),
                               queries, 0.0)
  embeddings, present = data.Candidates.load(model_uri).aligned_to(list(catalog))
  return scoring.embedding_score_fn(summed, embeddings, present)


def _random(eval_data: data.EvalData, n: int, seed: int) -> np.ndarray:
  """Bool mask over the eval users' train pairs: n of each user's, drawn at random."""
  draws = np.random.default_rng(seed).random(len(eval_data.train_users))
  order = np.lexsort((draws, eval_data.train_users))
  return _first_n_per_user(eval_data.train_users, order, n)


def _first_n_per_user(users: np.ndarray, order: np.ndarray, n: int) -> np.ndarray:
  """Marks the first n pairs of each user in `order` (which groups pairs by user)."""
  sorted_users = users[order]
  starts = np.searchsorted(sorted_users, sorted_users, "left")
  keep = np.zeros(len(users), bool)
  keep[order] = np.arange(len(users)) - starts < n
  return keep


def _low_rank(fitted: ease.Ease, rank: int, seed: int) -> ease.Ease:
  left, right = ease.factorize(fitted.weights, rank, seed)
  return dataclasses.replace(fitted, weights=left @ right.T)


def _random_walk(eval_data: data.EvalData, num_movies: int) -> Tuple[np.ndarray, np.ndarray]:
  """(W [M, M], movie degrees [M]): W = P_iu·P_ui, the one-step walk probabilities
  movie -> user -> movie over all train ratings, with a zero diagonal."""
  x = ease.binary_matrix(eval_data.all_train_users, eval_data.all_train_movies,
                         eval_data.num_train_users, num_movies, np.float32)
  user_degree = np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1)
  movie_degree = np.maximum(np.asarray(x.sum(axis=0)).ravel(), 1)
  user_to_movie = sparse.diags(1 / user_degree) @ x
  movie_to_user = sparse.diags(1 / movie_degree) @ x.T
  walk = (movie_to_user @ user_to_movie).toarray().astype(np.float32)
  np.fill_diagonal(walk, 0)
  return walk, movie_degree.astype(np.float32)


def _ials_solve(rated: sparse.csr_matrix, other: np.ndarray, l2: float,
                alpha0: float) -> np.ndarray:
  """One iALS half-step: each row's vector given the other side's vectors `other` [N, D].

  Row r minimizes sum over its rated columns of (1 - x·o)² + alpha0 · sum over all N of
  (x·o)² + l2 · (alpha0 + n_r / N) · |x|², n_r its rated columns.
  """
  gram = alpha0 * other.T @ other
  identity = np.eye(other.shape[1])
  vectors = np.zeros([rated.shape[0], other.shape[1]])
  for row in range(rated.shape[0]):
    columns = rated.indices[rated.indptr[row]:rated.indptr[row + 1]]
    if len(columns):
      rated_vectors = other[columns]
      penalty = l2 * (alpha0 + len(columns) / len(other))
      vectors[row] = np.linalg.solve(gram + rated_vectors.T @ rated_vectors
                                     + penalty * identity, rated_vectors.sum(axis=0))
  return vectors


def _ials(eval_data: data.EvalData, num_movies: int, dim: int, seed: int) -> scores_lib.ScoreFn:
  """iALS fitted on every train rating; the eval users' vectors folded in from their train
  movies."""
  every_rating = ease.binary_matrix(eval_data.all_train_users, eval_data.all_train_movies,
                                    eval_data.num_train_users, num_movies, np.float64).tocsr()
  by_movie = every_rating.T.tocsr()
  rng = np.random.default_rng(seed)
  movies = rng.normal(0, 0.1 / np.sqrt(dim), [num_movies, dim])
  l2, alpha0 = _IALS_L2.value, _IALS_ALPHA0.value
  for _ in range(_IALS_EPOCHS.value):
    users = _ials_solve(every_rating, movies, l2, alpha0)
    movies = _ials_solve(by_movie, users, l2, alpha0)
  eval_rated = ease.binary_matrix(eval_data.train_users, eval_data.train_movies,
                                  len(eval_data.user_ids), num_movies, np.float64).tocsr()
  queries = _ials_solve(eval_rated, movies, l2, alpha0)
  return lambda rows: (queries[rows] @ movies.T).astype(np.float32)


def _co_rated(eval_data: data.EvalData, num_movies: int, window: int) -> scores_lib.ScoreFn:
  """Item-item scores from movies rated within `window` places of each other in the eval
  users' time-ordered train histories, counts normalized by (n_i n_j)^0.5."""
  order = np.lexsort((eval_data.train_movies, eval_data.train_timestamps,
                      eval_data.train_users))
  users, movies = eval_data.train_users[order], eval_data.train_movies[order]
  pairs = []
  for gap in range(1, window + 1):
    same_user = users[gap:] == users[:-gap]
    first, second = movies[:-gap][same_user], movies[gap:][same_user]
    pairs += [(first, second), (second, first)]
  rows = np.concatenate([a for a, _ in pairs])
  columns = np.concatenate([b for _, b in pairs])
  counts = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, columns)),
                             shape=(num_movies, num_movies))
  scale = sparse.diags(1 / np.sqrt(np.bincount(movies, minlength=num_movies) + 1.0))
  similarity = (scale @ counts @ scale).tocsr()
  rated = ease.binary_matrix(eval_data.train_users, eval_data.train_movies,
                             len(eval_data.user_ids), num_movies, np.float32).tocsr()
  return lambda rows: (rated[rows] @ similarity).toarray()


def _score_functions(model_uri: str, catalog: Sequence[str], eval_data: data.EvalData,
                     config: configs.EvaluatorConfig
                     ) -> Dict[str, Callable[[], scores_lib.ScoreFn]]:
  """Row name -> a builder of its score function (built when its row is ranked)."""
  num_users = len(eval_data.user_ids)

  def fit(l2: float, dropout: float = 0.0) -> ease.Ease:
    return ease.fit(eval_data.all_train_users, eval_data.all_train_movies,
                    eval_data.num_train_users, eval_data.train_counts, l2,
                    config.ease_max_items, dropout)

  fitted = fit(config.ease_l2)
  every_pair = {"users": eval_data.train_users, "movies": eval_data.train_movies}
  model = evaluator.model_score_fn(model_uri, list(catalog), eval_data)
  full_ease = fitted.score_fn(**every_pair, num_users=num_users)
  rows = {"model": lambda: model, f"EASE λ={config.ease_l2:g}": lambda: full_ease}
  for l2 in [float(value) for value in _EASE_L2S.value]:
    rows[f"EASE λ={l2:g}"] = (
        lambda l2=l2: fit(l2).score_fn(**every_pair, num_users=num_users))
  for dropout in [float(value) for value in _EDLAE_DROPOUTS.value]:
    rows[f"EDLAE p={dropout:g}"] = (
        lambda dropout=dropout: fit(config.ease_l2, dropout).score_fn(**every_pair,
                                                                      num_users=num_users))
  # RP3β: the walk, column j divided by deg(j)^β; computed once for every β.
  walk = functools.cache(lambda: _random_walk(eval_data, len(catalog)))
  for beta in [float(value) for value in _RP3_BETAS.value]:
    rows[f"RP3β β={beta:g}"] = lambda beta=beta: ease.Ease(
        items=np.arange(len(catalog)), weights=walk()[0] / walk()[1][None, :] ** beta,
        num_movies=len(catalog), info={}).score_fn(**every_pair, num_users=num_users)
  for n in [int(value) for value in _CONTEXT_SIZES.value]:
    rows[f"EASE, {n} recent"] = (
        lambda n=n: fitted.score_fn(**_subset(eval_data, _recent(eval_data, catalog, n)),
                                    num_users=num_users))
    rows[f"EASE, {n} random"] = (
        lambda n=n: fitted.score_fn(**_subset(eval_data, _random(eval_data, n, _SEED.value)),
                                    num_users=num_users))
  for rank in [int(value) for value in _RANKS.value]:
    rows[f"EASE rank {rank}"] = (
        lambda rank=rank: _low_rank(fitted, rank, _SEED.value).score_fn(
            **every_pair, num_users=num_users))
  for rank in ["full"] + _RANKS.value:
    low_rank = functools.cache(lambda rank=rank: full_ease if rank == "full" else _low_rank(
        fitted, int(rank), _SEED.value).score_fn(**every_pair, num_users=num_users))
    for weight in [float(value) for value in _FACTOR_WEIGHTS.value]:
      rows[f"model + {weight:g} x EASE rank {rank}, raw"] = (
          lambda weight=weight, low_rank=low_rank: lambda rows: (model(rows)
                                                                 + weight * low_rank()(rows)))
  for weight in [float(value) for value in _BLEND_WEIGHTS.value]:
    rows[f"model + {weight:g} x EASE"] = (
        lambda weight=weight: lambda rows: (_standardized(model(rows))
                                            + weight * _standardized(full_ease(rows))))
  for dim in [int(value) for value in _IALS_DIMS.value]:
    ials = functools.cache(lambda dim=dim: _ials(eval_data, len(catalog), dim, _SEED.value))
    rows[f"iALS d={dim}"] = ials
    rows[f"EASE + iALS d={dim}"] = (
        lambda ials=ials: lambda rows: (_standardized(full_ease(rows))
                                        + _standardized(ials()(rows))))
  for chunks in [int(value) for value in _HISTORY_CHUNKS.value]:
    rows[f"model, {chunks} chunks"] = (
        lambda chunks=chunks: _model_from_chunks(model_uri, catalog, eval_data, chunks,
                                                 configs.ContextConfig().max_context))
  max_context = configs.ContextConfig().max_context
  for n in [int(value) for value in _SHORT_HISTORIES.value]:
    short = functools.cache(lambda n=n: _random(eval_data, min(n, max_context), _SEED.value))
    rows[f"model, {n} random"] = (
        lambda short=short: _model_from(model_uri, catalog, eval_data, short(), max_context))
    rows[f"EASE, {n} random"] = (
        lambda short=short: fitted.score_fn(**_subset(eval_data, short()),
                                            num_users=num_users))
  for window in [int(value) for value in _CORATED_WINDOWS.value]:
    co_rated = _co_rated(eval_data, len(catalog), window)
    rows[f"co-rated {window}"] = lambda co_rated=co_rated: co_rated
    rows[f"EASE + 0.3 x co-rated {window}"] = (
        lambda co_rated=co_rated: lambda rows: (_standardized(full_ease(rows))
                                                + 0.3 * _standardized(co_rated(rows))))
  for spec in _SESSION_ROWS.value:
    window, weight = spec.split(":")
    sessions = ease.Sessions(eval_data.train_timestamps, int(window), float(weight))
    session_fit = functools.cache(lambda sessions=sessions: ease.fit(
        eval_data.train_users, eval_data.train_movies, num_users, eval_data.train_counts,
        config.ease_l2, config.ease_max_items, sessions=sessions))
    rows[f"EASE, session rows {spec}"] = (
        lambda session_fit=session_fit: session_fit().score_fn(**every_pair,
                                                               num_users=num_users))
    for rank in [int(value) for value in _RANKS.value]:
      rows[f"EASE, session rows {spec} rank {rank}"] = (
          lambda session_fit=session_fit, rank=rank: _low_rank(
              session_fit(), rank, _SEED.value).score_fn(**every_pair, num_users=num_users))
    rows[f"EASE, session diagonal {spec}"] = (
        lambda sessions=sessions: _session_diagonal_ease(eval_data, sessions, config)
        .score_fn(**every_pair, num_users=num_users))
  return rows


def _session_diagonal_ease(eval_data: data.EvalData, sessions: ease.Sessions,
                           config: configs.EvaluatorConfig) -> ease.Ease:
  """EASE on the eval users' rows with only the diagonal of γ·WᵀW added to XᵀX + λI."""
  items, _ = ease.select_items(eval_data.train_counts, config.ease_max_items)
  item_of = np.full(len(eval_data.train_counts), -1, np.int64)
  item_of[items] = np.arange(len(items))
  columns = item_of[eval_data.train_movies]
  gram = ease.gram_matrix(ease.binary_matrix(eval_data.train_users, columns,
                                             len(eval_data.user_ids), len(items)))
  rows = ease.session_matrix(eval_data.train_users, columns, eval_data.train_timestamps,
                             len(items), sessions.window)
  gram[np.diag_indices_from(gram)] += sessions.weight * np.asarray(rows.sum(axis=0)).ravel()
  weights, diagonal = ease.weights_and_precision_diagonal(gram, config.ease_l2)
  return ease.Ease(items=items, weights=weights.astype(np.float32),
                   num_movies=len(eval_data.train_counts), info={},
                   precision_diagonal=diagonal)


def main(argv):
  del argv
  config = configs.EvaluatorConfig()
  results_file = results.results_name(__file__, results.run_data_set(_ROOT.value))
  model_uri, catalog, eval_data = pipeline_outputs.evaluation_problem(_ROOT.value)
  print(f"{len(eval_data.user_ids)} eval users, {len(eval_data.eval_users)} eval pairs, "
        f"{len(catalog)} movies; model {model_uri}")
  unrated = eval_data.train_counts[eval_data.eval_movies] == 0
  print(f"{unrated.mean():.1%} of the eval pairs are of movies with no train rating")
  print(f"{'scores':<36} {'hit@10':>7} {'hit@100':>8} {'top100':>7} {'s':>6}")
  rows = []
  for name, build in _score_functions(model_uri, catalog, eval_data, config).items():
    start = time.perf_counter()
    rates = pipeline_outputs.hit_rates(build(), eval_data, len(catalog))
    seconds = time.perf_counter() - start
    print(f"{name:<36} {rates['hit_rate@10']:>7.4f} {rates['hit_rate@100']:>8.4f} "
          f"{rates['top_k_accuracy@100']:>7.4f} {seconds:>6.1f}", flush=True)
    rows.append([name, f"{rates['hit_rate@10']:.4f}", f"{rates['hit_rate@100']:.4f}",
                 f"{rates['top_k_accuracy@100']:.4f}", f"{seconds:.1f}"])
  results.write(results_file, "Headroom over EASE", [(
      "Every score function on the Evaluator's users and pairs",
      f"{len(eval_data.user_ids):,} eval users, {len(eval_data.eval_users):,} eval pairs, "
      f"{len(catalog):,} movies; {unrated.mean():.1%} of the eval pairs are of movies with "
      "no train rating. hit@k excludes the user's train movies, top100 "
      "(top_k_accuracy@100) does not; the rows are the module docstring's.\n\n"
      + results.table(["scores", "hit@10", "hit@100", "top100", "s"], rows))])


if __name__ == "__main__":
  app.run(main)
