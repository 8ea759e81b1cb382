"""The quick-start transcript: `make run`'s command on a fresh root, as a user sees it.

Runs local_runner.py exactly as `make run` does (`.venv/bin/python local_runner.py
--pipeline_root ROOT RUN_ARGS`), ROOT a fresh temporary directory unless --pipeline_root
names one (absent or empty, so that the run is cold), and --data_dir added when given.
What the runner prints on stdout is shown as it comes and kept as the transcript; its
stderr is shown too and kept apart. Then docs/benchmarks/quickstart.md (or
quickstart-<data set>.md) gets the command, the exit status, the wall time and the
transcript, whose first line is the command as make echoes it. The README's quick-start
block is copied from that file.

  python benchmarks/quickstart.py [--data_dir PATH] [--pipeline_root DIR] [--keep_root]
      [-- more local_runner.py flags, as RUN_ARGS]

The script exits with the runner's exit status.
"""
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import List, Optional, Sequence, TextIO, Tuple

from absl import app
from absl import flags

# Run as a script, benchmarks/ is on sys.path and results.py with it.
import results

_REPO_ROOT = results.REPO_ROOT

_PIPELINE_ROOT = flags.DEFINE_string(
    "pipeline_root", None, "Pipeline root, absent or empty (default: a fresh temporary "
    "directory, deleted afterwards unless --keep_root).")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "MovieLens directory or zip for local_runner.py --data_dir "
    "(default: the built-in synthetic data).")
_KEEP_ROOT = flags.DEFINE_bool("keep_root", False,
                               "Keep a temporary pipeline root at the end.")
_RUNNER = flags.DEFINE_string(
    "runner", None, "The command that stands for `.venv/bin/python local_runner.py`, "
    "shell-quoted (for tests; default: this interpreter and the repository's "
    "local_runner.py).")


def runner_command(runner: Optional[str]) -> List[str]:
  """The runner's argv prefix: --runner, or this interpreter with local_runner.py."""
  if runner:
    return shlex.split(runner)
  return [sys.executable, os.path.join(_REPO_ROOT, "local_runner.py")]


def make_echo(command: Sequence[str]) -> str:
  """The line make prints for `command`: paths inside the repository relative to it."""
  return results.command(command, _REPO_ROOT, executable=None, cwd=_REPO_ROOT)


def _pump(source: TextIO, sinks: Tuple[TextIO, ...], kept: List[str]) -> None:
  for line in source:
    kept.append(line)
    for sink in sinks:
      sink.write(line)
      sink.flush()


def run_transcript(command: Sequence[str]) -> Tuple[int, float, str, str]:
  """Runs `command` from the repository root, streaming its output; returns (exit status,
  wall seconds, stdout, stderr)."""
  stdout: List[str] = []
  stderr: List[str] = []
  start = time.perf_counter()
  process = subprocess.Popen(list(command), cwd=_REPO_ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                             bufsize=1, env=dict(os.environ, TF_USE_LEGACY_KERAS="1"))
  pumps = [threading.Thread(target=_pump, args=(process.stdout, (sys.stdout,), stdout)),
           threading.Thread(target=_pump, args=(process.stderr, (sys.stderr,), stderr))]
  for pump in pumps:
    pump.start()
  try:
    status = process.wait()
  except BaseException:
    process.kill()
    process.wait()
    raise
  finally:
    for pump in pumps:
      pump.join()
  return status, time.perf_counter() - start, "".join(stdout), "".join(stderr)


def _fresh_root(pipeline_root: Optional[str]) -> Tuple[str, bool]:
  """(the root, whether it is a temporary one of ours)."""
  if not pipeline_root:
    return tempfile.mkdtemp(prefix="quickstart-"), True
  pipeline_root = os.path.abspath(pipeline_root)
  if os.path.exists(pipeline_root) and os.listdir(pipeline_root):
    raise app.UsageError(f"{pipeline_root} is not empty; the quick start is a cold run.")
  return pipeline_root, False


def sections(echo: str, status: int, seconds: float, transcript: str,
             stderr: str) -> List[results.Section]:
  """The results file's sections."""
  minutes, rest = divmod(seconds, 60)
  outcome = {0: "completed", 3: "completed; the model was not blessed, so nothing was "
                               "pushed", 75: "the pipeline root was in use by another run",
             130: "interrupted"}.get(status, "failed")
  parts = [
      ("Run", results.table(["measure", "value"], [
          ["exit status", f"{status}: {outcome}"],
          ["wall time of local_runner.py", f"{seconds:.1f} s ({int(minutes)} min "
                                           f"{rest:.0f} s)"],
      ])),
      ("Transcript", "What the terminal shows, make's own command line first "
                     "(stdout of local_runner.py):\n\n"
                     + results.code_block(f"{echo}\n{transcript}")),
  ]
  if stderr.strip():
    parts.append(("Standard error", results.code_block(stderr)))
  return parts


def main(argv: Sequence[str]) -> int:
  run_args = list(argv[1:])
  if _DATA_DIR.value:
    run_args = ["--data_dir", _DATA_DIR.value] + run_args
  pipeline_root, temporary = _fresh_root(_PIPELINE_ROOT.value)
  command = runner_command(_RUNNER.value) + ["--pipeline_root", pipeline_root] + run_args
  echo = make_echo(command)
  print(echo, flush=True)
  try:
    status, seconds, transcript, stderr = run_transcript(command)
  finally:
    if temporary and not _KEEP_ROOT.value:
      shutil.rmtree(pipeline_root, ignore_errors=True)
    elif temporary:
      print(f"pipeline root kept: {pipeline_root}", flush=True)
  name = results.results_name(__file__, results.runner_data_set(run_args))
  results.write(name, "Quick start: the transcript of `make run`",
                sections(echo, status, seconds, transcript, stderr))
  return status


if __name__ == "__main__":
  app.run(main)
