"""Runs tfrs-pipeline on this machine: LocalDagRunner, SQLite ML Metadata.

  python local_runner.py                          # built-in synthetic data (ml-100k sized)
  python local_runner.py --data_dir ~/ml-1m.zip   # real MovieLens, directory or zip

Every knob of pipeline/configs.py is a flag (see --helpfull).
"""
import os
import time
import warnings

# google-api-core (imported by TFX) warns at import that it will drop Python 3.11 in
# 2027; nothing a user of this command can act on.
warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")

from absl import app
from absl import flags
from absl import logging

from contracts import configs
from movielens import synthetic
from pipeline import flags as config_flags
from pipeline import pipeline
from pipeline import run_summary

from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top

_DATA_DIR = flags.DEFINE_string(
    "data_dir", None,
    "MovieLens directory or official zip (ml-100k, ml-1m, ml-latest-small, ml-latest, "
    "ml-20m, ml-25m). Default: synthetic ml-100k-format data generated under "
    "<pipeline_root>/data.")
_PIPELINE_ROOT = flags.DEFINE_string(
    "pipeline_root", "tfx_root", "Directory for artifacts and the ML Metadata store.")
_PIPELINE_NAME = flags.DEFINE_string("pipeline_name", configs.PIPELINE_NAME,
                                     "Pipeline name in ML Metadata.")
_SERVING_DIR = flags.DEFINE_string(
    "serving_dir", None, "Where blessed models are pushed, TF Serving layout "
    "(<serving_dir>/<version>/). Default: <pipeline_root>/serving_model.")
_ENABLE_CACHE = flags.DEFINE_bool(
    "enable_cache", True, "Reuse results of components whose inputs did not change.")

config_flags.define_pipeline_flags()
config_flags.define_config_flags(configs.SyntheticDataConfig)
flags.adopt_module_key_flags(config_flags)


def resolve_data_dir(pipeline_root: str) -> str:
  """The --data_dir flag, or the synthetic default data, generated on first use."""
  if _DATA_DIR.value:
    return _DATA_DIR.value
  size = config_flags.config_from_flags(configs.SyntheticDataConfig)
  return synthetic.ensure_generated(os.path.join(pipeline_root, "data"), size)


def main(argv):
  del argv
  started = time.time()
  pipeline_root = os.path.abspath(_PIPELINE_ROOT.value)
  data_dir = resolve_data_dir(pipeline_root)
  logging.info("Data: %s", data_dir)
  components = pipeline.create_components(
      data_dir=data_dir,
      serving_dir=_SERVING_DIR.value or pipeline.default_serving_dir(pipeline_root),
      config=config_flags.pipeline_config_from_flags())
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      os.path.join(pipeline_root, "metadata.sqlite"))
  tfx.orchestration.LocalDagRunner().run(pipeline.create_pipeline(
      pipeline_name=_PIPELINE_NAME.value, pipeline_root=pipeline_root,
      components=components, enable_cache=_ENABLE_CACHE.value,
      metadata_connection_config=metadata))

  summary = run_summary.summarize(metadata, _PIPELINE_NAME.value)
  summary["wall_seconds"] = round(time.time() - started, 1)
  path = run_summary.write(summary, pipeline_root)
  print(run_summary.format_text(summary))
  print(f"Summary written to {path}")


if __name__ == "__main__":
  app.run(main)
