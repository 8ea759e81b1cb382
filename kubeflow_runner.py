"""Compiles tfrs-pipeline for Kubeflow Pipelines v2 or Vertex AI Pipelines; can submit it.

  python kubeflow_runner.py --image=REGISTRY/tfrs-pipeline:TAG \\
      --pipeline_root=gs://BUCKET/tfrs --data_root=gs://BUCKET/movielens/ml-1m.zip \\
      --output=tfrs_pipeline.yaml
  python kubeflow_runner.py ... --submit --endpoint=https://KFP_HOST [--experiment=NAME]

A flag left unset falls back to the environment variable named in its help (TFRS_IMAGE,
TFRS_PIPELINE_ROOT, ...); every knob of the pipeline's configs is a flag (see --helpfull;
the synthetic data's --synthetic_* are local_runner.py's only, the cluster reads
--data_root). This script only parses the flags: compiling, submitting and the Beam
arguments are pipeline/kubeflow.py. Details, Vertex AI submission and the image:
docs/kubeflow.md.
"""
from typing import Sequence
import warnings

# At import, google-api-core (imported by TFX) warns that it will drop Python 3.11 in 2027
# and google-cloud-aiplatform that it will drop the locked google-cloud-storage 2.x;
# nothing a user of this command can act on.
warnings.filterwarnings("ignore", category=FutureWarning,
                        module=r"google\.(api_core|cloud\.aiplatform)")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top

from pipeline import kubeflow  # pylint: disable=g-import-not-at-top


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  kubeflow.run(flags.FLAGS)


if __name__ == "__main__":
  kubeflow.define_flags(flags.FLAGS)
  # --help lists the main module's flags; the runner's own are defined in pipeline.kubeflow.
  flags.adopt_module_key_flags(kubeflow)
  app.run(main)
