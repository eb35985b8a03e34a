"""Sampling functions of the registered generators, by model name, with the settings of a config's `sampling`
section: the MaskGIT iterative decoding (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer") of
`jaxtok.decoders.masked_sampling` for "maskgit", KV-cached ancestral sampling (`jaxtok.decoders.ar_sampling`) for
"autoregressive" (which reads temperature, top_k, top_p and guidance_scale, and ignores the masked-decoding fields).

To add a generator: register its module in `jaxtok.registry.GENERATORS` and its sampling function here, a
`(model, variables, key, class_labels [b] int32, settings: SamplingSettings, return_trajectory: bool) ->
masked_sampling.SamplerOutput` (tokens `[b, L(, C)]` int32; trajectory `[T, b, L(, C)]` or None).
"""
import dataclasses
import functools
from typing import Any, Callable

import flax.linen as nn
import jax

from jaxtok import config_validation
from jaxtok.decoders import ar_sampling
from jaxtok.decoders import autoregressive as autoregressive_lib
from jaxtok.decoders import masked_sampling


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
  """The fields of a config's `sampling` section, as static Python values."""
  num_steps: int
  schedule: str
  temperature: float
  choice_temperature: float
  guidance_scale: float
  top_k: int
  top_p: float

  @classmethod
  def from_config(cls, sampling_config: Any) -> "SamplingSettings":
    return cls(**{field.name: sampling_config[field.name] for field in dataclasses.fields(cls)})


def maskgit(model: nn.Module, variables: Any, key: jax.Array, class_labels: jax.Array, settings: SamplingSettings,
            return_trajectory: bool) -> masked_sampling.SamplerOutput:
  """MaskGIT decoding of a MaskedTokenTransformer; classifier-free guidance when guidance_scale > 0."""
  logits_fn = lambda tokens, labels: model.apply(variables, tokens, labels)
  return masked_sampling.maskgit_sample(
      logits_fn, key, class_labels, sequence_length=model.sequence_length, mask_id=model.mask_id,
      num_codebooks=model.num_codebooks if model.num_codebooks > 1 else None, num_steps=settings.num_steps,
      schedule=settings.schedule, temperature=settings.temperature, choice_temperature=settings.choice_temperature,
      guidance_scale=settings.guidance_scale, null_class=model.null_class if settings.guidance_scale > 0 else None,
      top_k=settings.top_k, top_p=settings.top_p, return_trajectory=return_trajectory)


def autoregressive(model: nn.Module, variables: Any, key: jax.Array, class_labels: jax.Array,
                   settings: SamplingSettings, return_trajectory: bool) -> masked_sampling.SamplerOutput:
  """Left-to-right sampling of a CausalTokenTransformer with its KV cache; no trajectory (tokens simply appear in
  order), so `trajectory` is None whatever `return_trajectory` says."""
  del return_trajectory
  output = ar_sampling.sample(
      autoregressive_lib.as_logits_fn(model, variables), key, class_labels, sequence_length=model.sequence_length,
      temperature=settings.temperature, top_k=settings.top_k, top_p=settings.top_p,
      guidance_scale=settings.guidance_scale, null_class=model.num_classes if settings.guidance_scale > 0 else None)
  return masked_sampling.SamplerOutput(tokens=output.tokens, trajectory=None)


SAMPLERS = {"maskgit": maskgit, "autoregressive": autoregressive}


def make_sample_fn(model_name: str, model: nn.Module, settings: SamplingSettings,
                   return_trajectory: bool = False) -> Callable[[Any, jax.Array, jax.Array],
                                                                masked_sampling.SamplerOutput]:
  """Jitted `(variables, key, class_labels) -> SamplerOutput` for the generator registered as `model_name`."""
  if model_name not in SAMPLERS:
    raise config_validation.ConfigError(f"No sampler for generator {model_name!r}; samplers: {sorted(SAMPLERS)}.")
  sampler = functools.partial(SAMPLERS[model_name], model, settings=settings, return_trajectory=return_trajectory)
  return jax.jit(lambda variables, key, class_labels: sampler(variables, key, class_labels))
