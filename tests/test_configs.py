"""Every knob is checked where it is declared, when a config is built or a flag parsed."""
import dataclasses
import os
import subprocess
import sys

from absl import flags
import pytest

from contracts import configs
from pipeline import flags as config_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("config_cls, field, bad, expected", [
    # Sizes and counts that must be positive.
    (configs.TrainerConfig, "embedding_dim", 0, "must be > 0"),
    (configs.TrainerConfig, "epochs", -1, "must be >= 0"),  # 0: the query tower's default.
    (configs.TrainerConfig, "batch_size", -5, "must be >= 2"),
    (configs.TrainerConfig, "serving_top_k", 0, "must be > 0"),
    (configs.SyntheticDataConfig, "synthetic_ratings", 0, "must be > 0"),
    (configs.EvaluatorConfig, "blessing_k", 0, "must be > 0"),
    # Rates and fractions with a range.
    (configs.TrainerConfig, "learning_rate", -0.1, "must be >= 0"),  # 0: family default.
    (configs.TrainerConfig, "query_tower", "two_tower", "must be one of"),
    (configs.TrainerConfig, "ranking_model", "xgboost", "must be one of"),
    (configs.TrainerConfig, "ranking_candidates", 0, "must be > 0"),
    (configs.ContextConfig, "validation_fraction", 0.5, r"must be in \[0.0, 0.5\)"),
    (configs.ContextConfig, "max_context", 0, "must be > 0"),
    (configs.TrainerConfig, "oov_user_rate", 1.5, r"must be in \[0.0, 1.0\]"),
    (configs.TrainerConfig, "ranking_weight", -0.1, r"must be in \[0.0, 1.0\]"),
    (configs.DataConfig, "eval_fraction", 0.0, r"must be in \(0.0, 1.0\)"),
    (configs.EvaluatorConfig, "max_drop_vs_blessed", 1.0, r"must be in \[0.0, 1.0\)"),
    (configs.DataConfig, "min_rating", 6.0, r"must be in \[0.0, 5.0\]"),
    # Tolerances and minimum counts.
    (configs.DataConfig, "max_bad_lines", -1, "must be >= 0"),
    (configs.TransformConfig, "num_oov_buckets", 0, "must be >= 1"),
    (configs.TransformConfig, "timestamp_buckets", 1, "must be >= 2"),
    # Choices and lists.
    (configs.DataConfig, "split_method", "by_user", "must be one of"),
    (configs.TrainerConfig, "optimizer", "sgd", "must be one of"),
    (configs.TrainerConfig, "hidden_layers", "64,0", "must be comma-separated positive integers"),
    (configs.EvaluatorConfig, "ks", "", "must list at least one positive integer"),
    # Types.
    (configs.TrainerConfig, "epochs", "8", "must be a number"),
    # The Kubeflow runner's Vertex AI Trainer.
    (configs.VertexTrainingConfig, "trainer_replicas", 0, "must be > 0"),
    (configs.VertexTrainingConfig, "trainer_machine_type", " ", "must not be empty"),
])
def test_bad_values_name_the_flag_and_the_allowed_values(config_cls, field, bad, expected):
  with pytest.raises(ValueError, match=f"^--{field} {expected}.*, got"):
    config_cls.from_flags(**{field: bad})


def test_defaults_are_valid_and_survive_a_round_trip():
  for config_cls in (*configs.PIPELINE_CONFIG_GROUPS.values(), configs.SyntheticDataConfig,
                     configs.VertexTrainingConfig):
    config = config_cls()
    assert config_cls.from_dict(dataclasses.asdict(config)) == config


def test_flag_parsing_rejects_a_bad_value():
  flag_values = flags.FlagValues()
  config_flags.define_pipeline_flags(flag_values)
  with pytest.raises(flags.IllegalFlagValueError, match="batch_size.*must be >= 2"):
    flag_values(["prog", "--batch_size=-5"])
  flag_values(["prog", "--batch_size=256", "--ks=5,10"])
  config = config_flags.pipeline_config_from_flags(flag_values)
  assert config.trainer.optimization.batch_size == 256
  assert config.evaluator.evaluated_ks == (5, 10, 100)


def test_flags_that_conflict_are_refused_when_parsed():
  flag_values = flags.FlagValues()
  config_flags.define_pipeline_flags(flag_values)
  with pytest.raises(flags.IllegalFlagValueError,
                     match="--num_interests applies to the 'history' query tower"):
    flag_values(["prog", "--query_tower=user_id", "--num_interests=2"])
  with pytest.raises(ValueError, match="--num_interests applies to the 'history' query tower"):
    configs.TrainerConfig.from_flags(query_tower="user_id", num_interests=2)
  # Without a validation slice the factor's weight list is no conflict (run_fn serves
  # one weight then).
  flag_values = flags.FlagValues()
  config_flags.define_pipeline_flags(flag_values)
  flag_values(["prog", "--ease_factor_rank=64", "--validation_fraction=0",
               "--ease_factor_weights=2"])
  config = config_flags.pipeline_config_from_flags(flag_values)
  assert config.trainer.ease_factor.weights == (2.0,)
  assert config.context.validation_fraction == 0.0  # UserContext's knob, read by run_fn.
  with pytest.raises(ValueError, match="--ease_factor_weights must be comma-separated numbers"):
    configs.TrainerConfig.from_flags(ease_factor_weights="1,-2")
  with pytest.raises(ValueError, match="--ease_factor_session_weights must be comma-separated"):
    configs.TrainerConfig.from_flags(ease_factor_session_weights="0,x")
  with pytest.raises(ValueError, match="--ease_factor_session_window"):
    configs.TrainerConfig.from_flags(ease_factor_session_window=1)
  assert configs.TrainerConfig().ease_factor.session_weights == (0.0, 0.25)


@pytest.mark.parametrize("flag, expected", [("--batch_size=-5", "--batch_size"),
                                            ("--embedding_dim=0", "--embedding_dim"),
                                            ("--direct_num_workers=-1", "--direct_num_workers"),
                                            # Kubeflow only: no replicas on one machine.
                                            ("--trainer_replicas=3", "trainer_replicas")])
def test_local_runner_fails_at_once_naming_the_flag(tmp_path, flag, expected):
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, "local_runner.py"), flag,
       f"--pipeline_root={tmp_path}"], capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  assert expected in result.stderr
  # Nothing ran: no synthetic data, no ML Metadata store.
  assert os.listdir(tmp_path) == []


def test_direct_runner_runs_in_process_for_one_worker_and_in_processes_otherwise():
  assert configs.direct_runner_args(1) == ["--direct_running_mode=in_memory",
                                           "--direct_num_workers=1"]
  assert list(configs.LOCAL_BEAM_PIPELINE_ARGS) == configs.direct_runner_args(1)
  for workers in (0, 2, 8):
    assert configs.direct_runner_args(workers) == [
        "--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
  with pytest.raises(ValueError, match="direct_num_workers must be >= 0"):
    configs.direct_runner_args(-1)
