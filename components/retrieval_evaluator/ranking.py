"""The ranking stage's evaluation: predicted ratings against every eval rating.

Only when the Model artifact has a ranking model (`contracts.artifacts.ranking_model_path`;
the Trainer writes one with `--ranking_model dcn`). Its signature is called on every rating
of the eval split (all of them, not the sampled eval users: a rating model is cheap to
run), and its errors are set beside two baselines fitted on the train ratings and scored
on the same eval ratings:
  * global_mean: the mean train rating;
  * movie_mean: each movie's mean train rating, shrunk toward the global mean
    (`MOVIE_MEAN_PRIOR_RATINGS`); a movie without train ratings gets the global mean.
The splits are streamed (data.read_ratings); only the float predictions, the labels and
each rating's catalog column are kept, never the raw strings of a whole split.

A rating model answers "how much will they like it", not "will they watch it", so the
list serving_ranked returns is measured too (`ranked_order`): each sampled eval user's
`ranking_candidates` best retrieved movies (train movies excluded, as in every hit rate
here) re-ordered as serving_ranked orders them (`ranking_core.scores.ranked_order_key`: the
predicted rating's share of the order is the Trainer's `ranking_weight`), with the
retrieval metrics at every evaluated k up to that depth. Set beside the model's own
(retrieval-order) figures, it says whether re-ordering gains or loses hits.
"""
import json
from typing import Any, Dict, Mapping, Sequence, Tuple

from absl import logging
import numpy as np
from scipy import sparse
import tensorflow as tf
from tfx import types

from components.retrieval_evaluator import data
from components.retrieval_evaluator import metric_names as names
from components.retrieval_evaluator import metrics
from contracts import artifacts
from contracts import features
from contracts import serving
from ranking_core import rankings as rankings_lib
from ranking_core import scores as scores_lib

# movie_mean adds this many pseudo-ratings at the global mean to each movie's train
# ratings: (sum + k * global) / (count + k). A movie rated once or twice then stays near
# the global mean instead of predicting its few ratings exactly, and a movie rated
# thousands of times keeps its own mean; 10 is the usual order of magnitude for MovieLens.
MOVIE_MEAN_PRIOR_RATINGS = 10

# Eval ratings a call of the ranking model: bounds the memory of its activations.
_PREDICT_BATCH_SIZE = 8_192
_RATING_INPUTS = features.RANKING_FEATURES + (features.USER_RATING,)


def has_ranking_model(model_uri: str) -> bool:
  """Whether the Model artifact at `model_uri` holds a ranking model."""
  return tf.io.gfile.exists(artifacts.ranking_model_path(model_uri))


def evaluate(model_uri: str, examples: types.Artifact, train_split: str, eval_split: str,
             catalog: Sequence[str]) -> Dict[str, Any]:
  """metrics.json's ranking section: the ranking model's and each baseline's errors.

  Args:
    model_uri: A Model artifact with a ranking model (`has_ranking_model`).
    examples: The raw ratings: the baselines are fitted on `train_split`, every model is
      scored on `eval_split`.
    catalog: Movie ids; every rated movie must be one of them.

  Returns:
    {RMSE, MAE, NUM_RATINGS, RATING_BASELINES: {GLOBAL_MEAN: {RMSE, MAE},
    MOVIE_MEAN: {RMSE, MAE}}}.

  Raises:
    ValueError: The ranking model lacks the signature or its output, returns the wrong
      shape or non-finite ratings; a split has no files or no ratings; a movie is not in
      `catalog`.
  """
  movie_table = data.lookup_table(list(catalog))
  global_mean, movie_means = _fit_baselines(examples, train_split, movie_table, len(catalog))
  predicted, labels, movies = _predict(examples, eval_split, model_uri, movie_table)
  logging.info("Ranking model: %d eval ratings; mean train rating %.4f.", len(labels),
               global_mean)
  return {
      **_errors(predicted, labels),
      names.NUM_RATINGS: len(labels),
      names.RATING_BASELINES: {
          names.GLOBAL_MEAN: _errors(np.full(len(labels), global_mean), labels),
          names.MOVIE_MEAN: _errors(movie_means[movies], labels),
      },
  }


def serving_order(model_uri: str) -> Tuple[int, float]:
  """(ranking_candidates, ranking_weight): how the model's serving_ranked re-orders, from
  its ranking config (contracts/artifacts.py)."""
  path = artifacts.ranking_config_path(model_uri)
  if not tf.io.gfile.exists(path):
    raise ValueError(f"The Model artifact {model_uri} has a ranking model but no "
                     f"{artifacts.RANKING_CONFIG_FILE}; it predates the ranked-order "
                     "evaluation: train it again.")
  with tf.io.gfile.GFile(path) as f:
    config = json.load(f)
  candidates = config.get(artifacts.RANKING_CANDIDATES_FIELD)
  weight = config.get(artifacts.RANKING_WEIGHT_FIELD)
  if not isinstance(candidates, int) or candidates < 1:
    raise ValueError(f"{path}: '{artifacts.RANKING_CANDIDATES_FIELD}' must be a positive "
                     f"integer, got {candidates!r}.")
  if not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
    raise ValueError(f"{path}: '{artifacts.RANKING_WEIGHT_FIELD}' must be a number in "
                     f"[0, 1], got {weight!r}.")
  return candidates, float(weight)


def ranked_order(model_uri: str, retrieval: scores_lib.ScoreFn, eval_data: data.EvalData,
                 catalog_features: Mapping[str, np.ndarray], ks: Sequence[int],
                 batch_size: int) -> Dict[str, Any]:
  """metrics.json's ranking/ranked_order: the retrieval metrics of the re-ordered lists.

  Args:
    model_uri: A Model artifact with a ranking model and its ranking config.
    retrieval: The same model's retrieval scores (executor.model_score_fn).
    eval_data: The evaluation problem the retrieval metrics were computed on.
    catalog_features: Raw CANDIDATE_FEATURES of every catalog movie, in catalog order
      (data.read_catalog_features).
    ks: The evaluated cutoffs; those deeper than the re-ordered list are left out.
    batch_size: Users re-ordered at once.

  Returns:
    {RANKING_CANDIDATES: the depth, RANKING_WEIGHT: the rating's share of the order,
    hit_rate@k, recall@k (k <= depth), ndcg@10}.
  """
  depth, weight = serving_order(model_uri)
  score_fn = _reordered_score_fn(model_uri, retrieval, eval_data, catalog_features, depth,
                                 weight)
  num_movies = len(catalog_features[features.MOVIE_ID])
  ranked = metrics.rank(score_fn, num_movies, eval_data.eval_users, eval_data.eval_movies,
                        eval_data.train_users, eval_data.train_movies, depth=depth,
                        batch_size=batch_size)
  kept = [k for k in ks if k <= depth]
  summary = metrics.summarize(ranked, kept)
  reported = [names.at(family, k) for family in (names.HIT_RATE, names.RECALL) for k in kept]
  reported.append(names.at(names.NDCG, names.NDCG_K))
  return {names.RANKING_CANDIDATES: depth, names.RANKING_WEIGHT: weight,
          **{name: summary[name] for name in reported}}


def _reordered_score_fn(model_uri: str, retrieval: scores_lib.ScoreFn,
                        eval_data: data.EvalData, catalog_features: Mapping[str, np.ndarray],
                        depth: int, weight: float) -> scores_lib.ScoreFn:
  """Scores whose order is serving_ranked's: each user's `depth` best retrieved movies
  (train movies excluded) get their `ranking_core.scores.ranked_order_key`, every other movie -inf."""
  path = artifacts.ranking_model_path(model_uri)
  loaded, signature, inputs = data.load_signature(path, serving.RANKING_SIGNATURE,
                                                  "ranking model", features.RANKING_FEATURES)
  num_movies = len(catalog_features[features.MOVIE_ID])
  seen = sparse.csr_matrix((np.ones(len(eval_data.train_users), bool),
                            (eval_data.train_users, eval_data.train_movies)),
                           shape=(len(eval_data.user_ids), num_movies))
  queries = eval_data.queries

  def score(rows: np.ndarray) -> np.ndarray:
    scores = np.array(retrieval(rows), dtype=np.float32)
    seen_rows, seen_movies = seen[rows].nonzero()
    scores[seen_rows, seen_movies] = -np.inf
    columns, valid = rankings_lib.top_k(scores, min(depth, num_movies))
    users, movies = np.nonzero(valid)[0], columns[valid]
    request = {name: queries[name][rows[users]] for name in features.REQUEST_QUERY_FEATURES}
    request.update({name: catalog_features[name][movies]
                    for name in features.CANDIDATE_FEATURES})
    outputs = signature(**{name: tf.constant(request[name], features.RAW_FEATURES[name].dtype)
                           for name in inputs})
    ratings = np.zeros(columns.shape, np.float32)
    ratings[valid] = _checked_ratings(outputs, len(movies), path)
    retrieved = np.take_along_axis(scores, columns, axis=1)
    reordered = np.full(scores.shape, -np.inf, np.float32)
    for row in np.flatnonzero(valid.any(axis=1)):  # A row's key covers its valid movies.
      kept = valid[row]
      reordered[row, columns[row, kept]] = scores_lib.ranked_order_key(
          retrieved[row, kept], ratings[row, kept], weight)
    return reordered

  score.loaded = loaded  # Held as long as the score function, which calls its signature.
  return score


def _errors(predicted: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
  """{RMSE, MAE} of predicted ratings against the true ones (equal lengths, not empty)."""
  difference = predicted.astype(np.float64) - labels.astype(np.float64)
  return {names.RMSE: float(np.sqrt(np.mean(np.square(difference)))),
          names.MAE: float(np.mean(np.abs(difference)))}


def _fit_baselines(examples: types.Artifact, split: str,
                  movie_table: tf.lookup.StaticHashTable,
                  num_movies: int) -> Tuple[float, np.ndarray]:
  """The mean rating of `split`, and each catalog movie's shrunk mean (float64 [M])."""
  sums = np.zeros([num_movies], np.float64)
  counts = np.zeros([num_movies], np.int64)
  for batch in data.read_ratings(examples, split, (features.MOVIE_ID, features.USER_RATING),
                                 movie_table):
    sums += np.bincount(batch[data.MOVIES], weights=batch[features.USER_RATING],
                        minlength=num_movies)
    counts += np.bincount(batch[data.MOVIES], minlength=num_movies)
  global_mean = sums.sum() / counts.sum()
  movie_means = ((sums + MOVIE_MEAN_PRIOR_RATINGS * global_mean)
                 / (counts + MOVIE_MEAN_PRIOR_RATINGS))
  return float(global_mean), movie_means


def _predict(examples: types.Artifact, split: str, model_uri: str,
             movie_table: tf.lookup.StaticHashTable) -> Tuple[np.ndarray, ...]:
  """The ranking model's prediction, the rating and the catalog column of every rating
  of `split`: float32 [N], float32 [N], int32 [N]."""
  path = artifacts.ranking_model_path(model_uri)
  loaded, signature, inputs = data.load_signature(path, serving.RANKING_SIGNATURE,
                                                  "ranking model", features.RANKING_FEATURES)
  predicted, labels, movies = [], [], []
  for batch in data.read_ratings(examples, split, _RATING_INPUTS, movie_table,
                                 batch_size=_PREDICT_BATCH_SIZE):
    outputs = signature(**{name: tf.constant(batch[name], features.RAW_FEATURES[name].dtype)
                           for name in inputs})
    predicted.append(_checked_ratings(outputs, len(batch[data.MOVIES]), path))
    labels.append(batch[features.USER_RATING].astype(np.float32))
    movies.append(batch[data.MOVIES].astype(np.int32))
  del loaded  # Held until the last call of its signature.
  predicted = np.concatenate(predicted)
  finite = np.isfinite(predicted)
  if not finite.all():
    raise ValueError(f"The ranking model {path} predicted NaN or infinite ratings for "
                     f"{(~finite).sum()} of {len(predicted)} eval ratings.")
  return predicted, np.concatenate(labels), np.concatenate(movies)


def _checked_ratings(outputs: Dict[str, tf.Tensor], num_ratings: int, path: str) -> np.ndarray:
  """The signature's predicted ratings, float32 [num_ratings]; ValueError naming `path`
  for a missing output or another shape."""
  if serving.PREDICTED_RATING_OUTPUT not in outputs:
    raise ValueError(f"The ranking model {path} returns {sorted(outputs)}, not "
                     f"'{serving.PREDICTED_RATING_OUTPUT}'.")
  ratings = outputs[serving.PREDICTED_RATING_OUTPUT].numpy()
  if ratings.shape != (num_ratings,):
    raise ValueError(f"The ranking model {path} returned '{serving.PREDICTED_RATING_OUTPUT}' "
                     f"of shape {ratings.shape} for {num_ratings} ratings; expected "
                     f"[{num_ratings}].")
  return ratings.astype(np.float32, copy=False)
