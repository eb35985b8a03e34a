"""Normalisations: LayerNorm with logical axes and a configurable epsilon, and l2-normalisation of rows.

`l2_normalize` is defined with the codebook-lookup kernels' reference (`jaxtok.kernels` sits below `jaxtok.nn` and
imports nothing of it), so the quantizers, the kernels and the layers share one definition.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxtok.kernels.codebook_lookup.metric import l2_normalize
from jaxtok.nn import partitioned

__all__ = ["layer_norm", "l2_normalize", "DEFAULT_LAYER_NORM_EPSILON"]

DEFAULT_LAYER_NORM_EPSILON = 1e-6  # flax's default; PyTorch's nn.LayerNorm (official TiTok) uses 1e-5, BERT 1e-12


def layer_norm(dtype: Any, name: str, epsilon: float = DEFAULT_LAYER_NORM_EPSILON,
               param_dtype: Any = jnp.float32) -> nn.LayerNorm:
  """LayerNorm over the last axis, `(x - mean) / sqrt(var + epsilon) * scale + bias`, scale and bias on "norm"."""
  if not epsilon > 0:
    raise ValueError(f"LayerNorm epsilon must be > 0, got {epsilon}.")
  return nn.LayerNorm(epsilon=epsilon, dtype=dtype, param_dtype=param_dtype, name=name,
                      scale_init=partitioned.ones(("norm",)), bias_init=partitioned.zeros(("norm",)))
