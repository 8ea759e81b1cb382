"""A quiet run with progress: a few lines on the terminal, everything else in a log file.

  * `progress_lines_to`: shows contracts.progress.LOGGER's messages (the Trainer's
    per-epoch line) on the terminal, indented under the running component.
  * `NodeReporter`: one line when a pipeline node starts and one when it ends (elapsed
    seconds, cached or run, what it produced), driven by LocalDagRunner's own log records.
  * `redirect_output`: sends file descriptors 1 and 2 (Python, TensorFlow's C++ logs, Beam,
    absl) to a log file and hands back a stream on the original terminal.
"""
import contextlib
import logging
import os
import sys
import time
from typing import Callable, Iterator, Optional, TextIO, Tuple

from contracts import progress as progress_contract


# LocalDagRunner (TFX 1.16, tfx/orchestration/local/local_dag_runner.py) logs these
# through absl around each node it launches; the argument is the node id.
_NODE_STARTED = "Component %s is running."
_NODE_FINISHED = "Component %s is finished."
_ABSL_LOGGER = "absl"
_INDENT = " " * 8

# node id -> (cached, details): what a finished node did, read from ML Metadata.
DescribeFn = Callable[[str], Tuple[bool, str]]


class NodeReporter(logging.Handler):
  """Prints a start and an end line per node; attach with `attached()`.

  Args:
    out: Where the lines go (the terminal).
    num_nodes: How many nodes the run has; they are numbered as they start.
    describe: Called when a node finishes: node id -> (cached, what it produced).
  """

  def __init__(self, out: TextIO, num_nodes: int, describe: DescribeFn):
    super().__init__(level=logging.INFO)
    self._out = out
    self._num_nodes = num_nodes
    self._describe = describe
    self._started = {}  # node id -> (number, monotonic start time)
    self.current: Optional[str] = None

  def _prefix(self, node_id: str) -> str:
    width = len(str(self._num_nodes))
    return f"[{self._started[node_id][0]:>{width}}/{self._num_nodes}] {node_id}"

  def emit(self, record: logging.LogRecord) -> None:
    if record.msg not in (_NODE_STARTED, _NODE_FINISHED) or not record.args:
      return
    node_id = str(record.args[0])
    if record.msg == _NODE_STARTED:
      self.started(node_id)
    else:
      self.finished(node_id)

  def started(self, node_id: str) -> None:
    self._started[node_id] = (len(self._started) + 1, time.monotonic())
    self.current = node_id
    print_line(self._out, f"{self._prefix(node_id)} started")

  def finished(self, node_id: str) -> None:
    if node_id not in self._started:
      self.started(node_id)
    seconds = time.monotonic() - self._started[node_id][1]
    self.current = None
    cached, details = self._describe(node_id)
    line = f"{self._prefix(node_id)} {'cached' if cached else 'ran'}, {seconds:.1f} s"
    print_line(self._out, line + (f": {details}" if details else ""))

  def failed(self) -> None:
    """Reports the node that was running when the run failed, if any."""
    if self.current is not None:
      seconds = time.monotonic() - self._started[self.current][1]
      print_line(self._out, f"{self._prefix(self.current)} FAILED after {seconds:.1f} s")

  @contextlib.contextmanager
  def attached(self) -> Iterator["NodeReporter"]:
    logger = logging.getLogger(_ABSL_LOGGER)
    logger.addHandler(self)
    try:
      yield self
    finally:
      logger.removeHandler(self)


class _ProgressLines(logging.Handler):
  """Prints the progress logger's messages, indented under the running node."""

  def __init__(self, out: TextIO):
    super().__init__(level=logging.INFO)
    self._out = out

  def emit(self, record: logging.LogRecord) -> None:
    print_line(self._out, _INDENT + record.getMessage())


@contextlib.contextmanager
def progress_lines_to(out: TextIO) -> Iterator[None]:
  """Shows the progress logger's INFO messages on `out` while the context is open."""
  handler = _ProgressLines(out)
  progress_contract.LOGGER.addHandler(handler)
  try:
    yield
  finally:
    progress_contract.LOGGER.removeHandler(handler)


def print_line(out: TextIO, text: str) -> None:
  out.write(text + "\n")
  out.flush()


@contextlib.contextmanager
def redirect_output(log_path: str) -> Iterator[TextIO]:
  """Sends fds 1 and 2 to `log_path` (appending); yields a stream on the old stdout.

  Raises:
    OSError: The log file cannot be created or opened; nothing was redirected then.
  """
  # The log file first: if it cannot be opened, fds 1 and 2 are left as they were.
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
  sys.stdout.flush()
  sys.stderr.flush()
  saved_out, saved_err = os.dup(1), os.dup(2)
  terminal = os.fdopen(os.dup(saved_out), "w", buffering=1, encoding="utf-8")
  os.dup2(log_fd, 1)
  os.dup2(log_fd, 2)
  os.close(log_fd)
  try:
    yield terminal
  finally:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(saved_out, 1)
    os.dup2(saved_err, 2)
    os.close(saved_out)
    os.close(saved_err)
    terminal.close()
