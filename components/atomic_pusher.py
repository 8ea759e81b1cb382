"""AtomicPusher: the stock TFX Pusher with pushes that are atomic and never collide.

The stock Pusher (TFX 1.16) names a version `int(time.time())` and copies the model
straight into <base_directory>/<version>/. Two pushes in one second get the same version,
the second is skipped yet recorded as pushed, and a crash mid-copy leaves a partial
version that TF Serving may load. This executor keeps everything else of the stock one
(blessing check, model path, the PushedModel artifact and its properties) and changes
only how the model reaches the serving directory:
  1. copy it into <base_directory>/.staging-<random>/ (TF Serving ignores names that are
     not integers);
  2. rename that directory to <base_directory>/<version>/, version = max(now in Unix
     seconds, highest existing version + 1); if another push took that version in the
     meantime, the rename fails and the next version is tried.
On a local file system the rename is atomic: a version directory is complete or absent.
On object stores (gs://) a directory rename is a copy of each object, so there it only
guarantees unique versions. A push killed before the rename leaves a `.staging-*`
directory, safe to delete.
"""
import os
import time
import uuid
from typing import Any, Callable, Dict, List, Tuple

from absl import logging
from tfx import types
from tfx.components.pusher import component as pusher_component
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import proto_utils

STAGING_PREFIX = ".staging-"
_MAX_ATTEMPTS = 100


def existing_versions(base_directory: str) -> List[int]:
  """The integer version directories under `base_directory` (TF Serving's view)."""
  if not fileio.exists(base_directory):
    return []
  return [int(name.rstrip("/")) for name in fileio.listdir(base_directory)
          if name.rstrip("/").isdigit()]


def next_version(base_directory: str, now: float) -> int:
  """Unix seconds, or one above the highest version present, whichever is larger."""
  return max([int(now)] + [v + 1 for v in existing_versions(base_directory)])


def push(model_path: str, base_directory: str,
         clock: Callable[[], float] = time.time) -> Tuple[str, str]:
  """Copies `model_path` to a new version under `base_directory`; see the module doc.

  Args:
    model_path: The SavedModel directory.
    base_directory: The serving directory (TF Serving layout).
    clock: Unix seconds now.

  Returns:
    The version directory and the version.
  """
  fileio.makedirs(base_directory)
  staging = os.path.join(base_directory, STAGING_PREFIX + uuid.uuid4().hex)
  try:
    io_utils.copy_dir(model_path, staging)
    return _publish(staging, base_directory, clock)
  finally:
    if fileio.exists(staging):
      fileio.rmtree(staging)


def _publish(staging: str, base_directory: str,
             clock: Callable[[], float]) -> Tuple[str, str]:
  for _ in range(_MAX_ATTEMPTS):
    version = str(next_version(base_directory, clock()))
    destination = os.path.join(base_directory, version)
    try:
      fileio.rename(staging, destination, overwrite=False)
      return destination, version
    # fileio raises its backend's own error types (tf.errors.*, OSError); a failure is a
    # lost race only if the destination now exists.
    except Exception:  # pylint: disable=broad-except
      if not fileio.exists(destination):
        raise
      logging.info("Version %s was taken by another push; trying the next one.", version)
  raise RuntimeError(f"No free model version under {base_directory} after "
                     f"{_MAX_ATTEMPTS} attempts.")


def filesystem_destination(exec_properties: Dict[str, Any]) -> str:
  """The base directory of a filesystem PushDestination with Unix-time versioning."""
  destination = pusher_pb2.PushDestination()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
  if destination.WhichOneof("destination") != "filesystem":
    raise NotImplementedError(f"AtomicPusher pushes to a filesystem only, got "
                              f"{destination.WhichOneof('destination')!r}.")
  versioning = destination.filesystem.versioning
  if versioning not in (pusher_pb2.Versioning.AUTO, pusher_pb2.Versioning.UNIX_TIMESTAMP):
    raise NotImplementedError(f"Unsupported versioning {versioning}.")
  return destination.filesystem.base_directory


class Executor(pusher_executor.Executor):
  """The stock Pusher executor, pushing through `push`."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    model_path = self.GetModelPath(input_dict)
    serving_path, version = push(model_path, filesystem_destination(exec_properties))
    logging.info("Model written to serving path %s.", serving_path)
    # As the stock executor: a copy in the PushedModel artifact, for the record.
    io_utils.copy_dir(model_path, model_push.uri)
    self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)


class AtomicPusher(pusher_component.Pusher):
  """The stock Pusher component (same spec, inputs and outputs) with `Executor`."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
