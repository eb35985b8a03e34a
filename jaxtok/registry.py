"""Models by name, so configs name a model (`config.model_name`) and its fields (`config.model`) without imports."""
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
  return config_validation.registered_class("model_name", name, MODELS)


def build_model(name: str, fields: Mapping[str, Any]) -> nn.Module:
  """Instantiates model `name` with `fields`, rejecting fields the model does not have."""
  cls = model_class(name)
  config_validation.check_known_fields("model", fields, config_validation.constructor_fields(cls))
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
