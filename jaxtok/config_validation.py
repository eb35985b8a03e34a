"""Checks an experiment config against the fields the runner and the chosen model understand.

A misspelled or unknown field raises a ValueError that names the valid fields (and the closest one), so a typo never
silently falls back to a default. `jaxtok.main` applies this to `--config` files and `--config.a.b=value` overrides.
"""
import dataclasses
import difflib
import importlib
from typing import Any, Iterable, Mapping


class ConfigError(ValueError):
  """A config names a field that does not exist, lacks one, or sets a value out of range."""


def _closest(name: str, valid: Iterable[str]) -> str:
  matches = difflib.get_close_matches(name, list(valid), n=1)
  return f" Did you mean {matches[0]!r}?" if matches else ""


def unknown_field_error(path: str, valid: Iterable[str]) -> ConfigError:
  """The error for `path` (dotted) not being one of `valid` (the names allowed at its level)."""
  name = path.rsplit(".", 1)[-1]
  parent = path.rsplit(".", 1)[0] if "." in path else "the config"
  return ConfigError(f"Unknown config field {path!r}. Valid fields of {parent!r}: {', '.join(sorted(valid))}."
                    + _closest(name, valid))


def check_fields(config: Mapping[str, Any], schema: Mapping[str, Any], prefix: str = "",
                 open_sections: Iterable[str] = ()) -> None:
  """Raises if `config` has a field `schema` lacks, or lacks one `schema` has; recurses into sub-dicts.

  Args:
    config: the experiment's config (a ConfigDict or dict).
    schema: a config of the same layout holding every valid field.
    prefix: dotted path of `config` inside the whole config, for messages.
    open_sections: dotted paths whose contents are checked elsewhere (e.g. the model's fields).
  """
  open_sections = tuple(open_sections)
  for name in config.keys():
    path = f"{prefix}{name}"
    if name not in schema:
      raise unknown_field_error(path, schema.keys())
    if path in open_sections:
      continue
    if isinstance(schema[name], Mapping) and hasattr(config[name], "keys"):
      check_fields(config[name], schema[name], f"{path}.", open_sections)
  missing = sorted(set(schema.keys()) - set(config.keys()))
  if missing:
    where = prefix.rstrip(".") or "the config"
    raise ConfigError(f"Config {where!r} lacks the field(s) {', '.join(missing)}; every experiment config sets all "
                     f"fields of {where!r}: {', '.join(sorted(schema.keys()))}.")


def check_override_paths(overrides: Iterable[str], config: Mapping[str, Any]) -> None:
  """Raises the unknown-field error for the first dotted path in `overrides` that `config` lacks."""
  for path in overrides:
    node = config
    walked = []
    for name in path.split("."):
      if not hasattr(node, "keys") or name not in node:
        raise unknown_field_error(".".join(walked + [name]), node.keys() if hasattr(node, "keys") else ())
      walked.append(name)
      node = node[name]


def registered_class(kind: str, name: str, registry: Mapping[str, str]) -> type:
  """Imports the class that `registry` (name -> "module:ClassName") lists as `name`; `kind` names it in errors."""
  if name not in registry:
    raise ConfigError(f"Unknown {kind} {name!r}; registered: {', '.join(sorted(registry))}.")
  return import_named(registry[name])


def import_named(path: str) -> Any:
  """The object a "module:Name" string names (as jaxtok.registry lists models and tasks), imported now."""
  module_name, name = path.split(":")
  return getattr(importlib.import_module(module_name), name)


def constructor_fields(cls: type) -> tuple[str, ...]:
  """Fields a config may set on a linen module class (its dataclass fields but flax's `parent` and `name`)."""
  return tuple(f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name"))


def differences(wanted: Mapping[str, Any], found: Mapping[str, Any], prefix: str = "") -> str:
  """"<prefix><name> <wanted> vs <found>" for each name of `wanted` whose value in `found` differs (lists and tuples
  compare as tuples), comma-separated in sorted order; "" when none differs."""
  def normalised(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value
  return ", ".join(f"{prefix}{name} {wanted[name]!r} vs {found[name]!r}" for name in sorted(wanted)
                   if normalised(wanted[name]) != normalised(found[name]))


def check_known_fields(prefix: str, fields: Iterable[str], valid: Iterable[str]) -> None:
  """Raises the unknown-field error for the first of `fields` not in `valid`; `prefix` is their dotted parent."""
  valid = tuple(valid)
  for field in fields:
    if field not in valid:
      raise unknown_field_error(f"{prefix}.{field}", valid)
