"""The pipeline's command-line flags: every group of `configs.PipelineConfig`.

Both runners call `define_pipeline_flags`, so a knob added to a config is a flag of
`local_runner.py` and `kubeflow_runner.py` without further code
(contracts/config_flags.py derives each flag from its knob).
"""
from absl import flags

from contracts import config_flags
from contracts import configs


def define_pipeline_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the flags of every group of `configs.PipelineConfig`."""
  for config_cls in configs.PIPELINE_CONFIG_GROUPS.values():
    config_flags.define_config_flags(config_cls, flag_values)


def pipeline_config_from_flags(
    flag_values: flags.FlagValues = flags.FLAGS) -> configs.PipelineConfig:
  """The `configs.PipelineConfig` the parsed flags describe."""
  return configs.PipelineConfig(**{
      group: config_flags.config_from_flags(config_cls, flag_values)
      for group, config_cls in configs.PIPELINE_CONFIG_GROUPS.items()})
