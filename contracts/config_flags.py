"""Command-line flags derived from the config dataclasses (contracts/config_fields.py).

`define_config_flags` turns every knob of a config class into an absl flag, its check
into the flag's validator, and `config_from_flags` builds the config back from the parsed
flags. The runners (pipeline/flags.py defines all the pipeline's groups) and the
synthetic data generator's command line (movielens/synthetic.py) share it, so a knob is
one flag everywhere. A grouped config (TrainerConfig) keeps the command line flat: its
groups' knobs are flags named as `Config.flag_name` says.
"""
import dataclasses
from typing import Any, Iterator, Type, TypeVar

from absl import flags

from contracts import config_fields

_T = TypeVar("_T")

_DEFINE_BY_TYPE = {
    str: flags.DEFINE_string,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    bool: flags.DEFINE_bool,
}


class _ListParser(flags.ArgumentParser):
  """A comma-separated list flag ('256,128') whose value is a tuple of `element`s."""

  def __init__(self, element: type):
    super().__init__()
    self._element = element

  def parse(self, argument):
    try:
      return config_fields.parse_list(argument, self._element)
    except (TypeError, ValueError) as error:
      raise ValueError(f"must be comma-separated {self._element.__name__} values") from error

  def flag_type(self) -> str:
    return f"comma-separated list of {self._element.__name__}"


def _knob_groups(config_cls: Type[Any]) -> Iterator[Type[config_fields.Config]]:
  """The `Config` classes whose knobs are `config_cls`'s flags: itself, or each group of
  a `GroupedConfig`."""
  if issubclass(config_cls, config_fields.GroupedConfig):
    for _, group_cls in config_cls.groups():
      yield group_cls
  else:
    yield config_cls


def define_config_flags(config_cls: Type[_T],
                        flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines one flag per knob of `config_cls` (of each of its groups, for a grouped
  config), named as `Config.flag_name` says.

  Each knob's check (contracts/configs.py) becomes the flag's validator, so a bad value
  is rejected when the command line is parsed, before anything runs.
  """
  for group_cls in _knob_groups(config_cls):
    for knob in dataclasses.fields(group_cls):
      name = group_cls.flag_name(knob.name)
      help_text = knob.metadata.get("help", "")
      element = config_fields.list_element(knob)
      if element is not None:
        flags.DEFINE(_ListParser(element), name, knob.default, help_text,
                     serializer=flags.CsvListSerializer(","), flag_values=flag_values)
      else:
        _DEFINE_BY_TYPE[knob.type](name, knob.default, help_text, flag_values=flag_values)
      check = knob.metadata.get("check")
      if check:
        flags.register_validator(name, _validator(check),
                                 message=f"--{name}: not an allowed value.",
                                 flag_values=flag_values)
    conflict_fields = tuple(group_cls.flag_name(name) for name in group_cls.CONFLICT_FIELDS)
    if conflict_fields:
      flags.register_multi_flags_validator(conflict_fields, _conflict_validator(group_cls),
                                           message=f"{group_cls.__name__}: conflicting flags.",
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
      config_cls.from_flags(**values)
    except ValueError as error:
      raise flags.ValidationError(str(error)) from error
    return True
  return validate


def config_from_flags(config_cls: Type[_T], flag_values: flags.FlagValues = flags.FLAGS) -> _T:
  """Builds a `config_cls` from the parsed flag values."""
  return config_cls.from_flags(**{
      name: flag_values[name].value
      for group_cls in _knob_groups(config_cls) for name in group_cls.flag_fields()})
