"""End-to-end pipeline benchmark: a cold `local_runner.py` run, then a cached re-run.

Runs `python local_runner.py --pipeline_root ROOT` as a child process on a fresh, empty
root (default data: the built-in synthetic ml-100k-sized set), and measures
  * the cold run's wall time and peak memory of its whole process tree: every
    --poll_seconds the RSS of the runner and all its descendants is summed, and the
    largest sum is reported (shared pages of several processes count once per process,
    so this errs high); also ru_maxrss of the child from wait4 (the largest single
    process among the runner and its waited-for descendants);
  * the wall time of a second run with nothing changed, on the same root, which must
    reuse every cached result;
  * per-component seconds of both runs and which were cached, and the model's retrieval
    metrics against the popularity baseline, from ROOT/run_summary.json.

The runner's own output goes to ROOT/_benchmark_logs/; on a failure its tail is printed
and the root is kept. The figures are printed and written to docs/benchmarks/
pipeline_benchmark.md, or pipeline_benchmark-<data set>.md when the local_runner.py
flags name a --data_dir or a synthetic size (benchmarks/results.py).

  python benchmarks/pipeline_benchmark.py [--keep_root] [--pipeline_root DIR]
      [--extra_flags="--synthetic_ratings=1000000"] [-- more local_runner flags]
"""
import dataclasses
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from absl import app
from absl import flags

# Run as a script, benchmarks/ is on sys.path and results.py with it.
import results

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# pipeline/run_summary.py's SUMMARY_FILE; not imported, as that module pulls in TensorFlow.
_SUMMARY_FILE = "run_summary.json"
_LOG_DIR = "_benchmark_logs"

COLD_TARGET_SECONDS = 180.0
RERUN_TARGET_SECONDS = 30.0

_PIPELINE_ROOT = flags.DEFINE_string(
    "pipeline_root", None, "Pipeline root to use instead of a fresh temporary directory. "
    "It must be absent or empty, so that the first run is cold.")
_KEEP_ROOT = flags.DEFINE_bool(
    "keep_root", False, "Keep the pipeline root at the end (default: delete it).")
_EXTRA_FLAGS = flags.DEFINE_string(
    "extra_flags", "", "More local_runner.py flags, one shell-quoted string, e.g. "
    "'--synthetic_ratings=1000000'. Arguments after `--` are passed on as well.")
_POLL_SECONDS = flags.DEFINE_float("poll_seconds", 0.2,
                                   "Interval of the process-tree RSS sampling.")


@dataclasses.dataclass(frozen=True)
class RunResult:
  """Measurements of one local_runner.py run."""
  wall_seconds: float
  peak_tree_rss_mib: float  # Largest sampled sum of RSS over the process tree.
  child_maxrss_mib: float  # ru_maxrss from wait4: the largest single process.
  summary: Dict[str, Any]  # ROOT/run_summary.json as this run wrote it.


def _children_by_parent() -> Dict[int, List[int]]:
  """Parent pid -> child pids, for every process in /proc."""
  children: Dict[int, List[int]] = {}
  for entry in os.listdir("/proc"):
    if not entry.isdigit():
      continue
    try:
      with open(f"/proc/{entry}/stat", "rb") as f:
        stat = f.read()
    except OSError:  # Exited meanwhile.
      continue
    # Field 4 (ppid) follows the command name, which is in parentheses and may hold spaces.
    ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
    children.setdefault(ppid, []).append(int(entry))
  return children


def _rss_bytes(pid: int) -> int:
  try:
    with open(f"/proc/{pid}/statm", "rb") as f:
      return int(f.read().split()[1]) * resource.getpagesize()
  except (OSError, IndexError, ValueError):  # Exited meanwhile.
    return 0


def tree_rss_bytes(root_pid: int) -> int:
  """Summed resident set size of `root_pid` and all its descendants."""
  children = _children_by_parent()
  total, stack, seen = 0, [root_pid], set()
  while stack:
    pid = stack.pop()
    if pid in seen:
      continue
    seen.add(pid)
    total += _rss_bytes(pid)
    stack.extend(children.get(pid, []))
  return total


def _tail(path: str, lines: int = 40) -> str:
  with open(path, "r", errors="replace") as f:
    return "".join(f.readlines()[-lines:])


def run_pipeline(pipeline_root: str, extra_flags: Sequence[str], log_path: str,
                 poll_seconds: float = 0.2) -> RunResult:
  """Runs local_runner.py once on `pipeline_root`, sampling the tree's memory meanwhile."""
  # --allow_unblessed: a run that completes without pushing is still a timed run.
  command = [sys.executable, os.path.join(_REPO_ROOT, "local_runner.py"),
             f"--pipeline_root={pipeline_root}", "--allow_unblessed", *extra_flags]
  env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
  peak = 0
  with open(log_path, "w") as log:
    log.write(shlex.join(command) + "\n")
    log.flush()
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=_REPO_ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
      while True:
        # wait4 reaps the child itself, so its rusage is this run's alone.
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
          break
        peak = max(peak, tree_rss_bytes(process.pid))
        time.sleep(poll_seconds)
    except BaseException:
      process.kill()
      process.wait()
      raise
    wall_seconds = time.perf_counter() - start
  process.returncode = os.waitstatus_to_exitcode(status)  # Popen did not see the wait.
  if process.returncode:
    raise RuntimeError(f"local_runner.py exited with {process.returncode}; log "
                       f"{log_path}, last lines:\n{_tail(log_path)}")
  with open(os.path.join(pipeline_root, _SUMMARY_FILE)) as f:
    summary = json.load(f)
  return RunResult(wall_seconds=wall_seconds, peak_tree_rss_mib=peak / 2**20,
                   child_maxrss_mib=usage.ru_maxrss / 2**10,  # KiB on Linux.
                   summary=summary)


def _verdict(ok: bool) -> str:
  return "met" if ok else "MISSED"


def format_components(label: str, summary: Mapping[str, Any]) -> List[str]:
  """One line per component: its seconds and whether its result was cached."""
  cached = set(summary.get("cached_components", []))
  return [f"{label} component {node}: {seconds:.1f} s"
          + (" (cached)" if node in cached else " (executed)")
          for node, seconds in summary.get("component_seconds", {}).items()]


def format_quality(summary: Mapping[str, Any]) -> List[str]:
  """Model vs popularity baseline on every metric of the summary (higher is better)."""
  if "model" not in summary:
    return ["quality: no evaluation in run_summary.json"]
  model, popularity = summary["model"], summary.get("baseline_popularity", {})
  lines, wins, compared = [], 0, 0
  for name, value in model.items():
    base = popularity.get(name)
    if "@" not in name or base is None:  # Counts such as num_eval_users.
      lines.append(f"quality {name}: {value:g}")
      continue
    compared += 1
    wins += value > base
    mark = "model wins" if value > base else ("tie" if value == base else "popularity wins")
    lines.append(f"quality {name}: model {value:.4f} vs popularity {base:.4f} ({mark})")
  lines.append(f"quality: model wins {wins} of {compared} metrics")
  lines.append(f"blessed: {summary.get('blessed')}; pushed model: "
               f"{summary.get('pushed_model') or 'not pushed'}")
  return lines


def run(pipeline_root: Optional[str], extra_flags: Sequence[str], keep_root: bool,
        poll_seconds: float = 0.2) -> Dict[str, Any]:
  """Cold run and cached re-run on one root; prints the figures and returns them."""
  if pipeline_root:
    pipeline_root = os.path.abspath(pipeline_root)
    if os.path.exists(pipeline_root) and os.listdir(pipeline_root):
      raise app.UsageError(f"{pipeline_root} is not empty; a cold run needs an empty root.")
    os.makedirs(pipeline_root, exist_ok=True)
  else:
    pipeline_root = tempfile.mkdtemp(prefix="pipeline-benchmark-")
  log_dir = os.path.join(pipeline_root, _LOG_DIR)
  os.makedirs(log_dir)
  print(f"Pipeline benchmark, {os.cpu_count()} CPUs, root {pipeline_root}, "
        f"local_runner.py flags: {shlex.join(extra_flags) or '(none)'}", flush=True)
  failed = True
  try:
    cold = run_pipeline(pipeline_root, extra_flags, os.path.join(log_dir, "cold.log"),
                        poll_seconds)
    print(f"cold run wall time: {cold.wall_seconds:.1f} s (target <= "
          f"{COLD_TARGET_SECONDS:.0f} s, {_verdict(cold.wall_seconds <= COLD_TARGET_SECONDS)})")
    print(f"cold run wall time reported by local_runner.py (after its imports): "
          f"{cold.summary.get('wall_seconds', float('nan')):.1f} s")
    print(f"cold run peak RSS, process tree sum: {cold.peak_tree_rss_mib:,.0f} MiB")
    print(f"cold run peak RSS, largest process (ru_maxrss): {cold.child_maxrss_mib:,.0f} MiB",
          flush=True)
    rerun = run_pipeline(pipeline_root, extra_flags, os.path.join(log_dir, "rerun.log"),
                         poll_seconds)
    print(f"re-run wall time: {rerun.wall_seconds:.1f} s (target <= "
          f"{RERUN_TARGET_SECONDS:.0f} s, {_verdict(rerun.wall_seconds <= RERUN_TARGET_SECONDS)})")
    print(f"re-run wall time reported by local_runner.py (after its imports): "
          f"{rerun.summary.get('wall_seconds', float('nan')):.1f} s")
    print(f"re-run peak RSS, process tree sum: {rerun.peak_tree_rss_mib:,.0f} MiB")
    executed = [node for node in rerun.summary.get("component_seconds", {})
                if node not in rerun.summary.get("cached_components", [])]
    print("re-run cache: " + ("all components cached" if not executed else
                              f"NOT cached: {', '.join(executed)}"))
    print(f"re-run blessed: {rerun.summary.get('blessed')}; pushed model: "
          f"{rerun.summary.get('pushed_model') or 'not pushed'}")
    for line in (format_components("cold", cold.summary)
                 + format_components("re-run", rerun.summary)
                 + format_quality(cold.summary)):
      print(line)
    sys.stdout.flush()
    failed = False
    return {"pipeline_root": pipeline_root, "cold": cold, "rerun": rerun}
  finally:
    if keep_root or failed:
      print(f"pipeline root kept: {pipeline_root}", flush=True)
    else:
      shutil.rmtree(pipeline_root, ignore_errors=True)


def _seconds(value: Any) -> str:
  return "" if value is None else f"{value:.1f}"


def result_sections(cold: RunResult, rerun: RunResult,
                    extra_flags: Sequence[str]) -> List[results.Section]:
  """The results file's sections: runs, components and the model's quality."""
  runs = []
  for label, result, target in (("cold", cold, COLD_TARGET_SECONDS),
                                ("re-run, nothing changed", rerun, RERUN_TARGET_SECONDS)):
    runs.append([label, f"{result.wall_seconds:.1f}",
                 _seconds(result.summary.get("wall_seconds")),
                 f"{result.peak_tree_rss_mib:,.0f}", f"{result.child_maxrss_mib:,.0f}",
                 f"<= {target:.0f} s", _verdict(result.wall_seconds <= target)])
  executed = [node for node in rerun.summary.get("component_seconds", {})
              if node not in rerun.summary.get("cached_components", [])]
  sections = [
      ("Runs", f"local_runner.py flags: `{shlex.join(extra_flags) or '(none)'}` (and "
               "`--allow_unblessed`); a fresh root, run twice.\n\n" + results.table(
                   ["run", "wall s", "in the runner s", "peak RSS, process tree MiB",
                    "peak RSS, largest process MiB", "target", "verdict"], runs)
       + "\n\nRe-run cache: " + ("every component cached." if not executed else
                                  f"NOT cached: {', '.join(executed)}.")),
  ]
  cold_cached = set(cold.summary.get("cached_components", []))
  rerun_cached = set(rerun.summary.get("cached_components", []))
  rerun_seconds = rerun.summary.get("component_seconds", {})
  sections.append(("Components", results.table(
      ["component", "cold s", "cold", "re-run s", "re-run"],
      [[node, f"{seconds:.1f}", "cached" if node in cold_cached else "executed",
        _seconds(rerun_seconds.get(node)),
        "cached" if node in rerun_cached else "executed"]
       for node, seconds in cold.summary.get("component_seconds", {}).items()])))
  summary = cold.summary
  if "model" in summary:
    columns = [(key, label) for key, label in (("model", "model"),
                                               ("baseline_popularity", "popularity"),
                                               ("baseline_ease", "EASE"))
               if summary.get(key)]
    rows = [[name] + [_metric(summary[key].get(name)) for key, _ in columns]
            for name in summary["model"]]
    sections.append(("Quality of the cold run's model", results.table(
        ["metric"] + [label for _, label in columns], rows)
        + f"\n\nBlessed: {summary.get('blessed')}; pushed: "
        f"{'yes' if summary.get('pushed_model') else 'no'}."
        + "".join(f"\n- {reason}" for reason in summary.get("blessing_reasons", []))))
  counts = summary.get("data_counts")
  if counts:
    sections.append(("Data", results.table(["count", "value"],
                                            [[name, value] for name, value in counts.items()])))
  return sections


def _metric(value: Any) -> str:
  if value is None:
    return ""
  return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def main(argv: Sequence[str]) -> None:
  extra = shlex.split(_EXTRA_FLAGS.value) + list(argv[1:])
  measured = run(_PIPELINE_ROOT.value, extra, _KEEP_ROOT.value, _POLL_SECONDS.value)
  results.write(results.results_name(__file__, results.runner_data_set(extra)),
                "Pipeline benchmark: a cold local_runner.py run and a cached re-run",
                result_sections(measured["cold"], measured["rerun"], extra))


if __name__ == "__main__":
  app.run(main)
