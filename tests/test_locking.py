"""One run at a time per pipeline root; a second one is told who holds it."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from pipeline import locking

_HOLD = """
import sys, time
from pipeline import locking
locking.PipelineRootLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def holder(tmp_path):
  """Another process holding the lock on tmp_path."""
  process = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path)], cwd=_REPO,
                             stdout=subprocess.PIPE, text=True)
  assert process.stdout.readline().strip() == "held"
  yield process
  process.kill()
  process.wait()


def test_second_acquisition_fails_naming_the_holder(tmp_path, holder):
  with pytest.raises(locking.PipelineRootLockedError) as raised:
    locking.PipelineRootLock(str(tmp_path)).acquire()
  message = str(raised.value)
  assert f"pid {holder.pid} on host {socket.gethostname()}" in message
  assert str(tmp_path) in message and "--lock_wait_seconds" in message
  assert raised.value.holder["pid"] == holder.pid
  assert raised.value.holder["started"][:4].isdigit()


def test_waits_up_to_the_limit(tmp_path, holder):
  started = time.monotonic()
  with pytest.raises(locking.PipelineRootLockedError, match=r"after waiting \d+ s"):
    locking.PipelineRootLock(str(tmp_path), wait_seconds=1.5).acquire()
  assert time.monotonic() - started >= 1.5


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  with locking.PipelineRootLock(str(tmp_path)) as lock:
    assert locking.read_holder(lock.path)["pid"] == os.getpid()


def test_waiting_run_starts_when_the_holder_releases(tmp_path):
  first = locking.PipelineRootLock(str(tmp_path)).acquire()
  threading.Timer(1.0, first.release).start()
  with locking.PipelineRootLock(str(tmp_path), wait_seconds=30):
    pass
  # Released: the next one gets it at once, in the same process too.
  with locking.PipelineRootLock(str(tmp_path)):
    with pytest.raises(locking.PipelineRootLockedError):
      locking.PipelineRootLock(str(tmp_path)).acquire()
