"""One run at a time per pipeline root: an exclusive lock on <pipeline_root>/.run.lock.

The lock is an advisory `flock` held for the whole run. The kernel releases it when the
process ends, however it ends (kill -9 included), so a crashed run never leaves a stale
lock behind. The holder writes who it is (pid, host, start time, command) into the lock
file, so a second run can name it. Local file systems only: flock is not reliable on
network file systems, and gs:// roots belong to the Kubeflow runner.
"""
import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import time
from typing import Any, Dict, Optional

LOCK_FILE = ".run.lock"
_POLL_SECONDS = 1.0


class PipelineRootLockedError(RuntimeError):
  """Another run holds the pipeline root."""

  def __init__(self, pipeline_root: str, holder: Optional[Dict[str, Any]],
               waited_seconds: float):
    self.holder = holder
    who = describe_holder(holder)
    waited_text = f" after waiting {waited_seconds:.0f} s" if waited_seconds > 0 else ""
    super().__init__(
        f"The pipeline root {pipeline_root} is in use by another run{waited_text}: {who}. "
        f"Wait for it to finish (or pass --lock_wait_seconds to wait), or use another "
        f"--pipeline_root.")


def describe_holder(holder: Optional[Dict[str, Any]]) -> str:
  if not holder:
    return "a process that has not written its details yet"
  return (f"pid {holder.get('pid')} on host {holder.get('host')}, started "
          f"{holder.get('started')} ({holder.get('command')})")


class PipelineRootLock:
  """Context manager holding <pipeline_root>/.run.lock; see the module docstring.

  Args:
    pipeline_root: A local directory, created if missing.
    wait_seconds: How long to wait for another holder; 0 fails at once, < 0 waits forever.
  """

  def __init__(self, pipeline_root: str, wait_seconds: float = 0):
    self.pipeline_root = pipeline_root
    self.path = os.path.join(pipeline_root, LOCK_FILE)
    self._wait_seconds = wait_seconds
    self._fd = None

  def acquire(self) -> "PipelineRootLock":
    os.makedirs(self.pipeline_root, exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    started = time.monotonic()
    while not _try_flock(fd):
      if 0 <= self._wait_seconds <= time.monotonic() - started:
        os.close(fd)
        raise PipelineRootLockedError(self.pipeline_root, read_holder(self.path),
                                      self._wait_seconds)
      time.sleep(_POLL_SECONDS)
    self._fd = fd
    _write_holder(fd)
    return self

  def release(self) -> None:
    if self._fd is not None:
      os.ftruncate(self._fd, 0)
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self) -> "PipelineRootLock":
    return self.acquire()

  def __exit__(self, *exc_info) -> None:
    self.release()


def _try_flock(fd: int) -> bool:
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return True
  except OSError as e:
    if e.errno in (errno.EAGAIN, errno.EACCES):
      return False
    raise


def _write_holder(fd: int) -> None:
  holder = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)}
  os.ftruncate(fd, 0)
  os.pwrite(fd, json.dumps(holder).encode(), 0)


def read_holder(path: str) -> Optional[Dict[str, Any]]:
  """The holder's details from the lock file; None if not (yet) readable."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.loads(f.read() or "null")
  except (OSError, ValueError):
    return None
