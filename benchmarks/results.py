"""Results files: every benchmark script ends by writing what it measured to one file.

`write` renders a markdown file, docs/benchmarks/<name>.md by default, that says when, where,
how and from which code its figures were measured, then holds the figures:

  * the date and time (UTC);
  * the machine: platform, CPU model (from /proc/cpuinfo), cores, total memory, GPU;
  * the exact command, shell-quoted, relative to the repository root;
  * the commit (`git rev-parse HEAD`), "with uncommitted changes" when `git status` shows
    changed tracked files, or "unknown commit" outside a git checkout (recorded, not
    fatal: a long run's figures are kept, and the file says they cannot be traced);
  * then the script's sections, markdown tables (`table`) or code blocks (`code_block`).

The figures exist only in these files: docstrings, comments and the README link to them.

File names (docs/benchmarks/README.md): `<script>.md` for a run on the built-in synthetic
data, `<script>-<data set>.md` for any other data set, the data set named by
`data_set_label`: the basename of the data directory or zip, without `.zip`. A script that
reads a finished pipeline root finds the data set in the root's ML Metadata
(`run_data_dir`). Two flags every benchmark script gets by importing this module:
--results_dir (another directory, e.g. for an ad-hoc run or a test) and --data_set (the
data set part of the name, where it cannot be found or should be another).
"""
import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
from typing import Any, List, Optional, Sequence, Tuple, Union

from absl import flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RESULTS_DIR = os.path.join(REPO_ROOT, "docs", "benchmarks")
# The data set label of the built-in synthetic data: no suffix in the file name.
SYNTHETIC = "synthetic"
# The local runner's synthetic data size flags, in the order of the directory name that
# movielens.synthetic.default_data_dir gives them (synthetic-u943-m1682-r100000-s42).
_SYNTHETIC_FLAGS = (("synthetic_users", "u"), ("synthetic_movies", "m"),
                    ("synthetic_ratings", "r"), ("synthetic_seed", "s"))
# Shown of the changed files when the commit has uncommitted changes.
_MAX_CHANGED_FILES = 10

_RESULTS_DIR = flags.DEFINE_string(
    "results_dir", None, "Where to write the results file (default: docs/benchmarks/ of "
    "the repository).")
_DATA_SET = flags.DEFINE_string(
    "data_set", None, "The data set part of the results file's name "
    "(<script>-<data_set>.md; 'synthetic' for none). Default: the data set the script "
    "ran on, from its --data_dir or the pipeline root's ML Metadata.")

Section = Tuple[str, str]  # (heading, markdown body)


# ---------------------------------------------------------------------------------- names


def default_synthetic_name() -> str:
  """The directory name of the built-in synthetic data at its default size."""
  from contracts import configs  # pylint: disable=g-import-not-at-top
  size = configs.SyntheticDataConfig()
  return "synthetic-" + "-".join(f"{short}{getattr(size, name)}"
                                 for name, short in _SYNTHETIC_FLAGS)


def data_set_label(data_dir: Optional[str]) -> str:
  """The data set's name in a results file name.

  None, "" and "synthetic" are the built-in synthetic data; a path is named by its
  basename without `.zip` (".../ml-latest-small.zip" -> "ml-latest-small"), and the
  default synthetic data's directory (<pipeline_root>/data/synthetic-u943-m1682-r100000-s42)
  is "synthetic" again. Characters outside [A-Za-z0-9._+-] become "_".
  """
  if not data_dir or data_dir == SYNTHETIC:
    return SYNTHETIC
  path = data_dir if "://" in data_dir else os.path.abspath(data_dir)  # "." names a folder.
  name = os.path.basename(path.rstrip("/\\"))
  name = name[:-len(".zip")] if name.endswith(".zip") else name
  if name == default_synthetic_name():
    return SYNTHETIC
  return re.sub(r"[^A-Za-z0-9._+-]", "_", name) or SYNTHETIC


def results_name(script: str, data_set: Optional[str] = None, use_flag: bool = True) -> str:
  """`<script>` on the synthetic data, else `<script>-<data set>`; --data_set wins.

  Args:
    script: The script's file name or path (benchmarks/serving_benchmark.py) or its stem.
    data_set: A label or a data directory (see `data_set_label`); None: synthetic.
    use_flag: Whether --data_set, when given, replaces `data_set` (False for a script
      that writes one file per data set).
  """
  stem = os.path.splitext(os.path.basename(script))[0]
  if use_flag and flags.FLAGS.is_parsed() and _DATA_SET.value:
    data_set = _DATA_SET.value
  label = data_set_label(data_set)
  return stem if label == SYNTHETIC else f"{stem}-{label}"


def _flag_values(args: Sequence[str], name: str) -> List[str]:
  """Values of `--name=V` and `--name V` in an argument list, in order."""
  values = []
  for i, arg in enumerate(args):
    if arg.startswith(f"--{name}="):
      values.append(arg.split("=", 1)[1])
    elif arg == f"--{name}" and i + 1 < len(args):
      values.append(args[i + 1])
  return values


def runner_data_set(runner_args: Sequence[str]) -> str:
  """The data set label of a local_runner.py command line (its flags).

  --data_dir names it; without one the synthetic data's size flags do, as the directory
  the runner generates is named (a non-default size: e.g. synthetic-u943-m1682-r1000000-s42).
  """
  data_dirs = _flag_values(runner_args, "data_dir")
  if data_dirs and data_dirs[-1]:
    return data_set_label(data_dirs[-1])
  given = {name: _flag_values(runner_args, name) for name, _ in _SYNTHETIC_FLAGS}
  if not any(given.values()):
    return SYNTHETIC
  from contracts import configs  # pylint: disable=g-import-not-at-top
  size = configs.SyntheticDataConfig()
  return data_set_label("synthetic-" + "-".join(
      f"{short}{given[name][-1] if given[name] else getattr(size, name)}"
      for name, short in _SYNTHETIC_FLAGS))


def run_data_dir(pipeline_root: str) -> Optional[str]:
  """The data directory the newest MovieLensExampleGen execution under `pipeline_root` read,
  from the root's ML Metadata (metadata.sqlite); None when there is none to read."""
  path = os.path.join(pipeline_root, "metadata.sqlite")
  if not os.path.isfile(path):
    return None
  # pylint: disable=g-import-not-at-top
  from ml_metadata import metadata_store
  from ml_metadata.proto import metadata_store_pb2
  # pylint: enable=g-import-not-at-top
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = path
  config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
  store = metadata_store.MetadataStore(config)
  type_ids = {t.id for t in store.get_execution_types()
              if t.name.split(".")[-1] == "MovieLensExampleGen"}
  executions = sorted((e for e in store.get_executions() if e.type_id in type_ids),
                      key=lambda e: e.id)
  for execution in reversed(executions):
    for properties in (execution.properties, execution.custom_properties):
      if "data_dir" in properties and properties["data_dir"].string_value:
        return properties["data_dir"].string_value
  return None


def run_data_set(pipeline_root: str) -> str:
  """The data set label of the run under `pipeline_root` (see `run_data_dir`).

  A model directory inside a root (<root>/serving_model[/<version>]) finds its root's
  metadata too. Raises ValueError when no run records one and --data_set is not given.
  """
  if flags.FLAGS.is_parsed() and _DATA_SET.value:
    return _DATA_SET.value
  folder = os.path.abspath(pipeline_root)
  for _ in range(3):  # The root itself, serving_model/, serving_model/<version>/.
    if os.path.isfile(os.path.join(folder, "metadata.sqlite")):
      data_dir = run_data_dir(folder)
      if data_dir:
        return data_set_label(data_dir)
    folder = os.path.dirname(folder)
  raise ValueError(f"No pipeline run under {pipeline_root} records its data set in ML "
                   "Metadata; name it with --data_set (e.g. --data_set=synthetic).")


# ------------------------------------------------------------------------------- context


def _read(path: str) -> str:
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      return f.read()
  except OSError:
    return ""


def machine() -> str:
  """One line: platform, CPU model, cores, total memory, GPU, Python."""
  cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.MULTILINE)
  cores = os.cpu_count() or 0
  try:
    usable = len(os.sched_getaffinity(0))
  except (AttributeError, OSError):
    usable = cores
  memory = re.search(r"^MemTotal:\s*(\d+)\s*kB", _read("/proc/meminfo"), re.MULTILINE)
  parts = [platform.platform(),
           cpu.group(1).strip() if cpu else (platform.processor() or "unknown CPU"),
           f"{cores} cores" + (f" ({usable} usable)" if usable != cores else ""),
           f"{int(memory.group(1)) / 2**20:.1f} GiB memory" if memory else "memory unknown",
           f"GPU: {gpu()}", f"Python {platform.python_version()}"]
  return ", ".join(parts)


def gpu() -> str:
  """The GPUs nvidia-smi lists, or "none"."""
  try:
    listed = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                            capture_output=True, text=True, timeout=20, check=True).stdout
  except (OSError, subprocess.SubprocessError):
    return "none"
  names = [line.strip() for line in listed.splitlines() if line.strip()]
  return " + ".join(names) or "none"


def _git(repo_root: str, *args: str) -> str:
  return subprocess.run(["git", "-C", repo_root, *args], capture_output=True, text=True,
                        timeout=60, check=True).stdout


def commit(repo_root: str = REPO_ROOT) -> str:
  """HEAD's hash, with the changed tracked files if any; "unknown commit (...)" outside a
  git checkout."""
  try:
    head = _git(repo_root, "rev-parse", "--verify", "HEAD").strip()
    changed = _git(repo_root, "status", "--porcelain", "--untracked-files=no").splitlines()
  except (OSError, subprocess.SubprocessError) as e:
    reason = getattr(e, "stderr", "") or str(e)
    reason = reason.strip().splitlines()[0] if reason.strip() else type(e).__name__
    return f"unknown commit ({repo_root} is not a git checkout: {reason})"
  if not changed:
    return head
  names = [line[3:] for line in changed]
  shown = ", ".join(names[:_MAX_CHANGED_FILES])
  more = f" and {len(names) - _MAX_CHANGED_FILES} more" if len(names) > _MAX_CHANGED_FILES else ""
  return f"{head} with uncommitted changes ({shown}{more})"


def command(argv: Sequence[str], repo_root: str = REPO_ROOT,
            executable: Optional[str] = sys.executable, cwd: Optional[str] = None) -> str:
  """The command line that ran `argv` (sys.argv), shell-quoted, run from the repository
  root: the interpreter and paths inside the repository relative to it."""
  root = os.path.abspath(repo_root)
  cwd = os.path.abspath(cwd or os.getcwd())

  def relative(arg: str) -> str:
    # A path argument, alone or as a flag's value: one inside the repository relative to
    # it, and one relative to another working directory re-expressed from the root.
    prefix, sep, value = arg.partition("=") if arg.startswith("-") else ("", "", arg)
    if not value or any(space in value for space in " \t\n"):
      return arg
    if os.path.isabs(value):
      if value == root or value.startswith(root + os.sep):
        return prefix + sep + os.path.relpath(value, root)
    elif cwd != root and os.path.exists(os.path.join(cwd, value)):
      return prefix + sep + os.path.relpath(os.path.join(cwd, value), root)
    return arg

  words = [relative(arg) for arg in argv]
  if executable and argv and argv[0].endswith(".py"):
    words.insert(0, relative(executable))
  return shlex.join(words)


# ------------------------------------------------------------------------------ markdown


def _cell(value: Any) -> str:
  if value is None:
    return ""
  text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
  return text.replace("|", "\\|").replace("\n", " ")


_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?( ?(%|s|ms|MiB|GiB|MB|x))?$")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A markdown table; columns whose cells are all numbers are right-aligned.

  Cells are str()'d (ints with thousands separators, None empty); format floats before.
  """
  cells = [[_cell(value) for value in row] for row in rows]
  for row in cells:
    if len(row) != len(header):
      raise ValueError(f"A row of {len(row)} cells under a header of {len(header)}: {row}")
  numeric = [bool(cells) and all(not row[i] or _NUMBER.match(row[i]) for row in cells)
             for i in range(len(header))]
  lines = ["| " + " | ".join(_cell(name) for name in header) + " |",
           "|" + "|".join("---:" if right else "---" for right in numeric) + "|"]
  lines += ["| " + " | ".join(row) + " |" for row in cells]
  return "\n".join(lines)


def code_block(text: str, info: str = "") -> str:
  """`text` in a fenced code block, the fence longer than any backtick run inside."""
  longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
  fence = "`" * max(3, longest + 1)
  return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"


def render(title: str, sections: Union[str, Sequence[Section]], argv: Sequence[str],
           repo_root: str = REPO_ROOT, now: Optional[datetime.datetime] = None,
           executable: Optional[str] = sys.executable) -> str:
  """The results file's text: the header, then the sections."""
  now = now or datetime.datetime.now(datetime.timezone.utc)
  now = now.astimezone(datetime.timezone.utc)
  script = next((arg for arg in argv if arg.endswith(".py")), argv[0] if argv else "?")
  script = os.path.relpath(os.path.abspath(script), repo_root) if script != "?" else script
  lines = [
      f"# {title}",
      "",
      f"Written by `{script}` (benchmarks/results.py); run the command again to update it.",
      "",
      f"- Date: {now:%Y-%m-%d %H:%M:%S} UTC",
      f"- Machine: {machine()}",
      f"- Commit: {commit(repo_root)}",
      "- Command, from the repository root:",
      "",
      code_block(command(argv, repo_root, executable), "sh"),
  ]
  if isinstance(sections, str):
    lines += ["", sections.strip()]
  else:
    for heading, body in sections:
      lines += ["", f"## {heading}", "", body.strip()]
  return "\n".join(lines) + "\n"


def results_dir() -> str:
  """--results_dir, or docs/benchmarks/ of the repository."""
  if flags.FLAGS.is_parsed() and _RESULTS_DIR.value:
    return _RESULTS_DIR.value
  return DEFAULT_RESULTS_DIR


def write(name: str, title: str, sections: Union[str, Sequence[Section]],
          argv: Optional[Sequence[str]] = None, directory: Optional[str] = None,
          repo_root: str = REPO_ROOT, now: Optional[datetime.datetime] = None,
          executable: Optional[str] = sys.executable) -> str:
  """Writes `<directory>/<name>.md` (default: --results_dir or docs/benchmarks/) and prints
  its path; returns the path.

  Args:
    name: The file name without `.md` (`results_name`).
    title: The file's first heading.
    sections: (heading, markdown) pairs, or one markdown body.
    argv: The command line to record; default sys.argv.
    directory: Overrides --results_dir.
    repo_root: The checkout whose commit is recorded and that paths are relative to.
    now: The time to record; default now.
    executable: The interpreter that ran argv; None when argv starts with the program.
  """
  if not re.fullmatch(r"[A-Za-z0-9._+-]+", name):
    raise ValueError(f"A results file name of letters, digits and ._+- only: {name!r}")
  directory = directory or results_dir()
  text = render(title, sections, list(sys.argv if argv is None else argv), repo_root, now,
                executable)
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, f"{name}.md")
  partial = f"{path}.partial-{os.getpid()}"
  with open(partial, "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(partial, path)
  shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
  print(f"Results written to {shown}", flush=True)
  return path
