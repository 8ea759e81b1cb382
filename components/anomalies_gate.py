"""AnomaliesGate: stops the pipeline when ExampleValidator found data anomalies.

The stock ExampleValidator records anomalies but lets the pipeline go on. Downstream
components of this gate (Transform onwards) only run if every validated split is clean.
"""
import os
from typing import List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.example_validator import executor as example_validator_executor
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import io_utils


class DataAnomaliesError(RuntimeError):
  """ExampleValidator found anomalies; the message names each feature and problem."""


def describe_anomalies(anomalies: anomalies_pb2.Anomalies) -> List[str]:
  """One line per anomalous feature: `feature: short description (details)`."""
  lines = []
  for feature, info in sorted(anomalies.anomaly_info.items()):
    details = "; ".join(reason.description for reason in info.reason)
    lines.append(f"{feature}: {info.short_description} ({details})")
  if anomalies.HasField("dataset_anomaly_info"):
    info = anomalies.dataset_anomaly_info
    lines.append(f"<dataset>: {info.short_description}")
  return lines


def check_anomalies(anomalies_artifact: standard_artifacts.ExampleAnomalies) -> None:
  """Raises DataAnomaliesError if any split of the artifact has anomalies."""
  problems = []
  for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
    path = os.path.join(artifact_utils.get_split_uri([anomalies_artifact], split),
                        example_validator_executor.DEFAULT_FILE_NAME)
    anomalies = anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))
    problems += [f"[{split}] {line}" for line in describe_anomalies(anomalies)]
  if problems:
    raise DataAnomaliesError(
        "ExampleValidator found data anomalies; the pipeline stops here:\n  "
        + "\n  ".join(problems)
        + f"\nFull report: {anomalies_artifact.uri}. The schema is inferred from the train "
        "split (SchemaGen, then components/schema_curation.py, which frees ids, titles and "
        "list lengths and adds the catalog's genres), so another value seen only in eval "
        "is an anomaly: fix the data, or add a feature whose values are open to "
        "schema_curation.FREE_TEXT_FEATURES.")


@component
def AnomaliesGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies]) -> None:  # pylint: disable=invalid-name
  """Fails the run if ExampleValidator's `anomalies` has any anomaly."""
  check_anomalies(anomalies)
