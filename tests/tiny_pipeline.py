"""A one-component TFX pipeline that runs in a second: for tests of the orchestration.

Its component stands in for ExampleGen (same node id): it writes an Examples artifact with
a count property, and can kill its own process mid-execution, as an interrupted Trainer
would be.

  python -m tests.tiny_pipeline ROOT RUN_ID [--kill]
"""
import os
import signal
import sys

from tfx import v1 as tfx
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components.movielens_example_gen import component as example_gen_component
from pipeline import run_record

PIPELINE_NAME = "tiny"
NODE_ID = example_gen_component.MovieLensExampleGen.__name__
NUM_EXAMPLES = 7


@component
def CountingStep(examples: OutputArtifact[standard_artifacts.Examples],  # pylint: disable=invalid-name
                 kill: Parameter[int] = 0) -> None:
  with open(os.path.join(examples.uri, "data.txt"), "w", encoding="utf-8") as f:
    f.write("partial")
  if kill:
    os.kill(os.getpid(), signal.SIGKILL)
  examples.set_int_custom_property("num_train_examples", NUM_EXAMPLES)


def metadata_config(root: str):
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(
      os.path.join(root, "metadata.sqlite"))


def run(root: str, run_id: str, kill: bool = False) -> None:
  run_record.run_local(tfx.dsl.Pipeline(
      pipeline_name=PIPELINE_NAME, pipeline_root=root,
      components=[CountingStep(kill=int(kill)).with_id(NODE_ID)], enable_cache=True,
      metadata_connection_config=metadata_config(root)), run_id)


if __name__ == "__main__":
  run(sys.argv[1], sys.argv[2], kill="--kill" in sys.argv[3:])
