"""Runs tfrs-pipeline on this machine: LocalDagRunner, SQLite ML Metadata.

  python local_runner.py                          # built-in synthetic data (ml-100k sized)
  python local_runner.py --data_dir ~/ml-1m.zip   # real MovieLens, directory or zip

By default the terminal shows one line as each component starts and ends, the Trainer's
per-epoch lines and the run's summary; TFX, Beam, TensorFlow and absl output goes to
<pipeline_root>/logs/run-YYYYmmdd-HHMMSS.log, whose path is printed. --verbose shows it
all instead. One run at a time holds a pipeline root (pipeline/locking.py).

Exit status: 0 done (a model was pushed, or --allow_unblessed); 1 failed (the error and
the log file are printed; also bad flags); 3 completed but the model was not blessed, so
nothing was pushed; 75 the pipeline root is in use by another run (EX_TEMPFAIL); 130
interrupted (Ctrl-C); 143 terminated (SIGTERM, e.g. `kill` or a scheduler's timeout),
which stops the run as Ctrl-C does.

Every knob of contracts/configs.py is a flag (see --helpfull).
"""
import contextlib
import os
import signal
import sys
import time
from typing import Any, Mapping, TextIO
import warnings

# google-api-core (imported by TFX) warns at import that it will drop Python 3.11 in
# 2027; nothing a user of this command can act on.
warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")

from absl import app
from absl import flags
from absl import logging

from contracts import configs
from contracts import config_flags
from pipeline import flags as pipeline_flags
from pipeline import locking
from pipeline import preflight
from pipeline import progress

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_BLESSED = 3
EXIT_ROOT_BUSY = 75
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM: what a shell reports for a process it killed.

_DATA_DIR = flags.DEFINE_string(
    "data_dir", None,
    "MovieLens directory or official zip (ml-100k, ml-1m, ml-latest-small, ml-latest, "
    "ml-20m, ml-25m). Without the flag: synthetic ml-100k-format data generated under "
    "<pipeline_root>/data (an empty value is an error).")
_PIPELINE_ROOT = flags.DEFINE_string(
    "pipeline_root", "tfx_root", "Directory for artifacts and the ML Metadata store.")
_PIPELINE_NAME = flags.DEFINE_string("pipeline_name", configs.PIPELINE_NAME,
                                     "Pipeline name in ML Metadata.")
_SERVING_DIR = flags.DEFINE_string(
    "serving_dir", None, "Where blessed models are pushed, TF Serving layout "
    "(<serving_dir>/<version>/). Default: <pipeline_root>/serving_model.")
_ENABLE_CACHE = flags.DEFINE_bool(
    "enable_cache", True, "Reuse results of components whose inputs did not change.")
_VERBOSE = flags.DEFINE_bool(
    "verbose", False, "Show TFX, Beam and TensorFlow output on the terminal instead of "
    "writing it to <pipeline_root>/logs/.")
_ALLOW_UNBLESSED = flags.DEFINE_bool(
    "allow_unblessed", False, f"Exit 0 when the run completes but the model is not "
    f"blessed (default: exit status {EXIT_NOT_BLESSED}).")
_DIRECT_NUM_WORKERS = flags.DEFINE_integer(
    "direct_num_workers", 1, "Beam DirectRunner workers of the data components: 1 runs "
    "them in this process (fastest to start); N > 1 in N processes, 0 one per CPU "
    "(each worker imports TensorFlow first, so more pay off on large data only).",
    lower_bound=0)
_LOCK_WAIT_SECONDS = flags.DEFINE_float(
    "lock_wait_seconds", 0, "When another run holds the pipeline root, wait this long "
    f"for it (negative: without limit) before exiting with status {EXIT_ROOT_BUSY}.")

pipeline_flags.define_pipeline_flags()
config_flags.define_config_flags(configs.SyntheticDataConfig)
flags.adopt_module_key_flags(config_flags)


class Terminated(KeyboardInterrupt):
  """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so that a terminated run
  stops the same way: the error line, the log file named, the lock released."""


def _raise_terminated(signum, frame):
  del signum, frame
  raise Terminated("SIGTERM received")


def main(argv):
  del argv
  signal.signal(signal.SIGTERM, _raise_terminated)
  try:
    return _checked_and_locked_run()
  except Terminated:  # Outside the quiet run's own handling: a lock wait, --verbose.
    print("ERROR: Terminated: SIGTERM received", file=sys.stderr)
    return EXIT_TERMINATED


def _checked_and_locked_run() -> int:
  """Checks the flags, takes the pipeline root's lock and runs; the exit status."""
  pipeline_root = os.path.abspath(_PIPELINE_ROOT.value)
  try:
    preflight.check_data_dir(_DATA_DIR.value)
  except preflight.FlagError as e:
    print(f"ERROR: {e}", file=sys.stderr)
    return EXIT_FAILED
  try:
    lock = locking.PipelineRootLock(pipeline_root, _LOCK_WAIT_SECONDS.value).acquire()
  except locking.PipelineRootLockedError as e:
    print(f"ERROR: {e}", file=sys.stderr)
    return EXIT_ROOT_BUSY
  except OSError as e:  # A file in the way, no permission, ...
    print(f"ERROR: --pipeline_root {pipeline_root} cannot hold a run: "
          f"{e.strerror or e}.", file=sys.stderr)
    return EXIT_FAILED
  try:
    try:
      preflight.check_serving_dir(_SERVING_DIR.value, pipeline_root)
    except preflight.FlagError as e:
      print(f"ERROR: {e}", file=sys.stderr)
      return EXIT_FAILED
    if _VERBOSE.value:
      return run(pipeline_root, sys.stdout)
    return run_quietly(pipeline_root)
  finally:
    lock.release()


def run_quietly(pipeline_root: str) -> int:
  """`run` with everything but the progress lines in a log file."""
  log_path = os.path.join(pipeline_root, "logs",
                          time.strftime("run-%Y%m%d-%H%M%S.log", time.localtime()))
  with contextlib.ExitStack() as stack:
    try:
      terminal = stack.enter_context(progress.redirect_output(log_path))
    except OSError as e:  # logs/ is a file, not writable, the disk is full, ...
      where = f"{e.filename}: " if e.filename else ""
      print(f"ERROR: cannot write the run's log file {log_path}: {where}"
            f"{e.strerror or e} (--verbose writes no log file).", file=sys.stderr)
      return EXIT_FAILED
    progress.print_line(terminal, f"Log: {log_path} (TFX, Beam and TensorFlow output; "
                        "--verbose shows it here)")
    logging.set_verbosity(logging.INFO)
    try:
      with progress.progress_lines_to(terminal):
        return run(pipeline_root, terminal)
    except (Exception, KeyboardInterrupt) as e:  # pylint: disable=broad-except
      logging.exception("The run failed.")
      error = f"{type(e).__name__}: {e}"
      status = (EXIT_TERMINATED if isinstance(e, Terminated) else
                EXIT_INTERRUPTED if isinstance(e, KeyboardInterrupt) else EXIT_FAILED)
  print(f"ERROR: {error}\nThe run failed; full log: {log_path}", file=sys.stderr)
  return status


def run(pipeline_root: str, out: TextIO) -> int:
  """Runs the pipeline once on `pipeline_root` (held locked); returns the exit status."""
  # Imported only now, after run_quietly redirected the output: TensorFlow and TFX print
  # on import.
  from pipeline import local_run  # pylint: disable=g-import-not-at-top
  summary = local_run.run(local_run.Options(
      pipeline_root=pipeline_root, pipeline_name=_PIPELINE_NAME.value,
      data_dir=_DATA_DIR.value,
      synthetic_data=config_flags.config_from_flags(configs.SyntheticDataConfig),
      serving_dir=_SERVING_DIR.value, enable_cache=_ENABLE_CACHE.value,
      direct_num_workers=_DIRECT_NUM_WORKERS.value,
      config=pipeline_flags.pipeline_config_from_flags()), out)
  return exit_status(summary, out)


def exit_status(summary: Mapping[str, Any], out: TextIO) -> int:
  """EXIT_NOT_BLESSED when the Evaluator did not bless the model, unless allowed."""
  if summary.get("blessed") is not False or _ALLOW_UNBLESSED.value:
    return EXIT_OK
  progress.print_line(out, f"Not blessed, so nothing was pushed: exit status "
                      f"{EXIT_NOT_BLESSED} (--allow_unblessed exits 0).")
  return EXIT_NOT_BLESSED


if __name__ == "__main__":
  app.run(main)
