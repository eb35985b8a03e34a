"""Models by name, so configs name a model (`config.model_name`) and its fields (`config.model`) without imports."""
import dataclasses
import importlib
from typing import Any, Mapping

import flax.linen as nn

from jaxtok import config_validation
from jaxtok import quantizers

# name -> "module:ClassName", imported only when asked for.
MODELS = {
    "conv_vq_autoencoder": "jaxtok.tokenizers.conv_vq:ConvVQAutoencoder",
    "titok": "jaxtok.tokenizers.titok:TiTok",
    "vqgan": "jaxtok.tokenizers.vqgan:VQGAN",
    "audio_tokenizer": "jaxtok.tokenizers.audio:AudioTokenizer",
}


def model_class(name: str) -> type[nn.Module]:
  """The linen module class registered as `name`."""
  if name not in MODELS:
    raise config_validation.ConfigError(f"Unknown model_name {name!r}; registered models: {', '.join(sorted(MODELS))}.")
  module_name, class_name = MODELS[name].split(":")
  return getattr(importlib.import_module(module_name), class_name)


def model_fields(cls: type[nn.Module]) -> tuple[str, ...]:
  """Constructor fields a config may set (all dataclass fields but flax's `parent` and `name`)."""
  return tuple(f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name"))


def build_model(name: str, fields: Mapping[str, Any]) -> nn.Module:
  """Instantiates model `name` with `fields`, rejecting fields the model does not have."""
  cls = model_class(name)
  valid = model_fields(cls)
  for field in fields:
    if field not in valid:
      raise config_validation.unknown_field_error(f"model.{field}", valid)
  fields = {key: _plain(value) for key, value in fields.items()}
  if isinstance(fields.get("quantizer"), Mapping):
    quantizers.make_quantizer(fields["quantizer"], parent=None)  # fail now on a bad quantizer field, not mid-trace
  return cls(**fields)


def _plain(value: Any) -> Any:
  """ConfigDict / list values -> plain dicts / tuples, which linen modules can hash and compare."""
  if hasattr(value, "to_dict"):
    return value.to_dict()
  if isinstance(value, list):
    return tuple(value)
  return value
