"""Models by name, so configs name a model (`config.model_name`) and its fields (`config.model`) without imports."""
from typing import Any, Mapping

import flax.linen as nn

from jaxtok import config_validation
from jaxtok import quantizers

# name -> "module:ClassName", imported only when asked for.
MODELS = {
    "conv_vq_autoencoder": "jaxtok.tokenizers.conv_vq:ConvVQAutoencoder",
    "titok": "jaxtok.tokenizers.titok:TiTok",
    "vqgan": "jaxtok.tokenizers.maskgit_vqgan:MaskGitVQGAN",  # the 2D baseline: MaskGIT's VQGAN
    "audio_tokenizer": "jaxtok.tokenizers.audio:AudioTokenizer",
}

# Generators of token sequences, trained by jaxtok.train.generator_loop on a frozen tokenizer's tokens. Each needs a
# `loss(tokens, labels, ...)` method (rngs "masking", "dropout") and a sampler in jaxtok.train.generator_sampling.
GENERATORS = {
    "maskgit": "jaxtok.decoders.maskgit:MaskedTokenTransformer",
    "image_bert": "jaxtok.decoders.image_bert:ImageBert",
    "uvit_bert": "jaxtok.decoders.image_bert:UViTBert",
    "autoregressive": "jaxtok.decoders.autoregressive:CausalTokenTransformer",
}


def is_generator(name: str) -> bool:
  """True for a name in GENERATORS (trained by the generator loop), False for a tokenizer in MODELS."""
  if name not in GENERATORS and name not in MODELS:
    raise config_validation.ConfigError(f"Unknown model_name {name!r}; tokenizers: {', '.join(sorted(MODELS))}; "
                                        f"generators: {', '.join(sorted(GENERATORS))}.")
  return name in GENERATORS


def build_generator(name: str, fields: Mapping[str, Any]) -> nn.Module:
  """Instantiates generator `name` with `fields`, rejecting fields the model does not have."""
  cls = config_validation.registered_class("model_name", name, GENERATORS)
  config_validation.check_known_fields("model", fields, config_validation.constructor_fields(cls))
  return cls(**{key: _plain(value) for key, value in fields.items()})


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
