"""Shared by the entry points (`jaxtok.main`, `jaxtok.evaluate`, `jaxtok.sample`): loading an experiment config file
and parsing flags so a misspelled `--config.x=` override exits with the valid field names. Defines no flags itself.
"""
import importlib.util
import logging as logging_std
import re
import sys

from absl import flags
from absl import logging

from jaxtok import config_validation

_OVERRIDE = re.compile(r"^--config\.([A-Za-z0-9_.]+)(=.*)?$")


def load_config_file(argument: str):
  """Runs get_config() of a `path[:arg]` config argument, as ml_collections does."""
  path, _, config_arg = argument.partition(":")
  spec = importlib.util.spec_from_file_location("_jaxtok_experiment", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(config_arg) if config_arg else module.get_config()


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
