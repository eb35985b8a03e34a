"""Quantizers by name, so a model switches quantizer by one config field: `quantizer = {"name": "fsq", ...}`."""
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
  return config_validation.registered_class("quantizer name", name, QUANTIZERS)


def make_quantizer(config: Mapping[str, Any], **overrides: Any) -> nn.Module:
  """Builds the quantizer `config["name"]` with the remaining entries as its fields (plus `overrides`).

  Raises:
    ConfigError: unknown quantizer name, or a field the quantizer does not have (the message lists the valid ones).
  """
  if "name" not in config:
    raise config_validation.ConfigError(f"A quantizer config needs a 'name', one of {', '.join(QUANTIZERS)}.")
  cls = quantizer_class(config["name"])
  fields = {key: value for key, value in dict(config).items() if key != "name"}
  config_validation.check_known_fields("quantizer", fields, config_validation.constructor_fields(cls))
  fields.update(overrides)
  return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()})
