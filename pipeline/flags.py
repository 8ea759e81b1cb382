"""Command-line flags derived from the config dataclasses of contracts/configs.py.

Both runners call `define_config_flags` for the same config classes, so a knob added to a
config is a flag of `local_runner.py` and `kubeflow_runner.py` without further code.
"""
import dataclasses
from typing import Type, TypeVar

from absl import flags

from contracts import configs

_T = TypeVar("_T")

_DEFINE_BY_TYPE = {
    str: flags.DEFINE_string,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    bool: flags.DEFINE_bool,
}


def define_config_flags(config_cls: Type[_T],
                        flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines one flag per field of `config_cls`, named like the field.

  Each field's check (contracts/configs.py) becomes the flag's validator, so a bad value
  is rejected when the command line is parsed, before anything runs.
  """
  for field in dataclasses.fields(config_cls):
    _DEFINE_BY_TYPE[field.type](field.name, field.default, field.metadata.get("help", ""),
                                flag_values=flag_values)
    check = field.metadata.get("check")
    if check:
      flags.register_validator(field.name, _validator(check),
                               message=f"--{field.name}: not an allowed value.",
                               flag_values=flag_values)
  conflict_fields = getattr(config_cls, "CONFLICT_FIELDS", ())
  if conflict_fields:
    flags.register_multi_flags_validator(conflict_fields, _conflict_validator(config_cls),
                                         message=f"{config_cls.__name__}: conflicting flags.",
                                         flag_values=flag_values)


def _validator(check):
  def validate(value) -> bool:
    problem = check(value)
    if problem:
      raise flags.ValidationError(f"must {problem.removeprefix('must ')}")
    return True
  return validate


def _conflict_validator(config_cls):
  """Checks the config's `conflict` on its CONFLICT_FIELDS (the others at their defaults)."""
  def validate(values) -> bool:
    try:
      config_cls(**values)
    except ValueError as error:
      raise flags.ValidationError(str(error)) from error
    return True
  return validate


def config_from_flags(config_cls: Type[_T], flag_values: flags.FlagValues = flags.FLAGS) -> _T:
  """Builds a `config_cls` from the parsed flag values."""
  return config_cls(**{f.name: flag_values[f.name].value
                       for f in dataclasses.fields(config_cls)})


def define_pipeline_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the flags of every group of `configs.PipelineConfig`."""
  for config_cls in configs.PIPELINE_CONFIG_GROUPS.values():
    define_config_flags(config_cls, flag_values)


def pipeline_config_from_flags(
    flag_values: flags.FlagValues = flags.FLAGS) -> configs.PipelineConfig:
  """The `configs.PipelineConfig` the parsed flags describe."""
  return configs.PipelineConfig(**{
      group: config_from_flags(config_cls, flag_values)
      for group, config_cls in configs.PIPELINE_CONFIG_GROUPS.items()})
