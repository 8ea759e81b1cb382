"""Component parameters derived from a config dataclass: each knob is defined once.

As TFX's `standard_component_specs` centralises its keys, a component's ComponentSpec
PARAMETERS and its executor's options both come from the fields of one
`contracts.configs` dataclass: the field name is the execution-property key, the field
type its type, and the dataclass's own checks validate it (at pipeline construction, and
again in the executor, which may run from a compiled pipeline).
"""
import dataclasses
from typing import Any, Dict, Mapping, Type, TypeVar

from tfx.types import component_spec

_T = TypeVar("_T")


def execution_parameters(config_cls: Type[Any]) -> Dict[str, component_spec.ExecutionParameter]:
  """One ExecutionParameter per field of `config_cls`, keyed by the field name."""
  return {field.name: component_spec.ExecutionParameter(type=field.type)
          for field in dataclasses.fields(config_cls)}


def as_exec_properties(config: Any) -> Dict[str, Any]:
  """The execution properties of a config: its fields by name."""
  return dataclasses.asdict(config)


def config_from_exec_properties(config_cls: Type[_T], exec_properties: Mapping[str, Any]) -> _T:
  """Rebuilds (and so re-validates) a config; absent properties take their defaults."""
  return config_cls(**{field.name: exec_properties[field.name]
                       for field in dataclasses.fields(config_cls)
                       if exec_properties.get(field.name) is not None})
