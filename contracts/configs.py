"""Every knob of the pipeline, with its default and its allowed values, in one place.

Each group is a frozen dataclass (contracts/config_fields.py says how a knob is declared).
The runners turn every field into a command-line flag (config_flags.py); the components
derive their execution parameters from the same fields (components/component_params.py);
the pipeline passes the Transform and Trainer groups to their user code as
`custom_config`, which rebuilds them with `from_dict`. The Trainer's knobs form one
`TrainerConfig` of five groups (towers, optimization, serving, ranking stage, EASE
factor), each with the flags it always had.

Every field declares its check next to its default, and a config checks all of them when it
is built, so a bad value fails when the flags are parsed, before any component runs, with a
message that names the flag. Defaults are chosen for real MovieLens (ml-100k to ml-25m),
not only the synthetic data.
"""
import dataclasses
from typing import List, Optional, Tuple

from contracts import config_fields

PIPELINE_NAME = "tfrs-pipeline"

# Import paths of the user code, installed with the project (also in the Kubeflow image).
# Import paths rather than module files: nothing is uploaded when the pipeline compiles.
PREPROCESSING_FN = "trainer_module.preprocessing.preprocessing_fn"
RUN_FN = "trainer_module.trainer.run_fn"


def direct_runner_args(num_workers: int) -> List[str]:
  """Beam arguments of the DirectRunner with `num_workers` workers.

  One worker runs in-process ("in_memory"): it starts in a second, where each
  multi-processing worker first spends seconds importing TensorFlow. More workers run as
  processes, 0 meaning one per CPU: they pay off on large data sets, where the work
  outweighs that start.
  """
  if num_workers < 0:
    raise ValueError(f"direct_num_workers must be >= 0, got {num_workers}.")
  if num_workers == 1:
    return ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
  return ["--direct_running_mode=multi_processing", f"--direct_num_workers={num_workers}"]


# Beam on one machine (local_runner.py's default --direct_num_workers 1): in-process.
# The Kubeflow runner defaults to multi-processing, one worker per CPU.
LOCAL_BEAM_PIPELINE_ARGS = tuple(direct_runner_args(1))

# Keys of the Trainer's custom_config: {TRAINER_KEY: TrainerConfig (nested, as
# dataclasses.asdict writes it), TRANSFORM_KEY: TransformConfig fields, CONTEXT_KEY:
# ContextConfig fields, DATA_KEY: DataConfig fields (the Trainer reads the eval split's
# share, which its validation mimics), CATALOG_FILES_KEY: catalog file patterns and
# HISTORY_FILES_KEY: user history file patterns (added at run time by
# components.retrieval_trainer), CODE_FINGERPRINT_KEY: see pipeline.pipeline}.
TRAINER_KEY = "trainer"
TRANSFORM_KEY = "transform"
CONTEXT_KEY = "context"
DATA_KEY = "data"
CATALOG_FILES_KEY = "catalog_files"
HISTORY_FILES_KEY = "history_files"
CODE_FINGERPRINT_KEY = "code_fingerprint"

# Split methods of DataConfig.split_method.
RANDOM_SPLIT = "random"
TEMPORAL_SPLIT = "temporal"

# The knob machinery (checks, fields, config classes) lives in config_fields.py; these
# short names are what the declarations below use.
positive = config_fields.positive
non_negative = config_fields.non_negative
at_least = config_fields.at_least
in_range = config_fields.in_range
one_of = config_fields.one_of
not_blank = config_fields.not_blank
parse_int_list = config_fields.parse_int_list
_field = config_fields.field
_list_field = config_fields.list_field
_Config = config_fields.Config


def parse_hidden_layers(spec: str) -> List[int]:
  """--hidden_layers as the command line gives it: '256,128' -> [256, 128]; '' -> []."""
  return parse_int_list(spec, "hidden_layers")


# ------------------------------------------------------------------------------- groups


@dataclasses.dataclass(frozen=True)
class DataConfig(_Config):
  """How MovieLensExampleGen reads and splits the ratings."""
  split_method: str = _field(
      RANDOM_SPLIT, "Train/eval split: 'random' (deterministic hash of user and movie, the "
      "TFRS tutorials' protocol) or 'temporal' (global time cutoff).",
      one_of(RANDOM_SPLIT, TEMPORAL_SPLIT))
  eval_fraction: float = _field(0.2, "Fraction of ratings in the eval split.",
                                in_range(0.0, 1.0, include_low=False))
  split_seed: int = _field(42, "Seed of the random split.")
  min_rating: float = _field(
      0.0, "Keep only ratings >= this as positives (e.g. 4); 0 keeps every rating.",
      in_range(0.0, 5.0, include_high=True))
  max_bad_lines: int = _field(
      0, "Malformed input lines tolerated (skipped and listed) before the run fails.",
      non_negative)


@dataclasses.dataclass(frozen=True)
class SyntheticDataConfig(_Config):
  """Size of the built-in synthetic data, used when no --data_dir is given."""
  synthetic_users: int = _field(943, "Users in the synthetic data (ml-100k: 943).", positive)
  synthetic_movies: int = _field(1682, "Movies in the synthetic data (ml-100k: 1682).",
                                 positive)
  synthetic_ratings: int = _field(100_000, "Ratings in the synthetic data.", positive)
  synthetic_seed: int = _field(42, "Seed of the synthetic data.")


@dataclasses.dataclass(frozen=True)
class TransformConfig(_Config):
  """Knobs of trainer_module.preprocessing.preprocessing_fn."""
  timestamp_buckets: int = _field(
      100, "Quantile buckets of the rating timestamp (query tower input).", at_least(2))
  title_token_min_count: int = _field(
      2, "Title tokens seen fewer times in training map to the OOV bucket.", non_negative)
  num_oov_buckets: int = _field(
      1, "Out-of-vocabulary buckets per vocabulary (>= 1); unknown ids hash into them, "
      "and the trainer trains every user OOV bucket (--oov_user_rate).", at_least(1))


@dataclasses.dataclass(frozen=True)
class ContextConfig(_Config):
  """How the UserContext component carves the validation split and writes each user's
  history (components/user_context/), which the Trainer joins to the ratings by user."""
  max_context: int = _field(
      50, "Movies in each rating's context: the user's most recent train movies other "
      "than the rating's own (also what the model stores per user for serving).", positive)
  validation_fraction: float = _field(
      0.05, "Share of the TRAIN split's ratings that UserContext writes to a validation "
      "split (never the eval split) to choose the epoch: training keeps the weights of "
      "the epoch with the best validation hit rate and stops after "
      "--early_stopping_patience epochs without gain. 0: no validation, train every "
      "epoch.", in_range(0.0, 0.5))
  validation_seed: int = _field(
      42, "Seed of the hash of (user, movie) that picks the validation ratings and of "
      "the order the splits are written in.")


# Query towers (TrainerConfig.query_tower) and candidate towers (candidate_tower), by
# name; trainer_module/towers.py builds them and takes the names from here.
USER_ID_TOWER = "user_id"
HISTORY_TOWER = "history"
SEQUENTIAL_ATTENTION_TOWER = "sequential_attention"
SEQUENTIAL_MOE_TOWER = "sequential_moe"
QUERY_TOWERS = (USER_ID_TOWER, HISTORY_TOWER, SEQUENTIAL_ATTENTION_TOWER, SEQUENTIAL_MOE_TOWER)
FEATURES_TOWER = "features"
DEEP_HASH = "deep_hash"
CANDIDATE_TOWERS = (FEATURES_TOWER, DEEP_HASH)
TABLE = "table"
CONTEXT_EMBEDDINGS = (TABLE, DEEP_HASH)
NO_RANKING = "none"
DCN_RANKING = "dcn"
RANKING_MODELS = (NO_RANKING, DCN_RANKING)


@dataclasses.dataclass(frozen=True)
class TowerConfig(_Config):
  """The query and candidate towers (trainer_module/towers.py, model.py)."""
  query_tower: str = _field(
      HISTORY_TOWER, "Query tower: 'user_id' (user id and time embeddings), 'history' (mean "
      "of the context movies' embeddings), 'sequential_attention' (masked self-attention "
      "over the context), 'sequential_moe' (attention and GRU experts over the context, "
      "mixed by a learned gate).", one_of(*QUERY_TOWERS))
  candidate_tower: str = _field(
      FEATURES_TOWER, "Candidate tower: 'features' (movie id, title token and genre "
      "embeddings) or 'deep_hash' (deep hash embedding of the movie id, no per-movie "
      "table, and genres).", one_of(*CANDIDATE_TOWERS))
  embedding_dim: int = _field(64, "Size of the final query and candidate embeddings.",
                              positive)
  hidden_layers: Tuple[int, ...] = _list_field(
      (), int, "Comma-separated ReLU layer sizes in each tower before the final linear "
      "projection, e.g. '256,128'; empty for none.", config_fields.int_list())
  num_heads: int = _field(2, "Attention heads of the sequential query towers.", positive)
  context_embedding: str = _field(
      TABLE, "Context movie embeddings of the sequential towers: 'table' or "
      "'deep_hash'.", one_of(*CONTEXT_EMBEDDINGS))
  num_hashes: int = _field(64, "Hash functions of the deep hash embeddings.", positive)
  history_user_id: bool = _field(
      False, "Add the user id embedding to the context query towers (history, "
      "sequential_*); without it they know a user only by their movies.")
  history_time: bool = _field(
      False, "Add the query time (timestamp bucket embedding and normalized timestamp) to "
      "the context query towers (history, sequential_*), as the user_id tower has it.")
  user_id_head: bool = _field(
      True, "Beside a context query tower (history, sequential_*), train the user_id "
      "tower and its own candidate tower as a second two-tower model in the same pass "
      "(its own loss, temperature and learning rate: the user_id family's defaults); a "
      "movie scores by the sum of both models' cosines. The head knows a user by their "
      "id, which the context towers do not; a user it never saw gets its trained OOV "
      "embedding. Ignored by the user_id query tower.")
  num_interests: int = _field(
      0, "Interest vectors of the 'history' query tower beside its mean context "
      "embedding, each an attention-weighted pooling of the context; a movie scores by "
      "the query vector it matches best. Helps users of several tastes; each interest "
      "adds an attention pooling to every training step. 0: the mean only.", non_negative)
  l2_regularization: float = _field(0.0, "L2 penalty on the embedding tables.", non_negative)
  max_title_tokens: int = _field(16, "Title tokens kept per movie (the rest are cut).",
                                 positive)

  CONFLICT_FIELDS = ("query_tower", "num_interests")

  def conflict(self) -> Optional[str]:
    if self.num_interests and self.query_tower != HISTORY_TOWER:
      return (f"--num_interests applies to the {HISTORY_TOWER!r} query tower, not "
              f"--query_tower={self.query_tower!r}.")
    return None


@dataclasses.dataclass(frozen=True)
class OptimizationConfig(_Config):
  """How the retrieval model is fitted and its epoch chosen (trainer_module/training.py,
  validation.py). learning_rate, temperature and epochs at 0 take the query tower's
  default (trainer_module.towers.FAMILY_DEFAULTS), tuned for each family."""
  optimizer: str = _field("adam", "Optimizer: 'adam' or 'adagrad'.", one_of("adam", "adagrad"))
  learning_rate: float = _field(0.0, "Learning rate; 0: the query tower's default.",
                                non_negative)
  batch_size: int = _field(
      1024, "Training batch size; also the number of in-batch negatives per example. "
      "The in-batch softmax costs O(batch_size^2) per batch, so larger batches train "
      "slower per example (benchmarks/trainer_throughput.py measures it).", at_least(2))
  epochs: int = _field(
      0, "Most passes over the training split (early stopping may end sooner); 0: the "
      "query tower's default.", non_negative)
  temperature: float = _field(
      0.0, "Softmax temperature of the retrieval loss (embeddings are L2-normalized); 0: "
      "the query tower's default.", non_negative)
  early_stopping_patience: int = _field(
      2, "Epochs without a better validation hit rate before training stops.", positive)
  oov_user_rate: float = _field(
      0.02, "Fraction of training examples whose user id is replaced by the OOV bucket, "
      "so unknown users at serving get a trained (popularity-like) embedding.",
      in_range(0.0, 1.0, include_high=True))
  seed: int = _field(42, "Seed of initialization and shuffling.")
  shuffle_buffer: int = _field(
      1 << 17, "Training examples in the shuffle buffer the Trainer streams through "
      "(UserContext already writes them in a seeded random order; the buffer gives each "
      "epoch a new order). Bounds the Trainer's memory whatever the data size.", positive)


@dataclasses.dataclass(frozen=True)
class ServingConfig(_Config):
  """The exported serving model (trainer_module/serving_model.py)."""
  FLAG_PREFIX = "serving_"
  top_k: int = _field(100, "Movies returned by the exported serving model.", positive)


@dataclasses.dataclass(frozen=True)
class RankingConfig(_Config):
  """The optional ranking stage after retrieval (trainer_module/ranking.py)."""
  FLAG_PREFIX = "ranking_"
  model: str = _field(
      NO_RANKING, "Ranking stage after retrieval: 'dcn' also trains a Deep & Cross Network "
      "(tfrs.layers.dcn.Cross) that predicts a user's rating of a movie; the serving model "
      "then has a 'serving_ranked' signature (the retrieved movies re-ordered by predicted "
      "rating) and the Evaluator reports its RMSE on the eval split against the train "
      "mean. 'none': retrieval only.", one_of(*RANKING_MODELS))
  candidates: int = _field(
      100, "Movies retrieved for the ranking stage to re-order in 'serving_ranked' (it "
      "returns the best min(serving_top_k, ranking_candidates) of them).", positive)
  weight: float = _field(
      0.25, "Share of the predicted rating in serving_ranked's order: the retrieved movies "
      "are ordered by (1 - w) x their retrieval score + w x their predicted rating, each "
      "standardized over the user's retrieved movies (ranking_core.scores."
      "ranked_order_key). 1: by predicted rating alone; 0: retrieval's order.",
      in_range(0.0, 1.0, include_high=True))
  epochs: int = _field(
      10, "Most passes of the ranking stage over the training split (early stopping on "
      "the validation RMSE may end sooner).", positive)
  learning_rate: float = _field(0.001, "Learning rate (Adam) of the ranking stage.",
                                positive)


@dataclasses.dataclass(frozen=True)
class EaseFactorConfig(_Config):
  """The EASE factor appended to the towers (trainer_module/ease_factor.py) and how its
  weights are chosen (ease_factor_selection.py)."""
  FLAG_PREFIX = "ease_factor_"
  rank: int = _field(
      512, "Rank of the EASE factor: EASE (the Evaluator's closed-form baseline) is fitted "
      "on the training ratings, factorized to this rank and appended to both towers' "
      "embeddings, so a movie scores by the towers' cosine + w x its low-rank EASE score "
      "from the user's whole train history (trainer_module/ease_factor.py). Each user "
      "stores 4 x rank bytes in the serving model. 0: the towers alone.",
      non_negative)
  weights: Tuple[float, ...] = _list_field(
      (0, 0.5, 1, 2, 4, 8), float, "Candidate weights w of the EASE factor (0 drops the "
      "factor). The validation slice keeps the middle one of the weights whose hit rate "
      "is within one standard error of the best's, so noise in a small slice does not "
      "pick an edge of a flat curve (trainer_module/ease_factor_selection.py). Without a "
      "validation slice (--validation_fraction 0) a single weight is used as given, and "
      "a list serves the factor at w = 1.", config_fields.weight_list)
  l2: float = _field(
      200.0, "L2 penalty (lambda) of the EASE factor's fit (the Evaluator's baseline has "
      "its own, --ease_l2).", positive)
  max_items: int = _field(
      10_000, "The EASE factor models at most this many movies, the most rated (its fit "
      "needs 12 x items^2 bytes); the others get a zero factor.", positive)
  session_window: int = _field(
      8, "Ratings per session row of the EASE factor's fit: each run of this many "
      "consecutive ratings of a user's time-ordered train history is one more row of the "
      "fit, so movies rated in one sitting weigh more together (closed_form/ease.py).",
      at_least(2))
  session_weights: Tuple[float, ...] = _list_field(
      (0, 0.25), float, "Candidate weights of the session rows in the EASE factor's fit "
      "(0: plain EASE); the validation slice keeps the best, jointly with "
      "--ease_factor_weights. Without a validation slice the largest is used.",
      config_fields.weight_list)


@dataclasses.dataclass(frozen=True)
class TrainerConfig(config_fields.GroupedConfig):
  """Everything the Trainer's run_fn reads, one group per concern; each group's knobs are
  flags of both runners (`--query_tower`, `--ranking_epochs`, `--ease_factor_rank`, ...).
  """
  towers: TowerConfig = TowerConfig()
  optimization: OptimizationConfig = OptimizationConfig()
  serving: ServingConfig = ServingConfig()
  ranking: RankingConfig = RankingConfig()
  ease_factor: EaseFactorConfig = EaseFactorConfig()


# Choices of EvaluatorConfig: the metric families the blessing can gate on and the
# baselines it can bless against (components/retrieval_evaluator/metric_names.py and
# blessing.py spell the same names; tests/test_retrieval_evaluator.py checks they agree).
GATE_METRICS = ("hit_rate", "recall", "top_k_accuracy")
BLESSING_BASELINES = ("popularity", "ease")


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig(_Config):
  """Full-catalog evaluation, its baselines and report, and the blessing that gates the
  Pusher."""
  ks: str = _field("10,50,100", "Comma-separated cutoffs of hit_rate, recall and "
                   "top_k_accuracy; blessing_k is always added.",
                   config_fields.int_list_spec("ks", allow_empty=False))
  blessing_k: int = _field(
      100, "The blessing compares <gate_metric>@blessing_k (keep it well below the catalog "
      "size).", positive)
  gate_metric: str = _field(
      "hit_rate", "Metric family the blessing compares, at blessing_k: hit_rate, recall or "
      "top_k_accuracy.", one_of(*GATE_METRICS))
  bless_against: str = _field(
      "popularity", "Baseline the model must beat to be blessed: 'popularity' or 'ease'. "
      "The report always shows both.", one_of(*BLESSING_BASELINES))
  min_lift_over_popularity: float = _field(
      0.1, "With --bless_against popularity: bless only if the gate metric beats the "
      "popularity baseline's by this relative margin (0.1 = 10% better).",
      in_range(-1.0, float("inf"), include_low=False))
  min_lift_over_ease: float = _field(
      0.0, "With --bless_against ease: bless only if the gate metric beats EASE's by this "
      "relative margin (0 = at least equal).", in_range(-1.0, float("inf"), include_low=False))
  max_drop_vs_blessed: float = _field(
      0.02, "Bless only if the gate metric is at most this much (relative) below the "
      "latest blessed model's, re-evaluated on the same eval split.", in_range(0.0, 1.0))
  max_eval_users: int = _field(
      20_000, "Evaluate a seeded sample of this many eval users (0: all). Full-catalog "
      "scoring costs users x movies; ml-25m has 162k users and 62k movies.", non_negative)
  eval_seed: int = _field(
      42, "Seed of the eval-user sample (--max_eval_users) and of the report's example "
      "users.")
  ease_l2: float = _field(
      200.0, "L2 penalty (lambda) of the EASE baseline, fitted on the train split.", positive)
  ease_max_items: int = _field(
      20_000, "EASE models at most this many movies, the most rated (its fit needs "
      "12 x items^2 bytes); the others are never recommended by it.", positive)
  report_users: int = _field(
      5, "Users shown in the HTML report with their last rated movies and top 10s.",
      non_negative)

  @property
  def evaluated_ks(self) -> Tuple[int, ...]:
    """The cutoffs evaluated: `ks` and `blessing_k`, sorted."""
    return tuple(sorted(set(parse_int_list(self.ks, "ks")) | {self.blessing_k}))


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """All knob groups of the pipeline (the synthetic data size is the local runner's)."""
  data: DataConfig = DataConfig()
  context: ContextConfig = ContextConfig()
  transform: TransformConfig = TransformConfig()
  trainer: TrainerConfig = TrainerConfig()
  evaluator: EvaluatorConfig = EvaluatorConfig()


# The groups every runner exposes as flags, by PipelineConfig field.
PIPELINE_CONFIG_GROUPS = {field.name: field.type for field in dataclasses.fields(PipelineConfig)}


@dataclasses.dataclass(frozen=True)
class VertexTrainingConfig(_Config):
  """The Trainer as a Vertex AI custom training job of several replicas
  (components/vertex_trainer.py). A Kubeflow runner group only, outside PipelineConfig:
  one machine has no replicas to give, so local_runner.py has no such flags."""
  FLAG_PREFIX = "trainer_"
  DEFAULT_MACHINE_TYPE = "n1-standard-8"
  replicas: int = _field(
      1, "Replicas of the Trainer: N > 1 runs it as a Vertex AI custom training job of one "
      "chief and N - 1 workers (in --image, in --project and --region), whose run_fn "
      "trains with a MultiWorkerMirroredStrategy from the TF_CONFIG Vertex AI sets; 1 "
      "trains in the Trainer task's own pod.", positive)
  machine_type: str = _field(
      DEFAULT_MACHINE_TYPE, "Vertex AI machine type of every Trainer replica (with "
      "--trainer_replicas > 1).", not_blank)

  CONFLICT_FIELDS = ("replicas", "machine_type")

  def conflict(self) -> Optional[str]:
    if self.replicas == 1 and self.machine_type != self.DEFAULT_MACHINE_TYPE:
      return (f"--trainer_machine_type={self.machine_type!r} applies to Vertex AI "
              "replicas: give --trainer_replicas > 1 too (1 trains in the task's pod).")
    return None
