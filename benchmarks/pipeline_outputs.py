"""Where a local pipeline run (LocalDagRunner) left a component's outputs.

TFX writes each output under <pipeline root>/<node id>/<output key>/<execution id>; the
newest execution has the largest id. `evaluation_problem` reads the newest run's model and
eval problem as the RetrievalEvaluator does, and `hit_rates` ranks it, for the scripts that
score its users with other functions.
"""
import glob
import os
from typing import Dict, List, Sequence, Tuple

import trainer_module  # pylint: disable=unused-import  # Sets TF_USE_LEGACY_KERAS first.
from components.retrieval_evaluator import data
from components.retrieval_evaluator import metrics
from contracts import artifacts
from contracts import configs
from ranking_core import scores as scores_lib

from tfx.types import artifact_utils  # pylint: disable=g-bad-import-order
from tfx.types import standard_artifacts  # pylint: disable=g-bad-import-order


def latest_output(pipeline_root: str, node_id: str, output_key: str) -> str:
  """The directory of the newest execution's `output_key` output of `node_id`.

  Raises:
    FileNotFoundError: The node never produced that output under `pipeline_root`.
  """
  pattern = os.path.join(pipeline_root, node_id, output_key, "*")
  paths = [path for path in glob.glob(pattern) if os.path.basename(path).isdigit()]
  if not paths:
    raise FileNotFoundError(f"Nothing matches {pattern}; run the pipeline first.")
  return max(paths, key=lambda path: int(os.path.basename(path)))


def rating_examples(pipeline_root: str) -> standard_artifacts.Examples:
  """The newest run's raw ratings (MovieLensExampleGen's output), train and eval splits."""
  examples = standard_artifacts.Examples()
  examples.uri = latest_output(pipeline_root, "MovieLensExampleGen", artifacts.EXAMPLES_KEY)
  examples.split_names = artifact_utils.encode_split_names(
      [artifacts.TRAIN_SPLIT, artifacts.EVAL_SPLIT])
  return examples


def evaluation_problem(pipeline_root: str) -> Tuple[str, List[str], data.EvalData]:
  """The newest run's model and eval problem, read as the RetrievalEvaluator reads them.

  Returns:
    (the RetrievalTrainer's newest model uri, its catalog movie ids, the eval users, pairs
    and train exclusions with the Evaluator's default sampling).
  """
  examples = rating_examples(pipeline_root)
  model_uri = latest_output(pipeline_root, "RetrievalTrainer", "model")
  catalog = data.Candidates.load(model_uri).movie_ids
  config = configs.EvaluatorConfig()
  eval_data = data.read_eval_data(examples, artifacts.TRAIN_SPLIT, artifacts.EVAL_SPLIT,
                                  catalog, config.max_eval_users, config.eval_seed)
  return model_uri, catalog, eval_data


def hit_rates(score_fn: scores_lib.ScoreFn, eval_data: data.EvalData, num_movies: int,
              ks: Sequence[int] = (10, 100)) -> Dict[str, float]:
  """hit_rate@k of `score_fn` on the eval pairs, train movies excluded, as the Evaluator
  ranks them, and top_k_accuracy@k (train movies not excluded)."""
  ranked = metrics.rank(score_fn, num_movies, eval_data.eval_users, eval_data.eval_movies,
                        eval_data.train_users, eval_data.train_movies, depth=max(ks),
                        batch_size=512)
  summary = metrics.summarize(ranked, ks)
  return {f"{name}@{k}": summary[f"{name}@{k}"] for k in ks
          for name in ("hit_rate", "top_k_accuracy")}
