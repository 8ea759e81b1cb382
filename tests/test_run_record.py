"""Runs are read back by their own id; executions a killed process left RUNNING are marked."""
import os
import subprocess
import sys

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import pytest

from pipeline import run_record
from pipeline import run_summary
from tests import tiny_pipeline

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _store(root):
  return metadata_store.MetadataStore(tiny_pipeline.metadata_config(root))


def test_two_runs_on_one_root_each_summarize_their_own(tmp_path):
  root = str(tmp_path)
  tiny_pipeline.run(root, "run-1")
  tiny_pipeline.run(root, "run-2")  # Same inputs: the step is cached.

  first = run_summary.summarize(tiny_pipeline.metadata_config(root),
                                tiny_pipeline.PIPELINE_NAME, "run-1")
  second = run_summary.summarize(tiny_pipeline.metadata_config(root),
                                 tiny_pipeline.PIPELINE_NAME, "run-2")
  assert first["run_id"] == "run-1" and first["cached_components"] == []
  assert second["run_id"] == "run-2"
  assert second["cached_components"] == [tiny_pipeline.NODE_ID]
  assert first["data_counts"] == {"num_train_examples": tiny_pipeline.NUM_EXAMPLES}
  # The first run's summary is still the first run's after a later run.
  nodes = run_record.node_runs(_store(root), tiny_pipeline.PIPELINE_NAME, "run-1")
  assert not nodes[tiny_pipeline.NODE_ID].cached


def test_unknown_run_id_is_an_error(tmp_path):
  tiny_pipeline.run(str(tmp_path), "run-1")
  with pytest.raises(ValueError, match="No run 'run-9'"):
    run_record.node_runs(_store(str(tmp_path)), tiny_pipeline.PIPELINE_NAME, "run-9")


def test_killed_execution_is_marked_failed_and_its_outputs_removed(tmp_path):
  root = str(tmp_path)
  killed = subprocess.run([sys.executable, "-m", "tests.tiny_pipeline", root, "killed",
                           "--kill"], cwd=_REPO, capture_output=True, check=False)
  assert killed.returncode == -9
  store = _store(root)
  [execution] = store.get_executions()
  assert execution.last_known_state == metadata_store_pb2.Execution.RUNNING
  partial = os.path.join(root, tiny_pipeline.NODE_ID, "examples", str(execution.id))
  assert os.path.exists(os.path.join(partial, "data.txt"))

  [found] = run_record.mark_interrupted(store, root, tiny_pipeline.PIPELINE_NAME, "next")
  assert (found.node_id, found.execution_id, found.run_id) == (
      tiny_pipeline.NODE_ID, execution.id, "killed")
  assert found.removed_dirs == [partial] and not os.path.exists(partial)
  assert "interrupted" in found.describe() and partial in found.describe()
  [execution] = store.get_executions()
  assert execution.last_known_state == metadata_store_pb2.Execution.FAILED
  assert "next" in execution.custom_properties[run_record.INTERRUPTED_PROPERTY].string_value
  # Found once only; the next run then completes.
  assert run_record.mark_interrupted(store, root, tiny_pipeline.PIPELINE_NAME, "x") == []
  tiny_pipeline.run(root, "next")
  nodes = run_record.node_runs(store, tiny_pipeline.PIPELINE_NAME, "next")
  assert nodes[tiny_pipeline.NODE_ID].execution.last_known_state == (
      metadata_store_pb2.Execution.COMPLETE)
