"""Checks of local_runner.py's path flags, made before anything runs.

A bad path found here is one error line naming the flag; found later, it fails a
component after minutes of work (or, for an empty --data_dir, silently trains on the
built-in synthetic data). Only the standard library, so the runner can check before it
imports TensorFlow or takes the pipeline root's lock.
"""
import os
from typing import Optional

from contracts import artifacts


class FlagError(ValueError):
  """A flag's value cannot work; the message names the flag."""


def check_data_dir(data_dir: Optional[str]) -> None:
  """Raises FlagError for a --data_dir given but empty or blank.

  An absent flag (None) means the built-in synthetic data; an empty value is almost
  always an unset variable (`--data_dir "$DATA"`), not a request for synthetic data.
  """
  if data_dir is not None and not data_dir.strip():
    raise FlagError(f"--data_dir is empty ({data_dir!r}): give a MovieLens directory or "
                    "zip, or leave the flag out to train on the built-in synthetic data.")


def check_serving_dir(serving_dir: Optional[str], pipeline_root: str) -> None:
  """Raises FlagError unless the Pusher will be able to write to the serving directory.

  Args:
    serving_dir: --serving_dir as given (None: absent, so the default under the root).
    pipeline_root: The absolute pipeline root, already created (its lock is held).

  The directory must exist as a writable directory, or be creatable: its nearest
  existing ancestor a writable directory. Otherwise the Pusher would fail only after the
  whole run, leaving ML Metadata with a blessed model that was never pushed. A remote
  location (gs://...) is left to the Pusher: checking it needs credentials and network.
  """
  if serving_dir is not None and not serving_dir.strip():
    raise FlagError(f"--serving_dir is empty ({serving_dir!r}): give a directory, or leave "
                    "the flag out for <pipeline_root>/serving_model.")
  if serving_dir is not None and "://" in serving_dir:
    return
  if serving_dir is None:
    path = os.path.join(pipeline_root, artifacts.DEFAULT_SERVING_DIR)
    flag = f"--serving_dir (default {path})"
  else:
    path = os.path.abspath(serving_dir)
    flag = f"--serving_dir {serving_dir}"
  existing = path
  while not os.path.lexists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    where = "is" if existing == path else f"cannot be created: {existing} is"
    raise FlagError(f"{flag} {where} a file, not a directory; the Pusher writes model "
                    "versions into it.")
  if not os.access(existing, os.W_OK | os.X_OK):
    where = "is" if existing == path else f"cannot be created: {existing} is"
    raise FlagError(f"{flag} {where} not writable by this user; the Pusher writes model "
                    "versions into it.")
