"""AtomicPusher: versions never collide, a version directory is complete or absent."""
import os
import shutil

import pytest
from tfx import v1 as tfx
from tfx.types import standard_artifacts
from tfx.utils import io_utils
from tfx.utils import proto_utils

from components import atomic_pusher

_NOW = 1_700_000_000.0
_FILES = {"saved_model.pb": "graph", "variables/variables.index": "index",
          "assets/vocab.txt": "a\nb\n"}


def _write_model(root) -> str:
  """A Model artifact's uri with a Format-Serving directory of a few files."""
  uri = os.path.join(root, "model")
  for name, text in _FILES.items():
    path = os.path.join(uri, "Format-Serving", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
      f.write(text)
  return uri


def _assert_complete(version_dir):
  for name, text in _FILES.items():
    with open(os.path.join(version_dir, name), encoding="utf-8") as f:
      assert f.read() == text


def _listing(serving_dir):
  return sorted(os.listdir(serving_dir))


def test_pushes_in_one_second_get_distinct_versions(tmp_path):
  model = os.path.join(_write_model(tmp_path), "Format-Serving")
  serving = str(tmp_path / "serving")
  pushed = [atomic_pusher.push(model, serving, clock=lambda: _NOW) for _ in range(3)]
  assert [version for _, version in pushed] == [str(int(_NOW) + i) for i in range(3)]
  for path, version in pushed:
    assert path == os.path.join(serving, version)
    _assert_complete(path)
  # Nothing but version directories: no staging directory is left behind.
  assert _listing(serving) == [version for _, version in pushed]


def test_versions_only_go_up(tmp_path):
  model = os.path.join(_write_model(tmp_path), "Format-Serving")
  serving = tmp_path / "serving"
  (serving / "9999999999").mkdir(parents=True)  # Pushed by a machine with a fast clock.
  (serving / "not-a-version").mkdir()
  _, version = atomic_pusher.push(model, str(serving), clock=lambda: _NOW)
  assert version == "10000000000"


def test_a_version_taken_during_the_push_is_skipped(tmp_path, monkeypatch):
  model = os.path.join(_write_model(tmp_path), "Format-Serving")
  serving = str(tmp_path / "serving")
  real_next_version = atomic_pusher.next_version
  calls = []

  def next_version_racing(base_directory, now):
    version = real_next_version(base_directory, now)
    if not calls:  # Another push publishes this version just before our rename.
      shutil.copytree(model, os.path.join(base_directory, str(version)))
    calls.append(version)
    return version

  monkeypatch.setattr(atomic_pusher, "next_version", next_version_racing)
  path, version = atomic_pusher.push(model, serving, clock=lambda: _NOW)
  assert calls == [int(_NOW), int(_NOW) + 1] and version == str(int(_NOW) + 1)
  _assert_complete(path)
  _assert_complete(os.path.join(serving, str(int(_NOW))))


def test_a_failed_copy_leaves_no_version_and_no_staging(tmp_path, monkeypatch):
  model = os.path.join(_write_model(tmp_path), "Format-Serving")
  serving = str(tmp_path / "serving")

  def copy_then_fail(src, dst, **kwargs):
    io_utils.copy_file(os.path.join(src, "saved_model.pb"), os.path.join(dst, "saved_model.pb"))
    raise IOError("disk full")

  monkeypatch.setattr(atomic_pusher.io_utils, "copy_dir", copy_then_fail)
  with pytest.raises(IOError, match="disk full"):
    atomic_pusher.push(model, serving, clock=lambda: _NOW)
  assert _listing(serving) == []


def _do(tmp_path, blessed: bool, serving: str) -> standard_artifacts.PushedModel:
  """One Executor.Do, as the pipeline runs it."""
  model = standard_artifacts.Model()
  model.uri = _write_model(tmp_path)
  blessing = standard_artifacts.ModelBlessing()
  blessing.set_int_custom_property("blessed", int(blessed))
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / f"pushed_model_{len(os.listdir(tmp_path))}")
  destination = tfx.proto.PushDestination(
      filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving))
  atomic_pusher.Executor().Do(
      {"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]},
      {"push_destination": proto_utils.proto_to_json(destination)})
  return pushed


def test_executor_pushes_blessed_models_each_to_its_own_version(tmp_path):
  serving = str(tmp_path / "serving")
  first, second = _do(tmp_path, True, serving), _do(tmp_path, True, serving)
  assert first.get_int_custom_property("pushed") == 1
  versions = [p.get_string_custom_property("pushed_version") for p in (first, second)]
  assert int(versions[1]) > int(versions[0])
  for pushed, version in zip((first, second), versions):
    destination = pushed.get_string_custom_property("pushed_destination")
    assert destination == os.path.join(serving, version)
    _assert_complete(destination)
    _assert_complete(pushed.uri)  # The archive copy the stock Pusher keeps too.
  assert _listing(serving) == versions


def test_executor_does_not_push_an_unblessed_model(tmp_path):
  serving = str(tmp_path / "serving")
  pushed = _do(tmp_path, False, serving)
  assert pushed.get_int_custom_property("pushed") == 0
  assert not os.path.exists(serving)


def test_component_keeps_the_stock_pusher_interface():
  component = atomic_pusher.AtomicPusher(
      model=tfx.dsl.Channel(type=standard_artifacts.Model),
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(base_directory="/s")))
  assert isinstance(component, tfx.components.Pusher)
  assert component.executor_spec.executor_class is atomic_pusher.Executor
  assert set(component.outputs) == {"pushed_model"}
