"""Cost of the input content fingerprint (movielens.sources.content_fingerprint).

MovieLensExampleGen's cache key includes a SHA-256 of the data files, computed each time
the pipeline is built. For each size this writes synthetic data in the real formats
(benchmarks/convert_synthetic.py: ml-1m's `::` .dat files, ml-latest's CSV files and its
zip), then times the fingerprint of each: warm (files in the page cache, as right after
a download or a previous run; the best of --repeats) and cold (the files evicted from
the page cache with posix_fadvise, so read from disk). The figures are printed and
written to docs/benchmarks/fingerprint_cost.md (benchmarks/results.py).

Usage:
  python benchmarks/fingerprint_cost.py [--sizes=1m,10m] [--repeats=3] [--work_dir=DIR]
"""
import os
import sys
import tempfile
import time
from typing import Dict, List, Sequence

from absl import app
from absl import flags

# Run as a script, the repository root is not on sys.path.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [path for path in (_REPO_ROOT, os.path.dirname(__file__))
                if path not in sys.path]

# pylint: disable=g-import-not-at-top,wrong-import-position
import convert_synthetic
import results
from contracts import configs
from movielens import sources
from movielens import synthetic
# pylint: enable=g-import-not-at-top,wrong-import-position

# Users, movies and ratings of ml-1m and ml-10m.
SIZES: Dict[str, configs.SyntheticDataConfig] = {
    "1m": configs.SyntheticDataConfig(synthetic_users=6040, synthetic_movies=3706,
                                      synthetic_ratings=1_000_209),
    "10m": configs.SyntheticDataConfig(synthetic_users=69878, synthetic_movies=10677,
                                       synthetic_ratings=10_000_054),
}
# Converted layout -> the files the fingerprint reads, relative to the output directory.
_LOCATIONS = {
    "ml-1m": ("ml-1m/ratings.dat", "ml-1m/movies.dat"),
    "ml-latest": ("ml-latest/ratings.csv", "ml-latest/movies.csv"),
    "ml-latest.zip": ("ml-latest.zip",),
}

_SIZES = flags.DEFINE_list("sizes", list(SIZES), f"Sizes to run, from {list(SIZES)}.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Warm runs per location; the best counts.")
_WORK_DIR = flags.DEFINE_string("work_dir", None,
                                "Where to write the data (default: a temporary directory).")


def _evict(paths: Sequence[str]) -> None:
  """Drops the files' pages from the page cache (this process's files only)."""
  for path in paths:
    fd = os.open(path, os.O_RDONLY)
    try:
      os.fsync(fd)
      os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
      os.close(fd)


def _seconds(location: str) -> float:
  start = time.perf_counter()
  assert sources.content_fingerprint(location)
  return time.perf_counter() - start


def measure(out: str, layout: str, repeats: int) -> Dict[str, float]:
  """Fingerprint seconds (warm, cold) and MiB hashed of one converted layout."""
  files = [os.path.join(out, name) for name in _LOCATIONS[layout]]
  location = files[0] if len(files) == 1 else os.path.dirname(files[0])
  mib = sum(os.path.getsize(path) for path in files) / 2**20
  warm = min(_seconds(location) for _ in range(repeats))
  _evict(files)
  cold = _seconds(location)
  return {"mib": mib, "warm": warm, "cold": cold}


def run(sizes: Sequence[str], repeats: int, work_dir: str) -> List[List[str]]:
  """Measures every layout of every size, printing each; returns the rows."""
  rows = []
  print(f"{'ratings':>11} {'layout':>14} {'MiB':>7} {'warm s':>7} {'cold s':>7} "
        f"{'warm MiB/s':>10}", flush=True)
  for size in sizes:
    out = tempfile.mkdtemp(prefix=f"fingerprint-{size}-", dir=work_dir)
    with tempfile.TemporaryDirectory(dir=work_dir) as raw:
      count = convert_synthetic.convert(synthetic.generate(raw, SIZES[size]), out)
    for layout in _LOCATIONS:
      result = measure(out, layout, repeats)
      print(f"{count:>11,} {layout:>14} {result['mib']:>7.1f} {result['warm']:>7.3f} "
            f"{result['cold']:>7.3f} {result['mib'] / result['warm']:>10.0f}", flush=True)
      rows.append([f"{count:,}", layout, f"{result['mib']:.1f}", f"{result['warm']:.3f}",
                   f"{result['cold']:.3f}", f"{result['mib'] / result['warm']:.0f}"])
  return rows


def main(argv: List[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  unknown = [size for size in _SIZES.value if size not in SIZES]
  if unknown:
    raise app.UsageError(f"Unknown sizes {unknown}; known: {list(SIZES)}.")
  print(f"Content fingerprint (SHA-256, 1 MiB reads), {os.cpu_count()} CPUs")
  with tempfile.TemporaryDirectory(dir=_WORK_DIR.value) as work_dir:
    rows = run(_SIZES.value, _REPEATS.value, work_dir)
  results.write(results.results_name(__file__), "Content fingerprint of the input data", [(
      "SHA-256 of the files the pipeline reads",
      f"Synthetic data in the real formats (benchmarks/convert_synthetic.py); warm: the "
      f"best of {_REPEATS.value} runs with the files in the page cache; cold: the files "
      "evicted first.\n\n" + results.table(
          ["ratings", "layout", "MiB", "warm s", "cold s", "warm MiB/s"], rows))])


if __name__ == "__main__":
  app.run(main)
