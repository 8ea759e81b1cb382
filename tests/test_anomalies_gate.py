"""AnomaliesGate: clean anomalies pass; any anomaly raises naming the feature."""
import os

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components import anomalies_gate


def _anomalies_artifact(tmp_path, per_split):
  artifact = standard_artifacts.ExampleAnomalies()
  artifact.uri = str(tmp_path)
  artifact.split_names = artifact_utils.encode_split_names(list(per_split))
  for split, anomalies in per_split.items():
    split_dir = os.path.join(str(tmp_path), f"Split-{split}")
    os.makedirs(split_dir)
    with open(os.path.join(split_dir, "SchemaDiff.pb"), "wb") as f:
      f.write(anomalies.SerializeToString())
  return artifact


def test_clean_splits_pass(tmp_path):
  artifact = _anomalies_artifact(tmp_path, {"train": anomalies_pb2.Anomalies(),
                                            "eval": anomalies_pb2.Anomalies()})
  anomalies_gate.check_anomalies(artifact)  # Must not raise.


def test_anomaly_names_feature_and_split(tmp_path):
  bad = anomalies_pb2.Anomalies()
  info = bad.anomaly_info["movie_genres"]
  info.short_description = "Unexpected string values"
  info.reason.add(description="Examples contain values missing from the schema: Western (~1%).")
  artifact = _anomalies_artifact(tmp_path, {"train": anomalies_pb2.Anomalies(), "eval": bad})
  with pytest.raises(anomalies_gate.DataAnomaliesError) as error:
    anomalies_gate.check_anomalies(artifact)
  message = str(error.value)
  assert "[eval] movie_genres: Unexpected string values" in message
  assert "Western" in message and "[train]" not in message
