"""Export orchestration: the Trainer's trained models -> the Model artifact's exports.

`export_all` writes the candidate embeddings, the query model, the ranking model (with a
ranking stage) and the serving model with its seen-movies file, laid out as
contracts/artifacts.py says, with the signatures contracts/serving.py describes. Each
part is its own module: query_encoder.py, rating_scorer.py and serving_model.py (the
SavedModels), histories.py (the users' stored histories they share), signatures.py
(signatures over raw features) and artifact_files.py (the plain files).
"""
import contextlib
import dataclasses
from typing import ContextManager, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from contracts import artifacts
from contracts import features
from trainer_module import artifact_files
from trainer_module import data
from trainer_module import ease_factor as ease_factor_lib
from trainer_module import histories as histories_lib
from trainer_module import model as model_lib
from trainer_module import query_encoder as query_encoder_lib
from trainer_module import ranking
from trainer_module import rating_scorer as rating_scorer_lib
from trainer_module import serving_model as serving_model_lib


@dataclasses.dataclass(frozen=True)
class ExportInputs:
  """What `export_all` exports.

  Attributes:
    model_uri: The Trainer's Model artifact directory (query model and embeddings go here,
      laid out as `contracts.artifacts` says).
    serving_model_dir: Where the serving SavedModel goes (the Pusher pushes it).
    tft_output: The Transform output.
    retrieval_model: The trained model.
    raw_catalog: Raw movie features of the whole catalog.
    max_title_tokens: As in training.
    top_k: Movies returned per query by the serving model.
    reference_timestamp: Query time used when a request gives none.
    seen_movies: user id -> movie ids the user rated in training.
    user_histories: int64 [users, max_context], each user index's most recent train
      movie indices (`data.UserHistories.whole`): the context of a query that gives
      none.
    ranker: The trained ranking stage, or None. With one, the ranking model is exported
      too and the serving model gains the ranked signatures (contracts.serving.RANKED_TWINS).
    ranking_candidates: Movies retrieved for the ranking stage to re-order.
    ranking_weight: The predicted rating's share of serving_ranked's order.
    ease_factor: The EASE factor appended to the query and candidate embeddings (every
      export then scores with it), or None.
  """
  model_uri: str
  serving_model_dir: str
  tft_output: tft.TFTransformOutput
  retrieval_model: model_lib.RetrievalModel
  raw_catalog: Mapping[str, tf.Tensor]
  max_title_tokens: int
  top_k: int
  reference_timestamp: int
  seen_movies: Mapping[str, Sequence[str]]
  user_histories: np.ndarray
  ranker: Optional[ranking.DcnRankingModel] = None
  ranking_candidates: int = 0
  ranking_weight: float = 1.0
  ease_factor: Optional[ease_factor_lib.ServingFactor] = None


def without_keras_traces() -> ContextManager[None]:
  """A scope in which SavedModels are written without the Keras layers' call traces.

  Keras's SavedModel serialization traces every layer's call functions so that
  `tf.keras.models.load_model` can revive the layers; these SavedModels are loaded with
  `tf.saved_model.load` and served by their signatures, so the traces only cost export
  time. tf_keras offers the switch only as `Model.save(save_traces=False)`, for a Keras
  model saved alone; this is the scope that option sets. Without it (another tf_keras
  layout) the models are written with the traces, as before.
  """
  try:
    from tf_keras.src.saving.legacy.saved_model import utils  # pylint: disable=g-import-not-at-top
  except ImportError:
    return contextlib.nullcontext()
  return utils.keras_option_scope(save_traces=False)


def export_all(inputs: ExportInputs) -> None:
  """Writes the candidate embeddings, the query model, the ranking model (with a ranker),
  the serving model and its seen-movies file."""
  with without_keras_traces():
    _export_all(inputs)


def _export_all(inputs: ExportInputs) -> None:
  tft_output, retrieval_model, ranker = inputs.tft_output, inputs.retrieval_model, inputs.ranker
  raw_catalog, ease_factor = inputs.raw_catalog, inputs.ease_factor
  embeddings = candidate_embeddings(tft_output, retrieval_model, raw_catalog,
                                    inputs.max_title_tokens, ease_factor)
  movie_ids = features.to_vector(raw_catalog[features.MOVIE_ID]).numpy().tolist()
  titles = features.to_vector(raw_catalog[features.MOVIE_TITLE]).numpy().tolist()
  artifact_files.write_candidates(inputs.model_uri, movie_ids, embeddings)

  reads_context = retrieval_model.uses_context or (ranker is not None and ranker.uses_context)
  histories = (histories_lib.StoredHistories(tft_output, inputs.user_histories)
               if reads_context else None)
  encoder = query_encoder_lib.QueryEncoder(tft_output, retrieval_model, histories, ease_factor)
  tf.saved_model.save(encoder, artifacts.query_model_path(inputs.model_uri),
                      signatures=encoder.signatures())
  scorer, genres = None, None
  if ranker is not None:
    scorer = rating_scorer_lib.RatingScorer(encoder.tft_layer, ranker,
                                            inputs.max_title_tokens, histories)
    tf.saved_model.save(scorer, artifacts.ranking_model_path(inputs.model_uri),
                        signatures=scorer.signatures())
    genres = tf.sparse.to_dense(raw_catalog[features.MOVIE_GENRES], default_value=b"").numpy()
  serving = serving_model_lib.ServingModel(
      encoder, embeddings, movie_ids, titles, inputs.top_k, inputs.reference_timestamp,
      scorer, genres, inputs.ranking_candidates, inputs.ranking_weight)
  tf.saved_model.save(serving, inputs.serving_model_dir, signatures=serving.signatures())
  artifact_files.write_seen_movies(inputs.serving_model_dir, inputs.seen_movies)


def candidate_embeddings(tft_output: tft.TFTransformOutput,
                         retrieval_model: model_lib.RetrievalModel,
                         raw_catalog: Mapping[str, tf.Tensor], max_title_tokens: int,
                         ease_factor: Optional[ease_factor_lib.ServingFactor] = None
                         ) -> np.ndarray:
  """Embeds every catalog movie from its raw features: float32 [num_movies, d], with the
  EASE factor's candidate row appended to each (d then includes its rank) when given."""
  parts = []
  for transformed in data.transformed_catalog(tft_output, raw_catalog, max_title_tokens):
    embedded = retrieval_model.candidate_embedding(transformed).numpy()
    if ease_factor is not None:
      movies = features.to_vector(transformed[features.MOVIE_ID_INDEX]).numpy()
      embedded = np.concatenate([embedded, ease_factor.candidate_rows[movies]], axis=1)
    parts.append(embedded)
  return np.concatenate(parts, axis=0)
