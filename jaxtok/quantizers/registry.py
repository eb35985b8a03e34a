"""Quantizers by name, so a model switches quantizer by one config field: `quantizer = {"name": "fsq", ...}`."""
import dataclasses
import importlib
from typing import Any, Mapping

import flax.linen as nn

from jaxtok import config_validation

# name -> "module:ClassName", imported only when asked for.
QUANTIZERS = {
    "vq": "jaxtok.quantizers.vq:VectorQuantizer",
    "residual_vq": "jaxtok.quantizers.residual:ResidualVQ",
    "grouped_vq": "jaxtok.quantizers.grouped:GroupedVQ",
    "fsq": "jaxtok.quantizers.fsq:FSQ",
    "lfq": "jaxtok.quantizers.lfq:LFQ",
    "bsq": "jaxtok.quantizers.bsq:BSQ",
}


def quantizer_class(name: str) -> type[nn.Module]:
  if name not in QUANTIZERS:
    raise config_validation.ConfigError(f"Unknown quantizer name {name!r}; expected one of {', '.join(QUANTIZERS)}.")
  module_name, class_name = QUANTIZERS[name].split(":")
  return getattr(importlib.import_module(module_name), class_name)


def make_quantizer(config: Mapping[str, Any], **overrides: Any) -> nn.Module:
  """Builds the quantizer `config["name"]` with the remaining entries as its fields (plus `overrides`).

  Raises:
    ConfigError: unknown quantizer name, or a field the quantizer does not have (the message lists the valid ones).
  """
  fields = {key: value for key, value in dict(config).items() if key != "name"}
  if "name" not in config:
    raise config_validation.ConfigError(f"A quantizer config needs a 'name', one of {', '.join(QUANTIZERS)}.")
  cls = quantizer_class(config["name"])
  valid = tuple(f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name"))
  for key in fields:
    if key not in valid:
      raise config_validation.unknown_field_error(f"quantizer.{key}", valid)
  fields.update(overrides)
  return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()})
