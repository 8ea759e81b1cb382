"""Every knob of the pipeline, with its default, in one place.

Each group is a frozen dataclass. The runners turn every field into a command-line flag
(pipeline/flags.py), the pipeline passes the Transform and Trainer groups to their
components as `custom_config`, and the user modules rebuild them with `from_dict`.
Defaults are chosen for real MovieLens (ml-100k to ml-25m), not only the synthetic data.
"""
import dataclasses
from typing import Any, Mapping, Optional, Type, TypeVar

PIPELINE_NAME = "tfrs-pipeline"

# Import paths of the user code, installed with the project (also in the Kubeflow image).
# Import paths rather than module files: nothing is uploaded when the pipeline compiles.
PREPROCESSING_FN = "trainer_module.preprocessing.preprocessing_fn"
RUN_FN = "trainer_module.trainer.run_fn"

# Beam on one machine: in-process DirectRunner. It starts in a second where the
# multi-processing mode spends ~10 s a worker importing TensorFlow, which only pays off
# on data far above ml-1m. The Kubeflow runner defaults to multi-processing.
LOCAL_BEAM_PIPELINE_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")

# Keys of the Trainer's custom_config: {TRAINER_KEY: TrainerConfig fields, TRANSFORM_KEY:
# TransformConfig fields, CATALOG_FILES_KEY: catalog file patterns (added at run time by
# components.retrieval_trainer), CODE_FINGERPRINT_KEY: see pipeline.pipeline}.
TRAINER_KEY = "trainer"
TRANSFORM_KEY = "transform"
CATALOG_FILES_KEY = "catalog_files"
CODE_FINGERPRINT_KEY = "code_fingerprint"

_T = TypeVar("_T")


def _field(default: Any, help_text: str) -> Any:
  return dataclasses.field(default=default, metadata={"help": help_text})


class _FromDict:
  """Rebuilds a config from its `dataclasses.asdict` form, ignoring unknown keys."""

  @classmethod
  def from_dict(cls: Type[_T], values: Optional[Mapping[str, Any]]) -> _T:
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in (values or {}).items() if k in known})


@dataclasses.dataclass(frozen=True)
class DataConfig(_FromDict):
  """How MovieLensExampleGen reads and splits the ratings."""
  split_method: str = _field(
      "random", "Train/eval split: 'random' (deterministic hash of user and movie, the "
      "TFRS tutorials' protocol) or 'temporal' (global time cutoff).")
  eval_fraction: float = _field(0.2, "Fraction of ratings in the eval split.")
  split_seed: int = _field(42, "Seed of the random split.")
  min_rating: float = _field(
      0.0, "Keep only ratings >= this as positives (e.g. 4); 0 keeps every rating.")
  max_bad_lines: int = _field(
      0, "Malformed input lines tolerated (skipped and listed) before the run fails.")


@dataclasses.dataclass(frozen=True)
class SyntheticDataConfig(_FromDict):
  """Size of the built-in synthetic data, used when no --data_dir is given."""
  synthetic_users: int = _field(943, "Users in the synthetic data (ml-100k: 943).")
  synthetic_movies: int = _field(1682, "Movies in the synthetic data (ml-100k: 1682).")
  synthetic_ratings: int = _field(100_000, "Ratings in the synthetic data.")
  synthetic_seed: int = _field(42, "Seed of the synthetic data.")


@dataclasses.dataclass(frozen=True)
class TransformConfig(_FromDict):
  """Knobs of trainer_module.preprocessing.preprocessing_fn."""
  timestamp_buckets: int = _field(
      100, "Quantile buckets of the rating timestamp (query tower input).")
  title_token_min_count: int = _field(
      2, "Title tokens seen fewer times in training map to the OOV bucket.")
  num_oov_buckets: int = _field(
      1, "Out-of-vocabulary buckets per vocabulary (>= 1); unknown ids hash into them, "
      "and the trainer trains every user OOV bucket (--oov_user_rate).")

  def __post_init__(self):
    if self.num_oov_buckets < 1:
      raise ValueError(f"num_oov_buckets must be >= 1 (unknown ids at serving need a "
                       f"bucket), got {self.num_oov_buckets}.")


@dataclasses.dataclass(frozen=True)
class TrainerConfig(_FromDict):
  """Hyperparameters of the two-tower retrieval model (trainer_module/)."""
  embedding_dim: int = _field(64, "Size of the final query and candidate embeddings.")
  hidden_layers: str = _field(
      "", "Comma-separated ReLU layer sizes in each tower before the final linear "
      "projection, e.g. '256,128'; empty for none.")
  optimizer: str = _field("adam", "Optimizer: 'adam' or 'adagrad'.")
  learning_rate: float = _field(0.005, "Learning rate.")
  batch_size: int = _field(
      1024, "Training batch size; also the number of in-batch negatives per example. "
      "The in-batch softmax costs O(batch_size^2) per batch: on CPU, 1024 trains ~5x "
      "faster per example than 4096 (benchmarks/trainer_throughput.py).")
  epochs: int = _field(8, "Passes over the training split.")
  temperature: float = _field(
      0.1, "Softmax temperature of the retrieval loss (embeddings are L2-normalized).")
  l2_regularization: float = _field(0.0, "L2 penalty on the embedding tables.")
  oov_user_rate: float = _field(
      0.02, "Fraction of training examples whose user id is replaced by the OOV bucket, "
      "so unknown users at serving get a trained (popularity-like) embedding.")
  max_title_tokens: int = _field(16, "Title tokens kept per movie (the rest are cut).")
  serving_top_k: int = _field(100, "Movies returned by the exported serving model.")
  seed: int = _field(42, "Seed of initialization and shuffling.")


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig(_FromDict):
  """Full-catalog evaluation and the blessing that gates the Pusher."""
  blessing_k: int = _field(
      100, "The blessing compares hit_rate@blessing_k (keep it well below the catalog "
      "size).")
  min_lift_over_popularity: float = _field(
      0.1, "Bless only if the model's hit_rate@blessing_k beats the popularity "
      "baseline's by this relative margin (0.1 = 10% better).")
  max_drop_vs_blessed: float = _field(
      0.02, "Bless only if hit_rate@blessing_k is at most this much (relative) below the "
      "latest blessed model's, re-evaluated on the same eval split.")
  max_eval_users: int = _field(
      20_000, "Evaluate a seeded sample of this many eval users (0: all). Full-catalog "
      "scoring costs users x movies; ml-25m has 162k users and 62k movies.")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """All knob groups of the pipeline (the synthetic data size is the local runner's)."""
  data: DataConfig = DataConfig()
  transform: TransformConfig = TransformConfig()
  trainer: TrainerConfig = TrainerConfig()
  evaluator: EvaluatorConfig = EvaluatorConfig()


# The groups every runner exposes as flags, by PipelineConfig field.
PIPELINE_CONFIG_GROUPS = {field.name: field.type for field in dataclasses.fields(PipelineConfig)}
