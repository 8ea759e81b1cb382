"""The project's import layers: nothing imports upward, across, or in a circle.

  runners        local_runner.py, kubeflow_runner.py
  pipeline       the pipeline definition, flags, run summary
  components     TFX components        |  trainer_module  Transform + Trainer user code
  closed_form    EASE's closed form (the Evaluator's baseline, the Trainer's factor)
  movielens      the MovieLens data sets  |  ranking_core  ranking and scoring in numpy
  contracts      feature spec, configs, artifact names and layouts, the serving contract

A module may import its own package and any package on a lower floor; the two packages on
the same floor (components, trainer_module) do not import each other. docs/architecture.md
draws the same picture.
"""
import ast
import pathlib
from typing import Dict, Iterator, List, Set, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent

FLOORS: Dict[str, int] = {
    "contracts": 0,
    "movielens": 1,
    "ranking_core": 1,
    "closed_form": 2,
    "components": 3,
    "trainer_module": 3,
    "pipeline": 4,
    "local_runner": 5,
    "kubeflow_runner": 5,
}


def _module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(ROOT).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def project_modules() -> Dict[str, pathlib.Path]:
  """Module name -> file, for every module of the layered packages and runners."""
  modules = {}
  for top in FLOORS:
    package = ROOT / top
    if package.is_dir():
      for path in package.rglob("*.py"):
        modules[_module_name(path)] = path
    elif (ROOT / f"{top}.py").exists():
      modules[top] = ROOT / f"{top}.py"
  return modules


def imported_modules(path: pathlib.Path, known: Set[str]) -> Iterator[str]:
  """Project modules that `path` imports, anywhere in the file (functions too)."""
  for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      # `from a import b` imports module a.b when b is a module, else a name of a.
      names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known
               else node.module for alias in node.names]
    else:
      continue
    for name in names:
      if name.split(".")[0] in FLOORS and name in known:
        yield name


def import_graph() -> Dict[str, Set[str]]:
  modules = project_modules()
  known = set(modules)
  return {name: set(imported_modules(path, known)) - {name} for name, path in modules.items()}


def layering_violations(graph: Dict[str, Set[str]]) -> List[Tuple[str, str]]:
  """(importer, imported) pairs that point up a floor or across to the other package."""
  violations = []
  for importer, imported in graph.items():
    top = importer.split(".")[0]
    for target in imported:
      target_top = target.split(".")[0]
      if target_top != top and FLOORS[target_top] >= FLOORS[top]:
        violations.append((importer, target))
  return sorted(violations)


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
  """One import cycle between modules (a list starting and ending with the same module)."""
  state: Dict[str, int] = {}  # 1: on the current path, 2: done.
  path: List[str] = []

  def visit(module: str) -> List[str]:
    state[module] = 1
    path.append(module)
    for target in sorted(graph.get(module, ())):
      if state.get(target) == 1:
        return path[path.index(target):] + [target]
      if target not in state:
        cycle = visit(target)
        if cycle:
          return cycle
    state[module] = 2
    path.pop()
    return []

  for module in sorted(graph):
    if module not in state:
      cycle = visit(module)
      if cycle:
        return cycle
  return []


def test_every_package_is_on_a_floor():
  assert (ROOT / "contracts").is_dir()
  tops = {path.parent.name for path in ROOT.glob("*/__init__.py")}
  assert tops - {"tests", "benchmarks", "scripts"} <= set(FLOORS), (
      "A new top-level package needs a floor in FLOORS and in docs/architecture.md.")


def test_every_package_is_installed_and_shipped_in_the_image():
  """setup.py installs each layered package, and the component image copies it: a package
  left out of either imports here (the source tree is on the path) and fails on a worker."""
  packages = [top for top in FLOORS if (ROOT / top / "__init__.py").is_file()]
  setup = (ROOT / "setup.py").read_text()
  dockerfile = (ROOT / "Dockerfile").read_text()
  allowed = (ROOT / ".dockerignore").read_text().splitlines()
  for package in packages:
    assert f'"{package}"' in setup and f'"{package}.*"' in setup, package
    assert f"COPY {package} /tmp/tfrs-src/{package}" in dockerfile, package
    assert f"!{package}/" in allowed, package


def test_no_import_points_up_or_across():
  violations = layering_violations(import_graph())
  assert not violations, "Imports against the layers:\n" + "\n".join(
      f"  {a} -> {b}" for a, b in violations)


def test_contracts_import_nothing_of_the_project():
  graph = import_graph()
  for module, imported in graph.items():
    if module.startswith("contracts"):
      assert {m for m in imported if not m.startswith("contracts")} == set(), module


def test_no_circular_imports():
  cycle = find_cycle(import_graph())
  assert not cycle, "Circular import: " + " -> ".join(cycle)


def test_the_checks_catch_what_they_look_for():
  # The checkers themselves, on a hand-made graph: an upward import, a cross import
  # between the two middle packages, and a cycle.
  graph = {"contracts.features": {"pipeline.pipeline"},
           "components.x": {"trainer_module.y", "contracts.configs"},
           "trainer_module.y": {"trainer_module.z"}, "trainer_module.z": {"trainer_module.y"},
           "pipeline.pipeline": {"components.x"}}
  assert layering_violations(graph) == [("components.x", "trainer_module.y"),
                                        ("contracts.features", "pipeline.pipeline")]
  assert find_cycle(graph) in (["trainer_module.y", "trainer_module.z", "trainer_module.y"],
                               ["trainer_module.z", "trainer_module.y", "trainer_module.z"])


def imported_closure(graph: Dict[str, Set[str]], module: str) -> Set[str]:
  """`module` and every project module it imports, directly or not."""
  seen, todo = set(), [module]
  while todo:
    current = todo.pop()
    if current not in seen:
      seen.add(current)
      todo.extend(graph.get(current, ()))
  return seen


def test_the_code_fingerprints_cover_what_the_user_code_imports():
  """Transform and Trainer run user code by import path, so their cache keys hold a
  fingerprint of it (pipeline/pipeline.py): a project module that run_fn or the
  preprocessing_fn imports but the fingerprint leaves out would be edited without
  re-running them."""
  from pipeline import pipeline  # pylint: disable=g-import-not-at-top
  modules, graph = project_modules(), import_graph()
  for entry, files in (("trainer_module.trainer", pipeline.trainer_code_files()),
                       ("trainer_module.preprocessing", pipeline.transform_code_files())):
    covered = {path.resolve() for path in files}
    missing = sorted(m for m in imported_closure(graph, entry)
                     if modules[m].resolve() not in covered)
    assert not missing, f"{entry} imports {missing}, outside its code fingerprint."
