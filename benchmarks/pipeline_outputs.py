"""Where a local pipeline run (LocalDagRunner) left a component's outputs.

TFX writes each output under <pipeline root>/<node id>/<output key>/<execution id>; the
newest execution has the largest id.
"""
import glob
import os


def latest_output(pipeline_root: str, node_id: str, output_key: str) -> str:
  """The directory of the newest execution's `output_key` output of `node_id`.

  Raises:
    FileNotFoundError: The node never produced that output under `pipeline_root`.
  """
  pattern = os.path.join(pipeline_root, node_id, output_key, "*")
  paths = [path for path in glob.glob(pattern) if os.path.basename(path).isdigit()]
  if not paths:
    raise FileNotFoundError(f"Nothing matches {pattern}; run the pipeline first.")
  return max(paths, key=lambda path: int(os.path.basename(path)))
