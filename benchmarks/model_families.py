"""Model families benchmark: every query/candidate tower family on the same Transform output.

For each data set, runs the pipeline up to Transform once (MovieLensExampleGen,
UserContext, StatisticsGen, SchemaGen, CurateSchema, ExampleValidator, AnomaliesGate,
Transform; cached across runs of this script), then for each family calls the Trainer's `run_fn` exactly as
the Trainer does, scores the exported model with the RetrievalEvaluator's executor (the
pipeline's own metrics, against the popularity baseline) and times the serving model.
Prints one table:

  hit@10, hit@100      hit_rate@k over eval pairs, the user's train movies excluded
  top100               top_k_accuracy@100 (no exclusion; TFRS FactorizedTopK's metric)
  ex/s                 training examples per second, median of the epochs after the first
  epochs               epochs run / epoch kept (validation slice of train, early stopping)
  size MB              the serving SavedModel on disk (Format-Serving)
  p50 ms               serving_default, one known user per call, in process
  train s              run_fn wall seconds (training, validation and exports)

  python benchmarks/model_families.py --data_dirs=synthetic,PATH/ml-latest-small \
      [--families=history/features,user_id/features] [--root=/tmp/model_families] \
      [--max_context=50] [--trainer=embedding_dim=128,temperature=0.1]

Results also go to <root>/results.json, and each data set's rows to its results file
(benchmarks/results.py): docs/benchmarks/model_families.md for the synthetic data,
model_families-<data set>.md for each other one (e.g. model_families-ml-latest-small.md).
"""
import dataclasses
import json
import os
import shutil
import statistics
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging

import pipeline_outputs
import results as results_files
import trainer_module  # pylint: disable=unused-import  # Sets TF_USE_LEGACY_KERAS first.
from components.retrieval_evaluator import executor as evaluator
from components.retrieval_evaluator import results as evaluation_results
from contracts import artifacts
from contracts import configs
from contracts import features
from movielens import synthetic
from pipeline import pipeline
from trainer_module import trainer

import numpy as np  # pylint: disable=g-bad-import-order
import tensorflow as tf  # pylint: disable=g-bad-import-order
from tfx import v1 as tfx  # pylint: disable=g-bad-import-order
from tfx.types import artifact_utils  # pylint: disable=g-bad-import-order
from tfx.types import standard_artifacts  # pylint: disable=g-bad-import-order

SYNTHETIC = "synthetic"
# Every query tower with the default candidate tower, and the deep-hash candidate tower
# with the default query tower.
DEFAULT_FAMILIES = ("user_id/features", "history/features", "sequential_attention/features",
                    "sequential_moe/features", "history/deep_hash")

_DATA_DIRS = flags.DEFINE_list(
    "data_dirs", [SYNTHETIC], f"MovieLens directories or zips; '{SYNTHETIC}' is the "
    "built-in synthetic data (ml-100k format).")
_FAMILIES = flags.DEFINE_list("families", list(DEFAULT_FAMILIES),
                              "query_tower/candidate_tower pairs to train.")
_ROOT = flags.DEFINE_string("root", "/tmp/model_families", "Working directory.")
_LATENCY_CALLS = flags.DEFINE_integer("latency_calls", 300, "Timed single-user calls.")
_MAX_CONTEXT = flags.DEFINE_integer(
    "max_context", configs.ContextConfig().max_context,
    "Context movies per rating (the UserContext component's max_context).")
_TRAINER_FLAGS = flags.DEFINE_list(
    "trainer", [], "Extra TrainerConfig fields for every family, as name=value.")


@dataclasses.dataclass
class Upstream:
  """What the Trainer and the Evaluator read, from the pipeline run up to Transform."""
  ratings_uri: str  # MovieLensExampleGen's ratings (what the Evaluator reads).
  catalog_pattern: str
  transform_graph: str
  transformed_train: str
  transformed_eval: str


def run_upstream(data_dir: str, root: str, config: configs.PipelineConfig) -> Upstream:
  """Runs the pipeline's components up to Transform (cached) and finds their outputs."""
  components = pipeline.create_components(data_dir, os.path.join(root, "serving"), config)
  upstream = components[:components.index(
      next(c for c in components if isinstance(c, tfx.components.Transform))) + 1]
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      os.path.join(root, "metadata.sqlite"))
  tfx.orchestration.LocalDagRunner().run(pipeline.create_pipeline(
      pipeline_name="model-families", pipeline_root=root, components=upstream,
      metadata_connection_config=metadata))
  transformed = pipeline_outputs.latest_output(root, "Transform", "transformed_examples")
  return Upstream(
      ratings_uri=pipeline_outputs.latest_output(root, "MovieLensExampleGen",
                                                 artifacts.EXAMPLES_KEY),
      catalog_pattern=os.path.join(
          pipeline_outputs.latest_output(root, "MovieLensExampleGen", artifacts.MOVIES_KEY),
          f"Split-{artifacts.CATALOG_SPLIT}", "*"),
      transform_graph=pipeline_outputs.latest_output(root, "Transform", "transform_graph"),
      transformed_train=os.path.join(transformed, f"Split-{artifacts.TRAIN_SPLIT}", "*"),
      transformed_eval=os.path.join(transformed, f"Split-{artifacts.EVAL_SPLIT}", "*"))


def train_family(upstream: Upstream, model_uri: str, config: configs.PipelineConfig) -> float:
  """Calls run_fn as the Trainer does; returns its wall seconds."""
  fn_args = tfx.components.FnArgs(
      train_files=[upstream.transformed_train], eval_files=[upstream.transformed_eval],
      transform_output=upstream.transform_graph,
      serving_model_dir=os.path.join(model_uri, "Format-Serving"),
      model_run_dir=model_uri + "_run",
      custom_config={**pipeline.trainer_custom_config(config),
                     configs.CATALOG_FILES_KEY: [upstream.catalog_pattern]})
  start = time.perf_counter()
  trainer.run_fn(fn_args)
  return time.perf_counter() - start


def evaluate(upstream: Upstream, model_uri: str,
             config: configs.EvaluatorConfig) -> Dict[str, Any]:
  """The RetrievalEvaluator executor's metrics.json for the model (popularity included)."""
  examples = standard_artifacts.Examples()
  examples.uri = upstream.ratings_uri
  examples.split_names = artifact_utils.encode_split_names(
      [artifacts.TRAIN_SPLIT, artifacts.EVAL_SPLIT])
  model = standard_artifacts.Model()
  model.uri = model_uri
  evaluation = standard_artifacts.ModelEvaluation()
  evaluation.uri = model_uri + "_evaluation"
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = model_uri + "_blessing"
  evaluator.Executor().Do({evaluator.EXAMPLES_KEY: [examples], evaluator.MODEL_KEY: [model]},
                          {evaluator.EVALUATION_KEY: [evaluation],
                           evaluator.BLESSING_KEY: [blessing]},
                          dataclasses.asdict(config))
  return evaluation_results.load(evaluation.uri)


def directory_mb(path: str) -> float:
  return sum(os.path.getsize(os.path.join(folder, name))
             for folder, _, names in os.walk(path) for name in names) / 2**20


def serving_p50_ms(serving_dir: str, users: Sequence[str], calls: int) -> float:
  """Median milliseconds of serving_default for one known user per call, outputs fetched."""
  signature = tf.saved_model.load(serving_dir).signatures["serving_default"]
  for user in users[:20]:  # Warm-up.
    signature(user_id=tf.constant([user]))
  latencies = []
  for i in range(calls):
    start = time.perf_counter()
    for value in signature(user_id=tf.constant([users[i % len(users)]])).values():
      value.numpy()
    latencies.append(time.perf_counter() - start)
  return 1e3 * float(np.median(latencies))


def _config(family: Optional[str], extra: Sequence[str]) -> configs.PipelineConfig:
  """The pipeline config of one family: --max_context, the family's towers, --trainer."""
  context = configs.ContextConfig(max_context=_MAX_CONTEXT.value)
  if family is None:
    return configs.PipelineConfig(context=context)
  query_tower, candidate_tower = family.split("/")
  fields = {"query_tower": query_tower, "candidate_tower": candidate_tower}
  # Each flag's type; list knobs take their comma-separated string as it is.
  flag_types = {group_cls.flag_name(knob.name): knob.type
                for _, group_cls in configs.TrainerConfig.groups()
                for knob in dataclasses.fields(group_cls)}
  for item in extra:
    name, value = item.split("=", 1)
    field_type = flag_types[name]
    fields[name] = (value.lower() in ("1", "true") if field_type is bool
                    else field_type(value) if field_type in (int, float, str) else value)
  return configs.PipelineConfig(trainer=configs.TrainerConfig.from_flags(**fields),
                                context=context)


def _data_dir(name: str, root: str) -> Tuple[str, str]:
  if name == SYNTHETIC:
    return SYNTHETIC, synthetic.ensure_generated(os.path.join(root, "synthetic_data"))
  return os.path.basename(name.rstrip("/")).removesuffix(".zip"), name


def main(argv):
  del argv
  results: List[Dict[str, Any]] = []
  results_path = os.path.join(_ROOT.value, "results.json")
  for name in _DATA_DIRS.value:
    label, data_dir = _data_dir(name, _ROOT.value)
    root = os.path.join(_ROOT.value, label)
    upstream = run_upstream(data_dir, root, _config(None, ()))
    known_users = sorted(trainer_users(upstream))
    for family in _FAMILIES.value:
      config = _config(family, _TRAINER_FLAGS.value)
      model_uri = os.path.join(root, "models", family.replace("/", "__"))
      for path in (model_uri, model_uri + "_run", model_uri + "_evaluation",
                   model_uri + "_blessing"):
        shutil.rmtree(path, ignore_errors=True)
      seconds = train_family(upstream, model_uri, config)
      metrics = evaluate(upstream, model_uri, config.evaluator)
      with open(artifacts.training_history_path(model_uri)) as f:
        history = json.load(f)
      serving_dir = os.path.join(model_uri, "Format-Serving")
      row = {
          "data": label, "family": family,
          "hit_rate@10": metrics["model"]["hit_rate@10"],
          "hit_rate@100": metrics["model"]["hit_rate@100"],
          "top_k_accuracy@100": metrics["model"]["top_k_accuracy@100"],
          "popularity": {k: metrics["baseline_popularity"][k]
                         for k in ("hit_rate@10", "hit_rate@100", "top_k_accuracy@100")},
          "examples_per_second": statistics.median(history["examples_per_second"][1:]
                                                   or history["examples_per_second"]),
          "epochs_run": len(history["mean_loss"]), "epoch_kept": history["epoch_kept"][0],
          "model_mb": directory_mb(serving_dir),
          "serving_p50_ms": serving_p50_ms(serving_dir, known_users, _LATENCY_CALLS.value),
          "train_seconds": seconds,
      }
      results.append(row)
      logging.info("%s", row)
      os.makedirs(_ROOT.value, exist_ok=True)
      with open(results_path, "w") as f:
        json.dump(results, f, indent=1)
  print(format_table(results))
  print(f"Results: {results_path}")
  write_results_files(results)


def write_results_files(rows: Sequence[Dict[str, Any]]) -> None:
  """One results file per data set, holding that data set's rows."""
  by_data: Dict[str, List[Dict[str, Any]]] = {}
  for row in rows:
    by_data.setdefault(row["data"], []).append(row)
  settings = (f"`--max_context={_MAX_CONTEXT.value}`"
              + (f", `--trainer={','.join(_TRAINER_FLAGS.value)}`"
                 if _TRAINER_FLAGS.value else ", the default TrainerConfig"))
  for label, data_rows in by_data.items():
    pop = data_rows[0]["popularity"]
    table = [["popularity (baseline)", f"{pop['hit_rate@10']:.4f}",
              f"{pop['hit_rate@100']:.4f}", f"{pop['top_k_accuracy@100']:.4f}"]
             + [""] * 5]
    table += [[row["family"], f"{row['hit_rate@10']:.4f}", f"{row['hit_rate@100']:.4f}",
               f"{row['top_k_accuracy@100']:.4f}", f"{row['examples_per_second']:,.0f}",
               f"{row['epochs_run']}/{row['epoch_kept']}", f"{row['model_mb']:.1f}",
               f"{row['serving_p50_ms']:.2f}", f"{row['train_seconds']:.0f}"]
              for row in data_rows]
    results_files.write(
        results_files.results_name(__file__, label, use_flag=False),
        f"Model families on {label}", [(
            "Every family on one Transform output",
            f"Data: {label}; {settings}. Columns as in the script's docstring: hit@k is "
            "hit_rate@k with the user's train movies excluded, top100 is "
            "top_k_accuracy@100, epochs is run / kept, p50 is serving_default for one "
            "known user per call, in process.\n\n" + results_files.table(
                ["family", "hit@10", "hit@100", "top100", "ex/s", "epochs", "size MB",
                 "p50 ms", "train s"], table))])


def trainer_users(upstream: Upstream) -> List[str]:
  """User ids of the train split (from the Transform vocabulary)."""
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  output = tft.TFTransformOutput(upstream.transform_graph)
  return [u.decode() for u in output.vocabulary_by_name(features.USER_ID_VOCAB)]


def format_table(results: Sequence[Dict[str, Any]]) -> str:
  header = (f"{'data':<16} {'family':<30} {'hit@10':>7} {'hit@100':>8} {'top100':>7} "
            f"{'ex/s':>8} {'epochs':>7} {'size MB':>8} {'p50 ms':>7} {'train s':>8}")
  lines = [header, "-" * len(header)]
  seen_data = set()
  for row in results:
    if row["data"] not in seen_data:
      seen_data.add(row["data"])
      pop = row["popularity"]
      lines.append(f"{row['data']:<16} {'popularity (baseline)':<30} "
                   f"{pop['hit_rate@10']:>7.4f} {pop['hit_rate@100']:>8.4f} "
                   f"{pop['top_k_accuracy@100']:>7.4f}")
    lines.append(
        f"{row['data']:<16} {row['family']:<30} {row['hit_rate@10']:>7.4f} "
        f"{row['hit_rate@100']:>8.4f} {row['top_k_accuracy@100']:>7.4f} "
        f"{row['examples_per_second']:>8,.0f} {row['epochs_run']:>3}/{row['epoch_kept']:<3} "
        f"{row['model_mb']:>8.1f} {row['serving_p50_ms']:>7.2f} {row['train_seconds']:>8.0f}")
  return "\n".join(lines)


if __name__ == "__main__":
  app.run(main)
