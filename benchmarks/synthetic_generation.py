"""Benchmarks the synthetic MovieLens generator at ml-100k, ml-1m and ml-10m sizes.

Each size runs in its own child process, so that its peak resident memory is its own
and not the high-water mark of an earlier, larger run. Prints, per size, the wall time
of `synthetic.generate`, the child's peak RSS and the size of the files written, and
writes them to docs/benchmarks/synthetic_generation.md (benchmarks/results.py).

Usage:
  python benchmarks/synthetic_generation.py [--sizes=100k,1m,10m] [--work_dir=DIR]
"""
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from absl import app
from absl import flags

# Run as a script, the repository root is not on sys.path; the generator lives there.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position
import results
from contracts import configs
from movielens import synthetic
# pylint: enable=g-import-not-at-top,wrong-import-position

# Users, movies and ratings of the GroupLens data sets the sizes imitate.
SIZES: Dict[str, configs.SyntheticDataConfig] = {
    "100k": configs.SyntheticDataConfig(),
    "1m": configs.SyntheticDataConfig(synthetic_users=6040, synthetic_movies=3706,
                                      synthetic_ratings=1_000_209),
    "10m": configs.SyntheticDataConfig(synthetic_users=69878, synthetic_movies=10677,
                                       synthetic_ratings=10_000_054),
}

_SIZES = flags.DEFINE_list("sizes", list(SIZES), f"Sizes to run, from {list(SIZES)}.")
_WORK_DIR = flags.DEFINE_string(
    "work_dir", None, "Directory for the generated data (default: a temporary one, "
    "deleted afterwards).")
# Internal: set by the parent in the child process it starts for one size.
_CHILD = flags.DEFINE_string("child", None, "Internal: generate this size and report.")
_CHILD_OUTPUT = flags.DEFINE_string("child_output_dir", None, "Internal.")


@dataclasses.dataclass(frozen=True)
class Result:
  """Measurements of one generator run."""
  size: str
  num_ratings: int
  wall_seconds: float
  peak_rss_mib: float  # Of the whole child process, Python and numpy included.
  output_mib: float


def _peak_rss_mib() -> float:
  """This process's peak resident set size in MiB."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  # ru_maxrss is in KiB on Linux but in bytes on macOS.
  return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _directory_mib(directory: str) -> float:
  return sum(entry.stat().st_size for entry in os.scandir(directory)
             if entry.is_file()) / 2**20


def _run_child(size: str, output_dir: str) -> None:
  """Generates one size in this process and prints its measurements as JSON."""
  start = time.perf_counter()
  synthetic.generate(output_dir, SIZES[size])
  wall_seconds = time.perf_counter() - start
  print(json.dumps({"wall_seconds": wall_seconds, "peak_rss_mib": _peak_rss_mib()}))


def measure(size: str, work_dir: str) -> Result:
  """Generates `size` into a fresh directory under `work_dir` in a child process."""
  output_dir = tempfile.mkdtemp(prefix=f"synthetic-{size}-", dir=work_dir)
  completed = subprocess.run(
      [sys.executable, os.path.abspath(__file__), f"--child={size}",
       f"--child_output_dir={output_dir}"],
      check=True, capture_output=True, text=True)
  # The child's last stdout line is its report; anything before it is logging.
  report = json.loads(completed.stdout.strip().splitlines()[-1])
  return Result(size=size, num_ratings=SIZES[size].synthetic_ratings,
                wall_seconds=report["wall_seconds"],
                peak_rss_mib=report["peak_rss_mib"],
                output_mib=_directory_mib(output_dir))


def run(sizes: Sequence[str], work_dir: Optional[str] = None) -> List[Result]:
  """Measures every size in `sizes`, printing each result as soon as it is known."""
  unknown = [size for size in sizes if size not in SIZES]
  if unknown:
    raise ValueError(f"Unknown sizes {unknown}; known: {list(SIZES)}.")
  print(f"{'size':>5} {'ratings':>11} {'wall s':>8} {'peak RSS MiB':>13} "
        f"{'output MiB':>11}", flush=True)
  results = []
  with tempfile.TemporaryDirectory(dir=work_dir) as scratch:
    for size in sizes:
      result = measure(size, scratch)
      print(f"{result.size:>5} {result.num_ratings:>11,} {result.wall_seconds:>8.2f} "
            f"{result.peak_rss_mib:>13.0f} {result.output_mib:>11.1f}", flush=True)
      results.append(result)
  return results


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if _CHILD.value:
    _run_child(_CHILD.value, _CHILD_OUTPUT.value)
    return
  print(f"Synthetic MovieLens generation, {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}")
  measured = run(_SIZES.value, _WORK_DIR.value)
  results.write(results.results_name(__file__), "Synthetic data generation", [(
      "Generator runs", "Each size in its own process (`synthetic.generate`).\n\n"
      + results.table(["size", "ratings", "wall s", "peak RSS MiB", "output MiB"],
                      [[r.size, r.num_ratings, f"{r.wall_seconds:.2f}",
                        f"{r.peak_rss_mib:,.0f}", f"{r.output_mib:.1f}"]
                       for r in measured]))])


if __name__ == "__main__":
  app.run(main)
