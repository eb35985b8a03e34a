"""RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization"), as Llama and LlamaGen compute it.

`x / sqrt(mean(x^2) + eps)` over the last axis, computed in float32 whatever the input dtype, cast back to the
computation dtype, then scaled by a learned per-feature weight (no bias, no mean subtraction).
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok.nn import partitioned


def rms_normalize(x: jax.Array, epsilon: float) -> jax.Array:
  """`x * rsqrt(mean(x^2, -1) + epsilon)` in float32: `[..., features]` -> float32 `[..., features]`."""
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + epsilon)


class RMSNorm(nn.Module):
  """`rms_normalize(x)` cast to `dtype`, times the parameter `scale` `[features]` (initialised to ones).

  Attributes:
    epsilon: added to the mean square (LlamaGen: 1e-5).
    dtype: computation (and output) dtype; param_dtype: the scale's dtype.
  """
  epsilon: float = 1e-5
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: `[..., features]` -> `[..., features]` in `dtype`."""
    scale = self.param("scale", partitioned.ones(("norm",)), (x.shape[-1],), self.param_dtype)
    return rms_normalize(x, self.epsilon).astype(self.dtype) * scale.astype(self.dtype)
