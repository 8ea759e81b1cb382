"""Checks of local_runner.py's path flags, made before anything runs.

A bad path found here is one error line naming the flag; found later, it fails a
component after minutes of work (or, for an empty --data_dir, silently trains on the
built-in synthetic data). Only the standard library, so the runner can check before it
imports TensorFlow or takes the pipeline root's lock.
"""
from typing import Optional


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
