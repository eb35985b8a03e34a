"""Models by name, so configs name a model (`config.model_name`) and its fields (`config.model`) without imports.

Each entry says what the model is: its linen module, the `jaxtok.train` task that trains it (a `Task`, see
`jaxtok/train/task.py`), and, for tokenizers, whether its indices form a 2D grid (flattened in raster order into the
token sequences generators learn). Both are "module:Name" strings, imported only when asked for.
"""
import dataclasses
from typing import Any, Mapping

import flax.linen as nn

from jaxtok import config_validation
from jaxtok import quantizers


@dataclasses.dataclass(frozen=True)
class Registered:
  """module: "module:ClassName" of the linen module; task: "module:ClassName" of its training task ("" = none yet);
  grid_tokens: the module's `encode` gives indices `[b, h, w(, C)]` (else `[b, L(, C)]`)."""
  module: str
  task: str
  grid_tokens: bool = False


_TOKENIZER = "jaxtok.train.tasks.tokenizer:TokenizerTask"
_MASKGIT = "jaxtok.train.tasks.generator:MaskGIT"

MODELS = {
    "conv_vq_autoencoder": Registered("jaxtok.tokenizers.conv_vq:ConvVQAutoencoder", _TOKENIZER, grid_tokens=True),
    "titok": Registered("jaxtok.tokenizers.titok:TiTok", _TOKENIZER),
    "vqgan": Registered("jaxtok.tokenizers.maskgit_vqgan:MaskGitVQGAN", _TOKENIZER, grid_tokens=True),  # MaskGIT-VQGAN
    "audio_tokenizer": Registered("jaxtok.tokenizers.audio:AudioTokenizer", ""),
    "maskgit": Registered("jaxtok.decoders.maskgit:MaskedTokenTransformer", _MASKGIT),
    "image_bert": Registered("jaxtok.decoders.image_bert:ImageBert", _MASKGIT),  # 1d-tokenizer's MaskGIT generators
    "uvit_bert": Registered("jaxtok.decoders.image_bert:UViTBert", _MASKGIT),
    "autoregressive": Registered("jaxtok.decoders.autoregressive:CausalTokenTransformer",
                                 "jaxtok.train.tasks.generator:Autoregressive"),
}


def entry(name: str) -> Registered:
  """The registry entry of `name`; ConfigError naming the registered models for an unknown one."""
  if name not in MODELS:
    raise config_validation.ConfigError(f"Unknown model_name {name!r}; registered: {', '.join(sorted(MODELS))}.")
  return MODELS[name]


def model_class(name: str) -> type[nn.Module]:
  """The linen module class registered as `name`."""
  return config_validation.import_named(entry(name).module)


def task_class(name: str) -> type:
  """The `jaxtok.train` Task class that trains model `name`."""
  task = entry(name).task
  if not task:
    raise config_validation.ConfigError(f"model_name {name!r} has no training task in jaxtok.train yet; models the "
                                        f"runner trains: {', '.join(sorted(n for n, e in MODELS.items() if e.task))}.")
  return config_validation.import_named(task)


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
