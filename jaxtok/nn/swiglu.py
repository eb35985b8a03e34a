"""SwiGLU feed-forward block (Shazeer 2020, "GLU Variants Improve Transformer"), as Llama and LlamaGen use it.

`down(silu(gate(x)) * up(x))`, three bias-free projections; the hidden width follows Llama's rule
`swiglu_hidden_dim`: two thirds of 4 x width (optionally scaled), rounded up to a multiple of 256.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok.nn import partitioned


def swiglu_hidden_dim(width: int, multiple_of: int = 256, ffn_dim_multiplier: float | None = None) -> int:
  """Llama's hidden width: `int(2 * 4 * width / 3)`, times `ffn_dim_multiplier` (truncated) when given, rounded up
  to a multiple of `multiple_of` (LlamaGen-B, width 768: 2048)."""
  if width < 1 or multiple_of < 1:
    raise ValueError(f"width and multiple_of must be >= 1, got width={width}, multiple_of={multiple_of}.")
  hidden = int(2 * (4 * width) / 3)
  if ffn_dim_multiplier is not None:
    hidden = int(ffn_dim_multiplier * hidden)
  return -(-hidden // multiple_of) * multiple_of


class SwiGLU(nn.Module):
  """`[..., features]` -> `[..., features]`: `down(silu(gate(x)) * up(x))`, dropout on the output when training.

  Attributes:
    hidden_dim: width of gate and up (see `swiglu_hidden_dim`).
    dropout_rate: dropout after `down` (LlamaGen's ffn_dropout_p).
    init_std: standard deviation of the normal kernel initialiser (LlamaGen: 0.02).
    dtype, param_dtype: computation and parameter dtypes.
  """
  hidden_dim: int
  dropout_rate: float = 0.0
  init_std: float = 0.02
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
    init = nn.initializers.normal(self.init_std)
    dense = lambda features, axes, name: nn.Dense(features, use_bias=False, dtype=self.dtype,
                                                  param_dtype=self.param_dtype, name=name,
                                                  kernel_init=partitioned.kernel(axes, init))
    hidden = nn.silu(dense(self.hidden_dim, ("embed", "mlp"), "gate")(x)) * dense(self.hidden_dim, ("embed", "mlp"),
                                                                                 "up")(x)
    hidden = partitioned.constrain_activation(hidden, ("batch", "length", "mlp"))
    out = dense(x.shape[-1], ("mlp", "embed"), "down")(hidden)
    return nn.Dropout(self.dropout_rate)(out, deterministic=deterministic)
