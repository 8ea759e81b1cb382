"""local_runner.py's checks of bad flags and environments: each fails with one `ERROR:`
line naming what is wrong, before any component runs.

No test here runs the pipeline: each stops at the check, or runs local_run with its
pipeline execution replaced.
"""
import io
import os
import subprocess
import sys

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
