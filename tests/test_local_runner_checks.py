"""local_runner.py's checks of bad flags and environments: each fails with one `ERROR:`
line naming what is wrong, before any component runs.

No test here runs the pipeline: each stops at the check, or runs local_run with its
pipeline execution replaced.
"""
import io
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from contracts import configs
from pipeline import preflight

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SMALL = configs.SyntheticDataConfig(synthetic_users=50, synthetic_movies=80,
                                     synthetic_ratings=1500, synthetic_seed=3)


def _local_runner(*args):
  return subprocess.run([sys.executable, "local_runner.py", *args], cwd=_REPO,
                        capture_output=True, text=True, check=False)


class _Stop(Exception):
  """Raised in place of running the pipeline, once its definition is built."""


def _options(tmp_path, **overrides):
  from pipeline import local_run  # pylint: disable=g-import-not-at-top
  values = dict(pipeline_root=str(tmp_path), pipeline_name="checks-test", data_dir=None,
                synthetic_data=_SMALL, serving_dir=None, enable_cache=True,
                config=configs.PipelineConfig(), direct_num_workers=1)
  values.update(overrides)
  return local_run.Options(**values)


def _run_until_execution(options, monkeypatch):
  """local_run.run up to the pipeline's execution; returns what it printed."""
  from pipeline import local_run  # pylint: disable=g-import-not-at-top

  def stop(*unused_args):
    raise _Stop()

  monkeypatch.setattr(local_run, "_run_with_progress", stop)
  out = io.StringIO()
  with pytest.raises(_Stop):
    local_run.run(options, out)
  return out.getvalue()


# ------------------------------------------------------------------------------ --data_dir


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_data_dir_is_an_error_naming_the_flag(tmp_path, value):
  root = tmp_path / "root"
  failed = _local_runner(f"--pipeline_root={root}", f"--data_dir={value}")
  assert failed.returncode == 1
  assert failed.stderr.splitlines() == [
      f"ERROR: --data_dir is empty ({value!r}): give a MovieLens directory or zip, or "
      "leave the flag out to train on the built-in synthetic data."]
  assert failed.stdout == ""
  assert not root.exists()  # Nothing ran: not even the lock was taken.


@pytest.mark.parametrize("value", ["", " \t"])
def test_local_run_never_takes_an_empty_data_dir_for_synthetic_data(tmp_path, value):
  from pipeline import local_run  # pylint: disable=g-import-not-at-top
  with pytest.raises(preflight.FlagError, match="--data_dir is empty"):
    local_run.resolve_data_dir(_options(tmp_path, data_dir=value))
  assert not (tmp_path / "data").exists()


def test_a_run_without_data_dir_says_first_that_its_data_is_synthetic(tmp_path,
                                                                    monkeypatch):
  printed = _run_until_execution(_options(tmp_path), monkeypatch).splitlines()
  assert printed[0].startswith("NOTE: no --data_dir given, so this run trains on BUILT-IN "
                               "SYNTHETIC data (50 users, 80 movies, 1,500 ratings, seed 3)")
  assert str(tmp_path / "data") in printed[0]


def test_a_run_with_data_dir_has_no_synthetic_note(tmp_path, monkeypatch):
  printed = _run_until_execution(_options(tmp_path, data_dir=str(tmp_path / "ml")),
                                 monkeypatch)
  assert "SYNTHETIC" not in printed


# --------------------------------------------------------------------------- --serving_dir


def _assert_refused_before_running(failed, root, message):
  assert failed.returncode == 1
  assert failed.stderr.splitlines() == [f"ERROR: {message}"]
  assert failed.stdout == ""
  # No component ran: no ML Metadata store, no log, no data generated.
  assert sorted(os.listdir(root)) == [".run.lock"]


def test_a_serving_dir_that_is_a_file_is_refused_before_any_component(tmp_path):
  root, a_file = tmp_path / "root", tmp_path / "models"
  a_file.write_text("not a directory")
  failed = _local_runner(f"--pipeline_root={root}", f"--serving_dir={a_file}")
  _assert_refused_before_running(
      failed, root, f"--serving_dir {a_file} is a file, not a directory; the Pusher "
      "writes model versions into it.")


def test_a_serving_dir_under_a_file_is_refused_naming_the_file(tmp_path):
  root, a_file = tmp_path / "root", tmp_path / "models"
  a_file.write_text("not a directory")
  failed = _local_runner(f"--pipeline_root={root}", f"--serving_dir={a_file}/v/x")
  _assert_refused_before_running(
      failed, root, f"--serving_dir {a_file}/v/x cannot be created: {a_file} is a file, "
      "not a directory; the Pusher writes model versions into it.")


def test_the_default_serving_dir_is_checked_too(tmp_path):
  root = tmp_path / "root"
  root.mkdir()
  (root / "serving_model").write_text("in the way")
  failed = _local_runner(f"--pipeline_root={root}")
  assert failed.returncode == 1
  assert failed.stderr.splitlines() == [
      f"ERROR: --serving_dir (default {root}/serving_model) is a file, not a directory; "
      "the Pusher writes model versions into it."]


def test_an_unwritable_serving_dir_is_refused(tmp_path, monkeypatch):
  # Tests may run as root, for whom permission bits do not deny: os.access stands in.
  monkeypatch.setattr(preflight.os, "access", lambda path, mode: path != str(tmp_path))
  with pytest.raises(preflight.FlagError,
                     match=f"--serving_dir {tmp_path}/new cannot be created: {tmp_path} is "
                     "not writable by this user"):
    preflight.check_serving_dir(str(tmp_path / "new"), str(tmp_path))
  (tmp_path / "writable").mkdir()
  preflight.check_serving_dir(str(tmp_path / "writable" / "new"), str(tmp_path))


@pytest.mark.parametrize("value", ["gs://bucket/models", None])
def test_a_remote_or_creatable_serving_dir_passes(tmp_path, value):
  preflight.check_serving_dir(value, str(tmp_path))
  assert not (tmp_path / "serving_model").exists()  # Checking creates nothing.


def test_an_empty_serving_dir_is_an_error(tmp_path):
  with pytest.raises(preflight.FlagError, match="--serving_dir is empty"):
    preflight.check_serving_dir(" ", str(tmp_path))


# ----------------------------------------------------------------------------- the log file


def test_an_unwritable_log_directory_is_one_error_line(tmp_path):
  root = tmp_path / "root"
  root.mkdir()
  (root / "logs").write_text("a file where the logs directory goes")
  failed = _local_runner(f"--pipeline_root={root}")
  assert failed.returncode == 1
  lines = failed.stderr.splitlines()
  assert "Traceback" not in failed.stderr
  assert len(lines) == 1
  logs = re.escape(f"{root}/logs")
  assert re.fullmatch(rf"ERROR: cannot write the run's log file {logs}/run-\d{{8}}-\d{{6}}"
                      rf"\.log: {logs}: File exists \(--verbose writes no log file\)\.",
                      lines[0]), lines[0]
  assert failed.stdout == ""


# ---------------------------------------------------------------------------------- SIGTERM

# local_runner.main with the pipeline replaced by a wait, so that a signal finds the run
# under way; it says "running" on the terminal once it is.
_WAITING_RUNNER = """
import sys, time
from absl import app
import local_runner

def wait(pipeline_root, out):
  out.write("running\\n")
  out.flush()
  time.sleep(120)
  return 0

local_runner.run = wait
app.run(local_runner.main, argv=["local_runner.py", "--pipeline_root=" + sys.argv[1]])
"""


def test_sigterm_stops_the_run_like_ctrl_c_naming_the_log(tmp_path):
  root = tmp_path / "root"
  runner = subprocess.Popen([sys.executable, "-c", _WAITING_RUNNER, str(root)], cwd=_REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    log_line = runner.stdout.readline()
    assert runner.stdout.readline() == "running\n"
    runner.send_signal(signal.SIGTERM)
    stdout, stderr = runner.communicate(timeout=60)
  finally:
    runner.kill()
  log_path = log_line.split()[1]
  assert runner.returncode == 143
  assert stderr.splitlines() == ["ERROR: Terminated: SIGTERM received",
                                 f"The run failed; full log: {log_path}"]
  assert stdout == ""
  with open(log_path, encoding="utf-8") as f:
    assert "Terminated: SIGTERM received" in f.read()


def _wait_until_open(pid, path, seconds=60):
  """Returns once process `pid` has `path` open (Linux /proc)."""
  deadline = time.monotonic() + seconds
  while time.monotonic() < deadline:
    fds = f"/proc/{pid}/fd"
    try:
      if any(os.readlink(os.path.join(fds, fd)) == path for fd in os.listdir(fds)):
        return
    except OSError:  # A descriptor closed while listed.
      pass
    time.sleep(0.05)
  raise TimeoutError(f"process {pid} never opened {path}")


def test_sigterm_while_waiting_for_the_lock_is_one_error_line(tmp_path):
  from pipeline import locking  # pylint: disable=g-import-not-at-top
  with locking.PipelineRootLock(str(tmp_path)):
    runner = subprocess.Popen(
        [sys.executable, "local_runner.py", f"--pipeline_root={tmp_path}",
         "--lock_wait_seconds=-1"], cwd=_REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
      _wait_until_open(runner.pid, str(tmp_path / ".run.lock"))  # It waits for the lock.
      runner.send_signal(signal.SIGTERM)
      stdout, stderr = runner.communicate(timeout=60)
    finally:
      runner.kill()
  assert runner.returncode == 143, stderr
  assert stderr.splitlines()[-1] == "ERROR: Terminated: SIGTERM received"
  assert "Traceback" not in stderr
  assert stdout == ""
