"""What goes wrong reading MovieLens files, and how bad lines are collected.

Malformed lines are not raised one by one: readers collect them as `LineError`s so that
the caller can apply a tolerance (`LineErrorLog.raise_if_over`) and show the user where
the first problems are.
"""
import dataclasses
from typing import Iterable, List, Optional


class MovieLensFormatError(ValueError):
  """Data location missing, no/partial known file layout, or a file without data."""


class MalformedDataError(ValueError):
  """More malformed lines than the configured tolerance allows."""


@dataclasses.dataclass(frozen=True)
class LineError:
  """One malformed line of a MovieLens file."""
  path: str  # File as a user would find it: "/d/ml-1m/ratings.dat" or "/d/x.zip!ml-1m/...".
  line_number: int  # 1-based, counting header lines too.
  reason: str

  def __str__(self) -> str:
    return f"{self.path}:{self.line_number}: {self.reason}"


class LineErrorLog:
  """Collects line errors: total count, plus the first `keep` (default 20; None: all)."""

  # Error messages list at most this many lines, however many are kept.
  _MAX_IN_MESSAGE = 20

  def __init__(self, keep: Optional[int] = 20):
    self._keep = keep
    self._count = 0
    self._examples: List[LineError] = []

  def add(self, error: LineError) -> None:
    """Counts `error`, and keeps it if fewer than `keep` are kept so far."""
    self._count += 1
    if self._keep is None or len(self._examples) < self._keep:
      self._examples.append(error)

  def extend(self, errors: Iterable[LineError]) -> None:
    """Adds every error of `errors`, in order."""
    for error in errors:
      self.add(error)

  @property
  def count(self) -> int:
    """Number of errors added, kept or not."""
    return self._count

  @property
  def examples(self) -> List[LineError]:
    """The first errors added, at most `keep` of them."""
    return list(self._examples)

  def raise_if_over(self, max_bad_lines: int, what: str) -> None:
    """Raises MalformedDataError if more than `max_bad_lines` errors were added.

    Args:
      max_bad_lines: The tolerance: this many bad lines are accepted (and skipped).
      what: What was read, for the message, e.g. "ratings" or "movies".

    Raises:
      MalformedDataError: Says how many lines were bad, the tolerance, the kept examples
        one per line and how to raise the tolerance.
    """
    if self._count <= max_bad_lines:
      return
    shown = self._examples[:self._MAX_IN_MESSAGE]
    listed = "All of them" if len(shown) == self._count else f"The first {len(shown)}"
    lines = [f"{self._count} malformed lines in {what}, more than the tolerance of "
             f"{max_bad_lines} (--max_bad_lines). {listed}:"]
    lines.extend(f"  {error}" for error in shown)
    lines.append(f"Fix the data, or accept and skip these lines with "
                 f"--max_bad_lines={self._count} or more.")
    raise MalformedDataError("\n".join(lines))
