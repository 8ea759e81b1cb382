"""The progress logger: lines a user sees on the terminal while a run goes on.

local_runner.py prints this logger's INFO messages under the running component (the rest
of the run's output goes to its log file), so code that wants a line shown logs here, as
the Trainer's per-epoch callback does:

  from contracts import progress
  progress.LOGGER.info("Epoch %d: ...", epoch)

Standard-library logging, so the messages also reach every other handler (absl's, the
log file).
"""
import logging

PROGRESS_LOGGER = "tfrs_pipeline.progress"
LOGGER = logging.getLogger(PROGRESS_LOGGER)
LOGGER.setLevel(logging.INFO)
