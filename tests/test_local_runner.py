"""local_runner.py as a user runs it: quiet progress or --verbose, exit statuses, the lock.

Small synthetic data, as in test_pipeline_e2e.py: one quiet run whose model cannot be
blessed (exit 3), then the same run again with --verbose --allow_unblessed (all cached,
exit 0).
"""
import json
import os
import re
import subprocess
import sys

import pytest

from pipeline import locking

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TINY = ["--synthetic_users=200", "--synthetic_movies=400", "--synthetic_ratings=12000",
         "--epochs=2", "--embedding_dim=16", "--batch_size=512",
         # No model beats popularity 100-fold: never blessed.
         "--min_lift_over_popularity=100"]
_NODE_LINE = re.compile(r"^\[\s*(\d+)/(\d+)\] (\S+) (started|ran|cached|FAILED)")
_LOG_LINE = re.compile(r"^([IWEF]\d{4} |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|Epoch \d+/\d+)")
_EPOCH_LINE = re.compile(r"^\s+Epoch \d+: \d+ training examples/s, mean loss [\d.]+, "
                         r"validation mean loss [\d.]+(, validation hit rate [\d.]+)?$")


def _local_runner(*args, env=None):
  return subprocess.run([sys.executable, "local_runner.py", *args], cwd=_REPO,
                        capture_output=True, text=True, check=False, env=env)


def _summary(root):
  with open(os.path.join(root, "run_summary.json"), encoding="utf-8") as f:
    return json.load(f)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("root"))
  # The first run gets a temporary directory of its own, to see what it leaves there.
  temp_dir = str(tmp_path_factory.mktemp("temp"))
  quiet = _local_runner(f"--pipeline_root={root}", *_TINY,
                        env={**os.environ, "TMPDIR": temp_dir})
  left_in_temp = sorted(os.listdir(temp_dir))
  quiet_summary = _summary(root)
  verbose = _local_runner(f"--pipeline_root={root}", *_TINY, "--verbose",
                          "--allow_unblessed")
  return {"root": root, "quiet": quiet, "quiet_summary": quiet_summary,
          "left_in_temp": left_in_temp,
          "verbose": verbose, "verbose_summary": _summary(root)}


def _node_lines(lines):
  """(number, node id, state, line) of each progress line about a node, and the total."""
  matches = [(match, line) for line in lines for match in [_NODE_LINE.match(line)] if match]
  total = int(matches[0][0].group(2)) if matches else 0
  return [(int(m.group(1)), m.group(3), m.group(4), line) for m, line in matches], total


def test_quiet_run_prints_progress_and_summary_only(runs):
  quiet = runs["quiet"]
  lines = quiet.stdout.splitlines()
  assert quiet.stderr == ""
  assert len(lines) <= 60
  assert lines[0].startswith(f"Log: {runs['root']}/logs/run-")
  nodes, total = _node_lines(lines)
  assert total == len(runs["quiet_summary"]["component_seconds"]) >= 10
  assert [number for number, _, state, _ in nodes if state == "started"] == list(
      range(1, total + 1))
  ends = {node: line for _, node, state, line in nodes if state == "ran"}
  assert len(ends) == total
  assert len([line for line in lines if _EPOCH_LINE.match(line)]) == 2
  assert "train examples" in ends["MovieLensExampleGen"]
  assert "bad lines 0" in ends["MovieLensExampleGen"]
  assert ends["RetrievalEvaluator"].endswith("NOT blessed")
  assert ends["Pusher"].endswith("not pushed")
  # No absl, TensorFlow (C++) or Keras log line reached the terminal.
  assert not [line for line in lines if _LOG_LINE.match(line)]


def test_quiet_run_writes_everything_else_to_the_log_file(runs):
  log_path = runs["quiet"].stdout.splitlines()[0].split()[1]
  with open(log_path, encoding="utf-8") as f:
    log = f.read()
  assert "Component RetrievalTrainer is running." in log
  assert "val_mean_loss" in log  # Keras' own epoch lines.
  assert "Epoch 2: " in log  # The progress lines too.


def test_a_run_leaves_the_temporary_directory_as_it_found_it(runs):
  # TFX used to leave a copy of itself and an sdist there for every Beam component.
  assert runs["left_in_temp"] == []


def test_not_blessed_exits_3_and_says_why(runs):
  assert runs["quiet"].returncode == 3
  assert runs["quiet"].stdout.splitlines()[-1] == (
      "Not blessed, so nothing was pushed: exit status 3 (--allow_unblessed exits 0).")
  summary = runs["quiet_summary"]
  assert summary["blessed"] is False and summary["pushed_model"] is None
  assert summary["data_counts"]["num_bad_lines"] == 0
  assert summary["data_counts"]["num_train_examples"] > 0
  assert os.path.exists(summary["evaluation_report"])
  assert f"evaluation report: {summary['evaluation_report']}" in runs["quiet"].stdout


def test_verbose_restores_the_full_stream_and_allow_unblessed_exits_0(runs):
  verbose = runs["verbose"]
  assert verbose.returncode == 0, verbose.stderr[-3000:]
  assert "Log: " not in verbose.stdout
  assert "Component RetrievalTrainer is running." in verbose.stderr
  assert len((verbose.stdout + verbose.stderr).splitlines()) > 500
  assert re.search(r"^\[ ?\d+/\d+\] RetrievalTrainer cached", verbose.stdout, re.MULTILINE)


def test_each_run_summarizes_itself(runs):
  quiet, verbose = runs["quiet_summary"], runs["verbose_summary"]
  assert f"Run {quiet['run_id']} on " in runs["quiet"].stdout
  assert verbose["run_id"] != quiet["run_id"]
  assert quiet["cached_components"] == []
  assert "RetrievalTrainer" in verbose["cached_components"]


def test_a_failure_shows_the_error_and_the_log(tmp_path):
  missing = str(tmp_path / "no-such-data")
  failed = _local_runner(f"--pipeline_root={tmp_path}", f"--data_dir={missing}")
  assert failed.returncode == 1
  log_path = failed.stdout.splitlines()[0].split()[1]
  assert failed.stderr.startswith("ERROR: ") and missing in failed.stderr
  assert failed.stderr.rstrip().endswith(f"full log: {log_path}")
  assert "MovieLensExampleGen FAILED after" in failed.stdout
  with open(log_path, encoding="utf-8") as f:
    assert "Traceback" in f.read()


def test_a_second_run_on_a_held_root_exits_75_naming_the_holder(tmp_path):
  with locking.PipelineRootLock(str(tmp_path)):
    busy = _local_runner(f"--pipeline_root={tmp_path}")
  assert busy.returncode == 75
  assert f"in use by another run: pid {os.getpid()} on host" in busy.stderr
  assert busy.stdout == ""


def test_a_pipeline_root_that_is_a_file_fails_with_one_error_line(tmp_path):
  a_file = tmp_path / "root"
  a_file.write_text("not a directory")
  failed = _local_runner(f"--pipeline_root={a_file}")
  assert failed.returncode == 1
  assert failed.stderr.splitlines() == [
      f"ERROR: --pipeline_root {a_file} cannot hold a run: File exists."]
  assert failed.stdout == ""


class _Stop(Exception):
  """Raised in place of running the pipeline, once its definition is built."""


@pytest.mark.parametrize("workers, mode", [(1, "in_memory"), (2, "multi_processing")])
def test_direct_num_workers_reaches_the_beam_args_of_the_pipeline(tmp_path, monkeypatch,
                                                                  workers, mode):
  from contracts import configs  # pylint: disable=g-import-not-at-top
  from pipeline import local_run  # pylint: disable=g-import-not-at-top
  built = {}

  def capture(tfx_pipeline, *unused_args):
    built["args"] = tfx_pipeline.beam_pipeline_args
    raise _Stop()

  monkeypatch.setattr(local_run, "_run_with_progress", capture)
  options = local_run.Options(
      pipeline_root=str(tmp_path), pipeline_name="direct-workers-test",
      data_dir=str(tmp_path / "data"), synthetic_data=configs.SyntheticDataConfig(),
      serving_dir=None, enable_cache=True, config=configs.PipelineConfig(),
      direct_num_workers=workers)
  with pytest.raises(_Stop):
    local_run.run(options, sys.stdout)
  assert built["args"] == [f"--direct_running_mode={mode}", f"--direct_num_workers={workers}",
                           f"--setup_file={_REPO}/setup.py"]


def test_local_beam_args_keep_tfx_from_building_a_package_per_component(monkeypatch):
  from pipeline import local_run  # pylint: disable=g-import-not-at-top
  from tfx.utils import dependency_utils  # pylint: disable=g-import-not-at-top

  def no_build():
    raise AssertionError("TFX built a temporary sdist of itself")

  monkeypatch.setattr(dependency_utils, "build_ephemeral_package", no_build)
  args = local_run.local_beam_args(1)
  # What every Beam executor does with its arguments (BaseBeamExecutor.__init__).
  assert dependency_utils.make_beam_dependency_flags(args) == args
