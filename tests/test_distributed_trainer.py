"""run_fn on two workers of a localhost cluster (TF_CONFIG, MultiWorkerMirroredStrategy).

The same FnArgs go to both workers, as a Vertex AI training job gives them: both finish,
only the chief's model is written to the Model artifact, and the model trains as well as
one worker's does with the same global batch. Each worker runs in its own process
(`python -m tests.test_distributed_trainer ARGS_JSON`); both are killed on a timeout.
"""
import json
import os
import subprocess
import sys

import pytest

from contracts import artifacts
from tests import test_distribution
from tests import transform_fixtures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 420
# A fast family (no context, no user id head, no EASE factor): what is checked is the
# distribution, not the model.
TRAINER_CONFIG = {"query_tower": "user_id", "embedding_dim": 16, "batch_size": 64,
                  "epochs": 3, "serving_top_k": 10, "seed": 7, "ease_factor_rank": 0}


def _run_fn_from(args_path: str) -> None:
  """A worker's main: run_fn with the FnArgs fields in the JSON file."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from trainer_module import trainer  # pylint: disable=g-import-not-at-top
  with open(args_path) as f:
    trainer.run_fn(tfx.components.FnArgs(**json.load(f)))


def _args(fixture_data, model_uri: str, run_dir: str):
  return {"train_files": [fixture_data.transformed_train_pattern],
          "eval_files": [fixture_data.transformed_validation_pattern],
          "transform_output": fixture_data.transform_output,
          "serving_model_dir": os.path.join(model_uri, "Format-Serving"),
          "model_run_dir": run_dir,
          "custom_config": fixture_data.custom_config(TRAINER_CONFIG)}


def _start(args, directory, tf_config=None):
  os.makedirs(directory, exist_ok=True)
  args_path = os.path.join(directory, "args.json")
  with open(args_path, "w") as f:
    json.dump(args, f)
  # Its own temporary directory: a worker's export goes there, and must not stay.
  temporary = os.path.join(directory, "tmp")
  os.makedirs(temporary, exist_ok=True)
  extra = {"TMPDIR": temporary}
  if tf_config:
    extra["TF_CONFIG"] = json.dumps(tf_config)
  with open(os.path.join(directory, "stderr.log"), "w") as log:
    # Logs to files, not pipes: a full pipe would stall a worker and then both.
    return subprocess.Popen([sys.executable, "-m", "tests.test_distributed_trainer",
                             args_path], cwd=ROOT, env=test_distribution._environment(**extra),  # pylint: disable=protected-access
                            stdout=subprocess.DEVNULL, stderr=log)


def _wait(processes, directories):
  test_distribution.wait_all(
      processes, [os.path.join(directory, "stderr.log") for directory in directories],
      TIMEOUT_S)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """(one worker's Model dir, the two workers' shared Model dir, the work root)."""
  root = str(tmp_path_factory.mktemp("distributed"))
  fixture_data = transform_fixtures.build(os.path.join(root, "data"))
  single_uri, shared_uri = os.path.join(root, "single", "model"), os.path.join(root, "two",
                                                                               "model")
  single = _start(_args(fixture_data, single_uri, os.path.join(root, "single", "run")),
                  os.path.join(root, "single"))
  _wait([single], [os.path.join(root, "single")])
  port = test_distribution._free_port  # pylint: disable=protected-access
  cluster = {"worker": [f"localhost:{port()}", f"localhost:{port()}"]}
  directories = [os.path.join(root, f"worker{index}") for index in range(2)]
  workers = [_start(_args(fixture_data, shared_uri, os.path.join(directory, "run")),
                    directory, {"cluster": cluster, "task": {"type": "worker",
                                                             "index": index}})
             for index, directory in enumerate(directories)]
  _wait(workers, directories)
  return single_uri, shared_uri, root


def _history(model_uri):
  with open(artifacts.training_history_path(model_uri)) as f:
    return json.load(f)


def test_both_workers_finish_and_only_the_chief_writes_the_model(runs):
  _, shared_uri, root = runs
  assert os.path.isfile(os.path.join(shared_uri, "Format-Serving", "saved_model.pb"))
  assert os.path.isfile(artifacts.training_history_path(shared_uri))
  assert os.path.isdir(artifacts.query_model_path(shared_uri))
  # The other worker exported too (saving runs collective ops), into its temporary
  # directory, which it removed: no model anywhere else.
  saved = [path for path, _, files in os.walk(root) if "saved_model.pb" in files
           and not path.startswith(os.path.join(root, "data"))]
  assert saved and all(path.startswith(os.path.join(root, "single"))
                       or path.startswith(shared_uri) for path in saved), saved
  for index in range(2):
    assert not os.listdir(os.path.join(root, f"worker{index}", "tmp"))


def test_two_workers_train_as_well_as_one(runs):
  single_uri, shared_uri, _ = runs
  one, two = _history(single_uri), _history(shared_uri)
  assert len(two["mean_loss"]) == len(one["mean_loss"])
  # The loss falls as it does on one worker (the same global batch and negatives).
  assert two["mean_loss"][-1] < two["mean_loss"][0]
  assert two["mean_loss"][-1] == pytest.approx(one["mean_loss"][-1], rel=0.1)
  assert abs(max(two["val_hit_rate"]) - max(one["val_hit_rate"])) <= 0.1


if __name__ == "__main__":
  _run_fn_from(sys.argv[1])
