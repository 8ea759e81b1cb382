"""Runs every benchmark of a fresh pipeline run, in order; what `make benchmark` runs.

  1. pipeline_benchmark.py: cold run and cached re-run of local_runner.py on a new root.
  2. trainer_throughput.py on that root's Transform output.
  3. serving_benchmark.py on that root's pushed model (ROOT/serving_model).
Then the root is deleted (unless --keep_root). Each benchmark is its own child process,
so that its memory and TensorFlow state are its own. Their figures (stdout) are printed
as they come; their logging (stderr) goes to a file whose tail is printed on a failure.

  python benchmarks/run_all.py [--extra_flags="--synthetic_ratings=1000000"] [--keep_root]
"""
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List, Sequence

from absl import app
from absl import flags

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO_ROOT = os.path.dirname(_HERE)

_EXTRA_FLAGS = flags.DEFINE_string(
    "extra_flags", "", "local_runner.py flags for pipeline_benchmark.py, one shell-quoted "
    "string.")
_KEEP_ROOT = flags.DEFINE_bool("keep_root", False, "Keep the pipeline root at the end.")


def run_benchmark(script: str, args: Sequence[str], log_path: str) -> None:
  """Runs benchmarks/`script`, streaming its stdout; raises if it fails."""
  command = [sys.executable, os.path.join(_HERE, script), *args]
  print(f"\n=== {shlex.join(command)}", flush=True)
  env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
  start = time.perf_counter()
  with open(log_path, "w") as log:
    process = subprocess.Popen(command, cwd=_REPO_ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=log, stdin=subprocess.DEVNULL, text=True, bufsize=1)
    for line in process.stdout:
      print(line, end="", flush=True)
    returncode = process.wait()
  if returncode:
    with open(log_path, errors="replace") as log:
      tail = "".join(log.readlines()[-40:])
    raise RuntimeError(f"{script} exited with {returncode}; its log {log_path} ends:\n{tail}")
  print(f"({script} took {time.perf_counter() - start:.0f} s)", flush=True)


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
    run_benchmark("pipeline_benchmark.py", pipeline_args,
                  os.path.join(logs, "pipeline_benchmark.log"))
    run_benchmark("trainer_throughput.py", [f"--pipeline_root={root}"],
                  os.path.join(logs, "trainer_throughput.log"))
    run_benchmark("serving_benchmark.py",
                  [f"--model_dir={os.path.join(root, 'serving_model')}"],
                  os.path.join(logs, "serving_benchmark.log"))
    failed = False
  finally:
    if _KEEP_ROOT.value or failed:
      print(f"\nKept {work_dir} (pipeline root and logs).", flush=True)
    else:
      shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
  app.run(main)
