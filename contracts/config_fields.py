"""How a knob is declared: its default, help text and check, and the config classes that
hold knobs (contracts/configs.py declares every knob with these).

A `Config` is a frozen dataclass of knobs that checks every field when it is built, so a
bad value fails naming its flag (`--<FLAG_PREFIX><field>`). A `GroupedConfig` is a frozen
dataclass of `Config` groups, one per concern, whose flags are the flags of its groups:
the command line stays flat while the code reads `config.<group>.<field>`.

List knobs are tuples; on the command line and in older flat dictionaries they are
comma-separated strings ('256,128'), parsed by `parse_list`.
"""
import dataclasses
from typing import (Any, Callable, ClassVar, Dict, Iterator, List, Mapping, Optional, Tuple,
                    Type, TypeVar)

_T = TypeVar("_T")
# A check returns None when the value is allowed, else what is allowed ("must be ...").
Check = Callable[[Any], Optional[str]]


# ------------------------------------------------------------------------------- checks


def positive(value: Any) -> Optional[str]:
  return None if value > 0 else "must be > 0"


def non_negative(value: Any) -> Optional[str]:
  return None if value >= 0 else "must be >= 0"


def at_least(minimum: float) -> Check:
  return lambda value: None if value >= minimum else f"must be >= {minimum}"


def in_range(low: float, high: float, include_low: bool = True,
             include_high: bool = False) -> Check:
  """low <= value < high by default; the brackets in the message say which ends count."""
  def check(value: Any) -> Optional[str]:
    above = value >= low if include_low else value > low
    below = value <= high if include_high else value < high
    return None if above and below else (
        f"must be in {'[' if include_low else '('}{low}, {high}{']' if include_high else ')'}")
  return check


def one_of(*choices: str) -> Check:
  return lambda value: None if value in choices else f"must be one of {list(choices)}"


def not_blank(value: str) -> Optional[str]:
  return None if value.strip() else "must not be empty"


def parse_int_list(spec: str, name: str) -> List[int]:
  """'256,128' -> [256, 128]; '' -> []. Every entry must be a positive integer.

  Raises:
    ValueError: Naming `name` (the flag), when an entry is not a positive integer.
  """
  try:
    values = [int(part) for part in spec.split(",") if part.strip()]
  except ValueError as error:
    raise ValueError(f"{name} must be comma-separated integers, got {spec!r}.") from error
  if any(value <= 0 for value in values):
    # Keras accepts Dense(0), which silently turns a tower into a constant.
    raise ValueError(f"{name} sizes must be positive, got {spec!r}.")
  return values


def parse_list(value: Any, element: type) -> Tuple[Any, ...]:
  """A list knob's value as a tuple of `element`: from a comma-separated string, a list
  or a tuple. Raises ValueError (or TypeError) when an entry is not an `element`."""
  if isinstance(value, str):
    value = [part for part in value.split(",") if part.strip()]
  if isinstance(value, (bool, int, float)) or not hasattr(value, "__iter__"):
    raise ValueError(f"not a list: {value!r}")
  parsed = []
  for item in value:
    if isinstance(item, bool) or (element is int and isinstance(item, float)):
      raise ValueError(f"not an {element.__name__}: {item!r}")
    parsed.append(element(item))
  return tuple(parsed)


def int_list_spec(name: str, allow_empty: bool = True) -> Check:
  """A comma-separated string of positive integers (`parse_int_list`), at least one
  unless `allow_empty`: for a list knob that travels as a string."""
  def check(value: str) -> Optional[str]:
    try:
      values = parse_int_list(value, name)
    except ValueError:
      return "must be comma-separated positive integers"
    return None if values or allow_empty else "must list at least one positive integer"
  return check


def int_list(allow_empty: bool = True) -> Check:
  """Positive integers, at least one unless `allow_empty`."""
  def check(values: Tuple[int, ...]) -> Optional[str]:
    if any(value <= 0 for value in values):
      return "must be comma-separated positive integers"
    return None if values or allow_empty else "must list at least one positive integer"
  return check


def weight_list(values: Tuple[float, ...]) -> Optional[str]:
  """Numbers >= 0, at least one."""
  if not values or any(not value >= 0 for value in values):
    return "must be comma-separated numbers >= 0, at least one"
  return None


def field(default: Any, help_text: str, check: Optional[Check] = None) -> Any:
  """A knob: its default, its flag's help text, and its check."""
  return dataclasses.field(default=default, metadata={"help": help_text, "check": check})


def list_field(default: Tuple[Any, ...], element: type, help_text: str,
               check: Optional[Check] = None) -> Any:
  """A list knob of `element`s, a tuple (a comma-separated flag)."""
  return dataclasses.field(default=tuple(default), metadata={
      "help": help_text, "check": check, "element": element})


def list_element(knob: dataclasses.Field) -> Optional[type]:
  """The element type of a list knob; None for any other knob."""
  return knob.metadata.get("element")


# ------------------------------------------------------------------------------ configs


class Config:
  """Checks every field on construction; rebuilds from `dataclasses.asdict` form."""

  # Flags are named FLAG_PREFIX + field name (e.g. "ranking_" + "epochs").
  FLAG_PREFIX: ClassVar[str] = ""
  # The fields `conflict` reads (the runners check them together when flags are parsed).
  CONFLICT_FIELDS: ClassVar[Tuple[str, ...]] = ()

  def __post_init__(self):
    for knob in dataclasses.fields(self):
      value = getattr(self, knob.name)
      flag = self.flag_name(knob.name)
      element = list_element(knob)
      if element is not None:
        try:
          value = parse_list(value, element)
        except (TypeError, ValueError) as error:
          kind = "integers" if element is int else "numbers"
          raise ValueError(f"--{flag} must be comma-separated {kind}, got {value!r}.") from error
        object.__setattr__(self, knob.name, value)  # Frozen: set once, as built.
      elif knob.type in (int, float) and (isinstance(value, bool)
                                          or not isinstance(value, (int, float))):
        raise ValueError(f"--{flag} must be a number, got {value!r}.")
      check = knob.metadata.get("check")
      problem = check(value) if check else None
      if problem:
        raise ValueError(f"--{flag} {problem}, got {value!r}.")
    problem = self.conflict()
    if problem:
      raise ValueError(problem)

  def conflict(self) -> Optional[str]:
    """What is wrong with a combination of (individually valid) fields; None if nothing."""
    return None

  @classmethod
  def flag_name(cls, field_name: str) -> str:
    return cls.FLAG_PREFIX + field_name

  @classmethod
  def flag_fields(cls) -> Dict[str, str]:
    """Flag name -> field name, for every knob."""
    return {cls.flag_name(knob.name): knob.name for knob in dataclasses.fields(cls)}

  @classmethod
  def from_dict(cls: Type[_T], values: Optional[Mapping[str, Any]]) -> _T:
    """Rebuilds a config from its `dataclasses.asdict` form, ignoring unknown keys."""
    known = {knob.name for knob in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in (values or {}).items() if k in known})

  @classmethod
  def from_flags(cls: Type[_T], **flag_values: Any) -> _T:
    """A config from flag-named values (unknown names raise TypeError)."""
    fields = cls.flag_fields()
    unknown = sorted(set(flag_values) - set(fields))
    if unknown:
      raise TypeError(f"{cls.__name__} has no flags {unknown}.")
    return cls(**{fields[flag]: value for flag, value in flag_values.items()})

  def flag_values(self) -> Dict[str, Any]:
    """Flag name -> value of every knob."""
    return {self.flag_name(knob.name): getattr(self, knob.name)
            for knob in dataclasses.fields(self)}


class GroupedConfig:
  """A frozen dataclass whose fields are `Config` groups; its flags are theirs.

  `from_dict` takes the nested `dataclasses.asdict` form and also flag-named keys at the
  top level (what the command line and flat dictionaries give).
  """

  @classmethod
  def groups(cls) -> Iterator[Tuple[str, Type[Config]]]:
    for group in dataclasses.fields(cls):
      yield group.name, group.type

  @classmethod
  def flag_fields(cls) -> Dict[str, Tuple[str, str]]:
    """Flag name -> (group, field), for every knob of every group."""
    return {flag: (name, knob) for name, group_cls in cls.groups()
            for flag, knob in group_cls.flag_fields().items()}

  @classmethod
  def from_dict(cls: Type[_T], values: Optional[Mapping[str, Any]]) -> _T:
    """Rebuilds a config from its nested form, flag-named keys or both; unknown keys are
    ignored."""
    values = values or {}
    groups = {}
    for name, group_cls in cls.groups():
      nested = values.get(name)
      fields = dict(nested) if isinstance(nested, Mapping) else {}
      for flag, knob in group_cls.flag_fields().items():
        if flag in values:
          fields[knob] = values[flag]
      groups[name] = group_cls.from_dict(fields)
    return cls(**groups)

  @classmethod
  def from_flags(cls: Type[_T], **flag_values: Any) -> _T:
    """A config from flag-named values, the others at their defaults (unknown names raise
    TypeError)."""
    unknown = sorted(set(flag_values) - set(cls.flag_fields()))
    if unknown:
      raise TypeError(f"{cls.__name__} has no flags {unknown}.")
    return cls.from_dict(flag_values)

  def flag_values(self) -> Dict[str, Any]:
    """Flag name -> value of every knob of every group."""
    return {flag: value for name, _ in self.groups()
            for flag, value in getattr(self, name).flag_values().items()}

  def replace(self: _T, **flag_values: Any) -> _T:
    """This config with the flag-named knobs changed."""
    return type(self).from_flags(**{**self.flag_values(), **flag_values})
