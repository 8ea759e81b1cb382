"""benchmarks/results.py: what a results file records, and how it is named.

Fast and without TensorFlow: the writer is plain Python, git and (for a run's data set)
ML Metadata.
"""
import datetime
import importlib.util
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load_results():
  """benchmarks/results.py as the module `results`, as the benchmark scripts import it."""
  if "results" in sys.modules and getattr(sys.modules["results"], "__file__", "").endswith(
      os.path.join("benchmarks", "results.py")):
    return sys.modules["results"]
  spec = importlib.util.spec_from_file_location("results",
                                                REPO_ROOT / "benchmarks" / "results.py")
  module = importlib.util.module_from_spec(spec)
  sys.modules["results"] = module
  spec.loader.exec_module(module)
  return module


results = _load_results()
_NOW = datetime.datetime(2026, 12, 7, 17, 30, 5, tzinfo=datetime.timezone.utc)


def _git(repo: pathlib.Path, *args: str) -> str:
  return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com",
                         "-C", str(repo), *args], check=True, capture_output=True,
                        text=True).stdout.strip()


@pytest.fixture(name="checkout")
def fixture_checkout(tmp_path):
  """A throwaway git checkout with one committed benchmark script."""
  repo = tmp_path / "repo"
  (repo / "benchmarks").mkdir(parents=True)
  (repo / "benchmarks" / "fake_benchmark.py").write_text("print('figures')\n")
  _git(repo, "init", "-q")
  _git(repo, "add", ".")
  _git(repo, "commit", "-q", "-m", "fake")
  return repo


def _write(repo: pathlib.Path, directory: pathlib.Path, **kwargs) -> str:
  argv = [str(repo / "benchmarks" / "fake_benchmark.py"), "--sizes=1m,10m",
          "--label", "two words"]
  path = results.write(
      "fake_benchmark", "Fake benchmark",
      [("Figures", results.table(["size", "wall s", "verdict"],
                                 [["1m", "1.25", "met"], ["10m", "22.60", "MISSED"]]))],
      argv=argv, directory=str(directory), repo_root=str(repo), now=_NOW,
      executable=str(repo / ".venv" / "bin" / "python"), **kwargs)
  return pathlib.Path(path).read_text()


def test_writes_date_machine_command_commit_and_table(checkout, tmp_path):
  text = _write(checkout, tmp_path / "out")
  assert (tmp_path / "out" / "fake_benchmark.md").is_file()
  assert text.startswith("# Fake benchmark\n")
  assert "- Date: 2026-12-07 17:30:05 UTC" in text
  machine = re.search(r"^- Machine: (.+)$", text, re.MULTILINE).group(1)
  assert f"{os.cpu_count()} cores" in machine
  assert "GiB memory" in machine and "GPU: " in machine
  assert f"Python {sys.version.split()[0]}" in machine
  head = _git(checkout, "rev-parse", "HEAD")
  assert f"- Commit: {head}\n" in text  # Clean: the hash alone.
  # The command from the repository root: interpreter and script relative, args quoted.
  assert ("\n.venv/bin/python benchmarks/fake_benchmark.py --sizes=1m,10m --label "
          "'two words'\n") in text
  assert "## Figures" in text
  assert "| size | wall s | verdict |\n|---|---:|---|\n| 1m | 1.25 | met |" in text
  assert "| 10m | 22.60 | MISSED |" in text


def test_uncommitted_changes_are_named(checkout, tmp_path):
  (checkout / "benchmarks" / "fake_benchmark.py").write_text("print('other figures')\n")
  (checkout / "untracked.txt").write_text("not part of the commit's code\n")
  head = _git(checkout, "rev-parse", "HEAD")
  text = _write(checkout, tmp_path)
  assert (f"- Commit: {head} with uncommitted changes (benchmarks/fake_benchmark.py)\n"
          in text)


def test_outside_a_git_checkout_records_unknown_commit(tmp_path):
  plain = tmp_path / "plain"
  (plain / "benchmarks").mkdir(parents=True)
  env_ceiling = os.environ.get("GIT_CEILING_DIRECTORIES")
  os.environ["GIT_CEILING_DIRECTORIES"] = str(tmp_path)  # Never find a repository above.
  try:
    text = _write(plain, tmp_path / "out")
  finally:
    if env_ceiling is None:
      del os.environ["GIT_CEILING_DIRECTORIES"]
    else:
      os.environ["GIT_CEILING_DIRECTORIES"] = env_ceiling
  commit_line = re.search(r"^- Commit: (.+)$", text, re.MULTILINE).group(1)
  assert commit_line.startswith(f"unknown commit ({plain} is not a git checkout")
  assert "| 1m | 1.25 | met |" in text  # The figures are kept all the same.


def test_default_directory_is_docs_benchmarks():
  assert results.DEFAULT_RESULTS_DIR == str(REPO_ROOT / "docs" / "benchmarks")
  assert results.results_dir() == results.DEFAULT_RESULTS_DIR  # Flags not parsed here.


def test_names_per_script_and_data_set():
  assert results.results_name("benchmarks/serving_benchmark.py") == "serving_benchmark"
  assert results.results_name("quickstart", "synthetic") == "quickstart"
  assert results.results_name("pipeline_benchmark.py", "/data/ml-latest-small/") == (
      "pipeline_benchmark-ml-latest-small")
  assert results.results_name("quickstart", "/data/ml-1m.zip") == "quickstart-ml-1m"
  assert results.data_set_label("/tmp/root/data/synthetic-u943-m1682-r100000-s42") == (
      "synthetic")
  assert results.data_set_label("/tmp/x/my data") == "my_data"


def test_default_synthetic_name_matches_the_generator():
  # movielens.synthetic imports TensorFlow (through contracts.features), so its naming
  # rule is read from the source: the same four fields in the same order.
  assert results.default_synthetic_name() == "synthetic-u943-m1682-r100000-s42"
  source = (REPO_ROOT / "movielens" / "synthetic.py").read_text()
  assert ('name = (f"synthetic-u{size.synthetic_users}-m{size.synthetic_movies}"\n'
          '          f"-r{size.synthetic_ratings}-s{size.synthetic_seed}")') in source


def test_runner_data_set_from_local_runner_flags():
  assert results.runner_data_set([]) == "synthetic"
  assert results.runner_data_set(["--epochs", "4"]) == "synthetic"
  assert results.runner_data_set(["--data_dir", "../shared/data/ml-latest-small"]) == (
      "ml-latest-small")
  assert results.runner_data_set(["--data_dir=/d/ml-25m.zip"]) == "ml-25m"
  assert results.runner_data_set(["--synthetic_ratings=1000000"]) == (
      "synthetic-u943-m1682-r1000000-s42")
  assert results.runner_data_set(["--synthetic_ratings", "100000"]) == "synthetic"


def test_run_data_set_from_ml_metadata(tmp_path):
  metadata_store = pytest.importorskip("ml_metadata.metadata_store")
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  root = tmp_path / "root"
  (root / "serving_model" / "123").mkdir(parents=True)
  with pytest.raises(ValueError, match="--data_set"):
    results.run_data_set(str(root))
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = str(root / "metadata.sqlite")
  config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
  store = metadata_store.MetadataStore(config)
  type_id = store.put_execution_type(metadata_store_pb2.ExecutionType(
      name="components.movielens_example_gen.component.MovieLensExampleGen"))
  for data_dir in ("/data/ml-1m.zip", "/data/ml-latest-small"):
    execution = metadata_store_pb2.Execution(type_id=type_id)
    execution.custom_properties["data_dir"].string_value = data_dir
    store.put_executions([execution])
  del store
  assert results.run_data_dir(str(root)) == "/data/ml-latest-small"  # The newest.
  assert results.run_data_set(str(root)) == "ml-latest-small"
  assert results.run_data_set(str(root / "serving_model" / "123")) == "ml-latest-small"


def test_table_and_code_block():
  assert results.table(["a", "b"], [[1234, None], ["x|y", 0.5]]) == (
      "| a | b |\n|---|---:|\n| 1,234 |  |\n| x\\|y | 0.5 |")
  with pytest.raises(ValueError):
    results.table(["a"], [[1, 2]])
  assert results.code_block("a ``` b\n") == "````\na ``` b\n````"


def test_bad_name_is_refused(tmp_path):
  with pytest.raises(ValueError):
    results.write("../escape", "t", "body", argv=["x.py"], directory=str(tmp_path))


def test_writer_imports_no_tensorflow(tmp_path):
  """The writer (and the names it derives) stay cheap: no TensorFlow in the process."""
  script = (
      "import sys; sys.path.insert(0, 'benchmarks'); import results; "
      "results.runner_data_set(['--synthetic_seed=1']); "
      f"results.write('x', 't', 'body', argv=['x.py'], directory={str(tmp_path)!r}); "
      "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
  subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, check=True,
                 capture_output=True, text=True)


def test_quickstart_writes_the_runner_transcript(tmp_path):
  """benchmarks/quickstart.py with a fake runner: the transcript, the status passed on, the
  temporary root removed, and the name per data set."""
  fake = tmp_path / "fake_runner.py"
  fake.write_text(
      "import os, sys\n"
      "root = sys.argv[sys.argv.index('--pipeline_root') + 1]\n"
      "assert os.path.isdir(root) and not os.listdir(root), root\n"
      "print('Log: ' + os.path.join(root, 'logs', 'run.log'))\n"
      "print('flags: ' + ' '.join(sys.argv[1:]))\n"
      "print('a warning', file=sys.stderr)\n"
      "sys.exit(3)\n")
  out = tmp_path / "results"
  run = subprocess.run(
      [sys.executable, "benchmarks/quickstart.py",
       f"--runner={shlex.join([sys.executable, str(fake)])}", f"--results_dir={out}",
       "--data_dir=/data/ml-1m.zip", "--", "--epochs", "4"],
      cwd=REPO_ROOT, capture_output=True, text=True, check=False)
  assert run.returncode == 3, run.stderr
  text = (out / "quickstart-ml-1m.md").read_text()
  root = re.search(r"--pipeline_root (\S+)", run.stdout).group(1)
  assert not os.path.exists(root)  # A temporary root is removed afterwards.
  transcript = re.search(r"## Transcript\n.*?\n```\n(.*?)```", text, re.DOTALL).group(1)
  assert transcript.splitlines() == [
      shlex.join([sys.executable, str(fake), "--pipeline_root", root, "--data_dir",
                  "/data/ml-1m.zip", "--epochs", "4"]).replace(f"{REPO_ROOT}/", ""),
      f"Log: {root}/logs/run.log",
      f"flags: --pipeline_root {root} --data_dir /data/ml-1m.zip --epochs 4"]
  assert "| exit status | 3: completed; the model was not blessed" in text
  assert re.search(r"\| wall time of local_runner.py \| \d+\.\d s ", text)
  assert "## Standard error\n\n```\na warning\n```" in text
  assert "benchmarks/quickstart.py" in re.search(r"```sh\n(.*?)\n```", text, re.DOTALL).group(1)
