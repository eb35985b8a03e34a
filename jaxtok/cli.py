"""Shared by the entry points (`jaxtok.main`, `jaxtok.evaluate`, `jaxtok.sample`): loading an experiment config file,
the `--config` flag (optional where a workdir records its config), and parsing flags so a misspelled `--config.x=`
override exits with the valid field names. Defines no flags on import.
"""
import importlib.util
import logging as logging_std
import re
import sys
from typing import Any, Callable, Sequence

from absl import flags
from absl import logging
from ml_collections import config_flags

from jaxtok import config_validation

_OVERRIDE = re.compile(r"^--config\.([A-Za-z0-9_.]+)(=.*)?$")


def load_config_file(argument: str):
  """Runs get_config() of a `path[:arg]` config argument, as ml_collections does."""
  path, _, config_arg = argument.partition(":")
  spec = importlib.util.spec_from_file_location("_jaxtok_experiment", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(config_arg) if config_arg else module.get_config()


def _flag_value(argv: Sequence[str], name: str) -> str | None:
  """The value of `--name=value` or `--name value` in `argv`, or None."""
  for index, argument in enumerate(argv):
    if argument.startswith(f"--{name}="):
      return argument.split("=", 1)[1]
    if argument == f"--{name}" and index + 1 < len(argv):
      return argv[index + 1]
  return None


def define_config_flag(help_text: str, argv: Sequence[str], recorded: Callable[[str], Any]) -> None:
  """Defines `--config`: the experiment config file given, or, when none is, `recorded(--workdir)` (the config the
  workdir was trained with; None if it has none), which `--config.x=value` overrides then change."""
  workdir = _flag_value(argv, "workdir")
  config = None if _flag_value(argv, "config") is not None or workdir is None else recorded(workdir)
  if config is None:
    config_flags.DEFINE_config_file("config", None, help_text, lock_config=True)
  else:
    config_flags.DEFINE_config_dict("config", config, help_text + f" Default: the config recorded in {workdir}.",
                                    lock_config=True)


def parse_flags(argv: list[str]) -> list[str]:
  """Parses flags; an override naming an unknown config field exits with the valid field names."""
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError, flags.Error) as error:
    config_argument = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    overrides = [m.group(1) for m in map(_OVERRIDE.match, argv) if m]
    if config_argument and overrides:
      try:
        config_validation.check_override_paths(overrides, load_config_file(config_argument))
      except config_validation.ConfigError as unknown:
        sys.exit(f"Error: {unknown}")
    sys.exit(f"Error parsing flags: {error}")


def quiet_library_info_logs() -> None:
  """Keeps orbax's per-save INFO chatter out of the log; its warnings and errors still show."""
  noisy = ("/orbax/", "/jax/_src/xla_bridge", "/jax/_src/compiler")
  logging.get_absl_handler().addFilter(
      lambda record: record.levelno >= logging_std.WARNING or not any(n in record.pathname for n in noisy))
