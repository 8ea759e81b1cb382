"""Runs every benchmark of a fresh pipeline run, in order; what `make benchmark` runs.

  1. pipeline_benchmark.py: cold run and cached re-run of local_runner.py on a new root.
  2. trainer_throughput.py on that root's Transform output.
  3. serving_benchmark.py on that root's pushed model (ROOT/serving_model).
Then the root is deleted (unless --keep_root). Each benchmark is its own child process,
so that its memory and TensorFlow state are its own. Their figures (stdout) are printed
as they come; their logging (stderr) goes to a file whose tail is printed on a failure.
Each writes its results file (benchmarks/results.py: docs/benchmarks/<script>.md, or
<script>-<data set>.md with a --data_dir in --extra_flags); last, run_all.md (or
run_all-<data set>.md) lists them with each script's command and seconds. --results_dir
and --data_set are passed on to every script.

  python benchmarks/run_all.py [--extra_flags="--synthetic_ratings=1000000"] [--keep_root]
"""
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Sequence, Tuple

from absl import app
from absl import flags

# Run as a script, benchmarks/ is on sys.path and results.py with it.
import results

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO_ROOT = os.path.dirname(_HERE)

_EXTRA_FLAGS = flags.DEFINE_string(
    "extra_flags", "", "local_runner.py flags for pipeline_benchmark.py, one shell-quoted "
    "string.")
_KEEP_ROOT = flags.DEFINE_bool("keep_root", False, "Keep the pipeline root at the end.")


_WRITTEN = "Results written to "


def _passed_on() -> List[str]:
  """run_all's own --results_dir and --data_set, for every script."""
  passed = []
  if flags.FLAGS.results_dir:
    passed.append(f"--results_dir={os.path.abspath(flags.FLAGS.results_dir)}")
  if flags.FLAGS.data_set:
    passed.append(f"--data_set={flags.FLAGS.data_set}")
  return passed


def run_benchmark(script: str, args: Sequence[str],
                  log_path: str) -> Tuple[float, Optional[str]]:
  """Runs benchmarks/`script`, streaming its stdout; raises if it fails.

  Returns:
    (its wall seconds, the results file it wrote, as it printed it).
  """
  command = [sys.executable, os.path.join(_HERE, script), *args, *_passed_on()]
  print(f"\n=== {shlex.join(command)}", flush=True)
  written = None
  env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
  start = time.perf_counter()
  with open(log_path, "w") as log:
    process = subprocess.Popen(command, cwd=_REPO_ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=log, stdin=subprocess.DEVNULL, text=True, bufsize=1)
    for line in process.stdout:
      print(line, end="", flush=True)
      if line.startswith(_WRITTEN):
        written = line[len(_WRITTEN):].strip()
    returncode = process.wait()
  if returncode:
    with open(log_path, errors="replace") as log:
      tail = "".join(log.readlines()[-40:])
    raise RuntimeError(f"{script} exited with {returncode}; its log {log_path} ends:\n{tail}")
  seconds = time.perf_counter() - start
  print(f"({script} took {seconds:.0f} s)", flush=True)
  return seconds, written


def _link(path: Optional[str]) -> str:
  """A results file as a link from run_all's own results file, beside it."""
  if not path:
    return "(none)"
  name = os.path.basename(path)
  return f"[{name}]({name})"


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  work_dir = tempfile.mkdtemp(prefix="benchmarks-")
  root = os.path.join(work_dir, "pipeline_root")
  logs = os.path.join(work_dir, "logs")
  os.makedirs(logs)
  failed = True
  try:
    pipeline_args: List[str] = [f"--pipeline_root={root}", "--keep_root"]
    if _EXTRA_FLAGS.value:
      pipeline_args.append(f"--extra_flags={_EXTRA_FLAGS.value}")
    rows = []
    for script, args in (
        ("pipeline_benchmark.py", pipeline_args),
        ("trainer_throughput.py", [f"--pipeline_root={root}"]),
        ("serving_benchmark.py", [f"--model_dir={os.path.join(root, 'serving_model')}"])):
      seconds, written = run_benchmark(script, args,
                                       os.path.join(logs, script.replace(".py", ".log")))
      rows.append([f"`{shlex.join(['benchmarks/' + script, *args])}`", f"{seconds:.0f}",
                   _link(written)])
    failed = False
    data_set = results.runner_data_set(shlex.split(_EXTRA_FLAGS.value))
    results.write(
        results.results_name(__file__, data_set), "make benchmark: every benchmark of a "
        "fresh pipeline run",
        [("Benchmarks", "Run in this order, on one pipeline root (removed afterwards); "
          "each script's figures are in its results file.\n\n"
          + results.table(["script and arguments", "seconds", "results file"], rows))])
  finally:
    if _KEEP_ROOT.value or failed:
      print(f"\nKept {work_dir} (pipeline root and logs).", flush=True)
    else:
      shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
  app.run(main)
