"""Compiles tfrs-pipeline for Kubeflow Pipelines v2 or Vertex AI Pipelines; can submit it.

  python kubeflow_runner.py --image=REGISTRY/tfrs-pipeline:TAG \\
      --pipeline_root=gs://BUCKET/tfrs --data_root=gs://BUCKET/movielens/ml-1m.zip \\
      --output=tfrs_pipeline.yaml
  python kubeflow_runner.py ... --submit --endpoint=https://KFP_HOST [--experiment=NAME]

A flag left unset falls back to the environment variable named in its help (TFRS_IMAGE,
TFRS_PIPELINE_ROOT, ...); every knob of the configs is a flag (see --helpfull). This
script only parses the flags: compiling, submitting and the Beam arguments are
pipeline/kubeflow.py. Details, Vertex AI submission and the image: docs/kubeflow.md.
"""
from typing import Sequence

from absl import app
from absl import flags

from pipeline import kubeflow


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  kubeflow.run(flags.FLAGS)


if __name__ == "__main__":
  kubeflow.define_flags(flags.FLAGS)
  app.run(main)
