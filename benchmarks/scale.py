"""How the whole pipeline's cost grows with the number of ratings.

For each size of --sizes (a number of ratings: 20k, 100k, 1m, 10m, ...) this
  1. writes synthetic data of that size in the ml-latest CSV layout to a fresh directory
     under --work_dir, a group of users at a time (benchmarks/scaling.py: users and
     movies grow with the ratings as in the GroupLens data sets);
  2. runs `local_runner.py --data_dir DATA --pipeline_root ROOT --serving_dir SERVING
     --enable_cache=false --allow_unblessed` on a fresh root, sampling the summed RSS of
     its whole process tree every --poll_seconds (benchmarks/pipeline_benchmark.py's
     `run_pipeline`; shared pages count once per process, so the sum errs high);
  3. records each component's seconds from ROOT/run_summary.json, the runner's wall time
     (imports included) and the peak RSS.
Then, between each two consecutive sizes, the growth exponent k of cost ~ ratings**k:
log(t2 / t1) / log(n2 / n1) for the wall time, each component and the peak RSS. The
figures are printed and written to docs/benchmarks/scale.md (benchmarks/results.py).

A failed run stops the benchmark with exit status 1, naming the size and printing the
tail of the runner's output and of its log; that size's directory is kept. Otherwise each
size's data and root are deleted once measured, unless --keep.

  python benchmarks/scale.py --sizes 100k,1m,10m [--work_dir DIR] [--keep]
      [--runner_arg=--epochs=1 ...] [-- more local_runner.py flags]
"""
import collections
import dataclasses
import glob
import os
import shlex
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from absl import app
from absl import flags

# Run as a script, benchmarks/ is on sys.path but the repository root is not.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position
import pipeline_benchmark
import results
import scaling
from contracts import configs
# pylint: enable=g-import-not-at-top,wrong-import-position

_SIZES = flags.DEFINE_list(
    "sizes", ["100k", "1m", "10m"], "Numbers of ratings to run, with an optional k "
    "(thousand) or m (million) suffix, e.g. 20k,40k; run in increasing order.")
_WORK_DIR = flags.DEFINE_string(
    "work_dir", None, "Where each size's data and pipeline root go, in a fresh "
    "subdirectory (default: a temporary directory).")
_KEEP = flags.DEFINE_bool(
    "keep", False, "Keep each size's data, pipeline root and logs (default: delete them "
    "once measured).")
_RUNNER_ARGS = flags.DEFINE_multi_string(
    "runner_arg", [], "A local_runner.py flag for every run, e.g. --runner_arg=--epochs=1; "
    "repeatable. Arguments after `--` are passed on as well.")
# pipeline_benchmark.py's sampling interval, slower here: a large size runs for long.
flags.FLAGS.set_default("poll_seconds", 0.5)
flags.declare_key_flag("poll_seconds")

# local_runner.py flags this script sets itself, and the synthetic sizes it replaces.
_RESERVED_RUNNER_FLAGS = ("data_dir", "pipeline_root", "serving_dir", "enable_cache",
                          "allow_unblessed",
                          *(f.name for f in dataclasses.fields(configs.SyntheticDataConfig)))
# pipeline_benchmark.py's flags that this script has its own for, or no use of.
_FOREIGN_FLAGS = {"pipeline_root": "--work_dir", "keep_root": "--keep",
                  "extra_flags": "--runner_arg"}
_LOG_LINES = 30


@dataclasses.dataclass(frozen=True)
class SizeResult:
  """One size: its data set and its run."""
  size: configs.SyntheticDataConfig
  write_seconds: float
  run: pipeline_benchmark.RunResult

  @property
  def num_ratings(self) -> int:
    return self.size.synthetic_ratings

  @property
  def component_seconds(self) -> Dict[str, float]:
    return self.run.summary.get("component_seconds", {})


class SizeFailed(Exception):
  """A size's run failed; the message names it and shows the logs' tails."""


def check_runner_args(args: Sequence[str]) -> None:
  """Raises app.UsageError for a local_runner.py flag that this script sets itself."""
  for arg in args:
    name = arg.lstrip("-").split("=", 1)[0]
    for flag in (name, name[2:] if name.startswith("no") else None):
      if arg.startswith("-") and flag in _RESERVED_RUNNER_FLAGS:
        raise app.UsageError(f"{arg}: scale.py sets --{flag} itself for each size.")


def runner_flags(data_dir: str, size_dir: str, extra: Sequence[str]) -> List[str]:
  """local_runner.py's flags for one size (run_pipeline adds --pipeline_root and
  --allow_unblessed)."""
  return [f"--data_dir={data_dir}", f"--serving_dir={os.path.join(size_dir, 'serving')}",
          "--enable_cache=false", *extra]


def _tail(path: str) -> str:
  with open(path, errors="replace") as f:
    return "".join(collections.deque(f, maxlen=_LOG_LINES))


def _failure(label: str, error: Exception, size_dir: str, root: str) -> SizeFailed:
  """The error of a failed size: the runner's output tail and its log file's tail."""
  logs = sorted(glob.glob(os.path.join(root, "logs", "run-*.log")), key=os.path.getmtime)
  log_tail = (f"\nlast lines of {logs[-1]}:\n{_tail(logs[-1])}" if logs else "")
  return SizeFailed(f"size {label} failed; its files are kept in {size_dir}.\n{error}"
                    f"{log_tail}")


def measure(size: configs.SyntheticDataConfig, work_dir: str, extra: Sequence[str],
            poll_seconds: float, keep: bool) -> SizeResult:
  """Writes one size's data, runs the pipeline on it and deletes both unless `keep`."""
  label = scaling.size_label(size.synthetic_ratings)
  size_dir = tempfile.mkdtemp(prefix=f"{label}-", dir=work_dir)
  data_dir, root = os.path.join(size_dir, "data"), os.path.join(size_dir, "root")
  print(f"[{label}] writing {size.synthetic_ratings:,} ratings of "
        f"{size.synthetic_users:,} users and {size.synthetic_movies:,} movies to "
        f"{data_dir}", flush=True)
  start = time.perf_counter()
  scaling.write_ml_latest(data_dir, size)
  write_seconds = time.perf_counter() - start
  print(f"[{label}] written in {write_seconds:.1f} s; running local_runner.py, root "
        f"{root}", flush=True)
  try:
    run = pipeline_benchmark.run_pipeline(
        root, runner_flags(data_dir, size_dir, extra),
        os.path.join(size_dir, "runner.log"), poll_seconds)
  except RuntimeError as e:
    raise _failure(label, e, size_dir, root) from e
  print(f"[{label}] wall {run.wall_seconds:.1f} s, peak RSS "
        f"{run.peak_tree_rss_mib / 2**10:.2f} GiB", flush=True)
  if not keep:
    shutil.rmtree(size_dir, ignore_errors=True)
  return SizeResult(size=size, write_seconds=write_seconds, run=run)


def component_names(measured: Sequence[SizeResult]) -> List[str]:
  """Every component of any run, in the order of the runs' summaries."""
  names: Dict[str, None] = {}
  for result in measured:
    names.update(dict.fromkeys(result.component_seconds))
  return list(names)


def size_table(measured: Sequence[SizeResult]) -> str:
  """One row per size: the data set, each component's seconds, wall, RSS, write."""
  components = component_names(measured)
  rows = []
  for result in measured:
    seconds = result.component_seconds
    rows.append([scaling.size_label(result.num_ratings), result.num_ratings,
                 result.size.synthetic_users, result.size.synthetic_movies,
                 *(_format(seconds.get(name), ".1f") for name in components),
                 f"{result.run.wall_seconds:.1f}",
                 f"{result.run.peak_tree_rss_mib / 2**10:.2f}",
                 f"{result.write_seconds:.1f}"])
  return results.table(["size", "ratings", "users", "movies",
                        *(f"{name} s" for name in components), "wall s", "peak RSS GiB",
                        "data write s"], rows)


def _costs(result: SizeResult, components: Sequence[str]) -> Dict[str, Optional[float]]:
  """Wall seconds, each component's seconds and the peak RSS of one size."""
  return {"wall": result.run.wall_seconds,
          **{name: result.component_seconds.get(name) for name in components},
          "peak RSS": result.run.peak_tree_rss_mib}


def exponent_table(measured: Sequence[SizeResult]) -> str:
  """One row per two consecutive sizes: the growth exponent of each cost."""
  components = component_names(measured)
  names = list(_costs(measured[0], components))
  rows = []
  for low, high in zip(measured, measured[1:]):
    low_costs, high_costs = _costs(low, components), _costs(high, components)
    rows.append([f"{scaling.size_label(low.num_ratings)} to "
                 f"{scaling.size_label(high.num_ratings)}",
                 *(_format(scaling.growth_exponent(low.num_ratings, high.num_ratings,
                                                   low_costs[name], high_costs[name]),
                           ".2f") for name in names)])
  return results.table(["sizes", *names], rows)


def _format(value: Optional[float], spec: str) -> str:
  return "" if value is None else format(value, spec)


def result_sections(measured: Sequence[SizeResult],
                    extra: Sequence[str]) -> List[results.Section]:
  """The results file's sections: the sizes' costs, then the growth exponents."""
  return [
      ("Cost per size", "Synthetic data in the ml-latest CSV layout (benchmarks/"
       "scaling.py: users and movies as in the GroupLens data sets); each size on a fresh "
       "pipeline root with the cache off. local_runner.py flags beyond the data, root and "
       f"serving directory: `{shlex.join(extra) or '(none)'}`. Wall: the runner process, "
       "imports included. Peak RSS: the largest sampled sum over the runner's process "
       "tree. Data write: writing the CSV files, not part of the run.\n\n"
       + size_table(measured)),
      ("Growth exponents", "k of cost ~ ratings^k between consecutive sizes: "
       "log(cost2 / cost1) / log(ratings2 / ratings1); 1 is linear. Blank where a cost "
       "is zero.\n\n" + exponent_table(measured)),
  ]


def _check_flags() -> None:
  for name, ours in _FOREIGN_FLAGS.items():
    if flags.FLAGS[name].present:
      raise app.UsageError(f"--{name} is pipeline_benchmark.py's; scale.py uses {ours}.")


def run(sizes: Sequence[configs.SyntheticDataConfig], work_dir: str,
        extra: Sequence[str], poll_seconds: float, keep: bool) -> List[SizeResult]:
  """Measures every size in turn, printing the table so far after each and writing it to
  the results file, so that a long size that fails or is stopped keeps the smaller ones."""
  measured = []
  for size in sizes:
    measured.append(measure(size, work_dir, extra, poll_seconds, keep))
    print(size_table(measured), flush=True)
    write_results(measured, extra)
  return measured


def write_results(measured: Sequence[SizeResult], extra: Sequence[str]) -> None:
  results.write(results.results_name(__file__), "Pipeline cost against the number of "
                "ratings", result_sections(measured, extra))


def main(argv: Sequence[str]) -> int:
  _check_flags()
  extra = list(_RUNNER_ARGS.value) + list(argv[1:])
  check_runner_args(extra)
  try:
    sizes = [scaling.catalogue_size(n) for n in scaling.parse_sizes(_SIZES.value)]
  except ValueError as e:
    raise app.UsageError(f"--sizes: {e}") from e
  work_dir = _WORK_DIR.value or tempfile.mkdtemp(prefix="scale-benchmark-")
  os.makedirs(work_dir, exist_ok=True)
  print(f"Pipeline scale benchmark, {os.cpu_count()} CPUs, work directory {work_dir}, "
        f"local_runner.py flags: {shlex.join(extra) or '(none)'}", flush=True)
  try:
    measured = run(sizes, work_dir, extra, flags.FLAGS.poll_seconds, _KEEP.value)
  except SizeFailed as e:
    print(f"ERROR: {e}", file=sys.stderr, flush=True)
    return 1
  print(exponent_table(measured), flush=True)
  if _KEEP.value:
    print(f"Data, pipeline roots and logs kept in {work_dir}", flush=True)
  elif not _WORK_DIR.value:
    shutil.rmtree(work_dir, ignore_errors=True)
  return 0


if __name__ == "__main__":
  app.run(main)
