"""Transformer block (attention + MLP, each inside a residual) shared by the ViTs and the generators.

Pre-norm (ViT, GPT-2, TiTok) by default; post-norm (BERT, MaskGIT's generator) as an option. The knobs that differ
between the official models jaxtok reproduces: LayerNorm epsilon, the GELU form, biases on the q/k/v projections.
"""
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok.nn import attention
from jaxtok.nn import kv_cache
from jaxtok.nn import normalization
from jaxtok.nn import partitioned

ACTIVATIONS = {
    "gelu_tanh": functools.partial(nn.gelu, approximate=True),  # flax's default (BERT's original code, GPT-2)
    "gelu_exact": functools.partial(nn.gelu, approximate=False),  # PyTorch's nn.GELU(), x * Phi(x) with erf
}
NORM_POSITIONS = ("pre", "post")


def activation(name: str):
  """The element-wise function named `name` (a key of `ACTIVATIONS`)."""
  if name not in ACTIVATIONS:
    raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {name!r}.")
  return ACTIVATIONS[name]


class Mlp(nn.Module):
  """Dense -> activation -> Dense, back to the input width. `x: [..., features]` -> `[..., features]`."""
  hidden_dim: int
  dropout_rate: float = 0.0
  activation: str = "gelu_tanh"
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
    function = activation(self.activation)
    hidden = nn.Dense(self.hidden_dim, dtype=self.dtype, param_dtype=self.param_dtype, name="hidden",
                      kernel_init=partitioned.kernel(("embed", "mlp")), bias_init=partitioned.zeros(("mlp",)))(x)
    hidden = partitioned.constrain_activation(hidden, ("batch", "length", "mlp"))
    hidden = nn.Dropout(self.dropout_rate)(function(hidden), deterministic=deterministic)
    return nn.Dense(x.shape[-1], dtype=self.dtype, param_dtype=self.param_dtype, name="out",
                    kernel_init=partitioned.kernel(("mlp", "embed")), bias_init=partitioned.zeros(("embed",)))(hidden)


class TransformerBlock(nn.Module):
  """Pre-norm: `y = x + attention(norm(x))`, `y + mlp(norm(y))`; post-norm: `y = norm(x + attention(x))`,
  `norm(y + mlp(y))`. Self-attention, optionally over a KV cache for incremental decoding.

  Attributes:
    num_heads, num_kv_heads: query and key/value heads of the attention (see `MultiHeadAttention`).
    mlp_dim: hidden width of the MLP.
    implementation, kernel_implementation: dense or block-sparse attention and its backend (see `attention.attend`).
    dropout_rate: dropout after attention and inside and after the MLP.
    norm_position: "pre" or "post" (where the two LayerNorms sit, above).
    layer_norm_epsilon: epsilon of both LayerNorms (1e-6; PyTorch's default is 1e-5, BERT's 1e-12).
    activation: the MLP's, "gelu_tanh" (tanh approximation) or "gelu_exact" (erf, PyTorch's nn.GELU()).
    qkv_bias: biases in the query, key and value projections (the output projection always has one).
    dtype, param_dtype: computation and parameter dtypes.
  """
  num_heads: int
  mlp_dim: int
  num_kv_heads: int | None = None
  implementation: str = "dense"
  kernel_implementation: str | None = None
  dropout_rate: float = 0.0
  norm_position: str = "pre"
  layer_norm_epsilon: float = normalization.DEFAULT_LAYER_NORM_EPSILON
  activation: str = "gelu_tanh"
  qkv_bias: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, mask=None, deterministic: bool = True, *,
               cache: kv_cache.KVCache | None = None, layer: int = 0):
    """`x: [batch, tokens, features]` -> `[batch, tokens, features]`; `mask` as in `attention.attend`.

    With a `cache`, the tokens' keys and values go into layer `layer` of it and attention reads the whole cache
    (see `MultiHeadAttention`); returns (`[batch, tokens, features]`, the updated cache).
    """
    if self.norm_position not in NORM_POSITIONS:
      raise ValueError(f"norm_position must be one of {NORM_POSITIONS}, got {self.norm_position!r}.")
    norm = functools.partial(normalization.layer_norm, self.dtype, epsilon=self.layer_norm_epsilon,
                             param_dtype=self.param_dtype)
    skip = lambda name: lambda h: h
    pre, post = (norm, skip) if self.norm_position == "pre" else (skip, norm)
    x = partitioned.constrain_activation(x, ("batch", "length", "embed"))
    dropout = nn.Dropout(self.dropout_rate)
    attended = attention.MultiHeadAttention(
        self.num_heads, self.num_kv_heads, implementation=self.implementation,
        kernel_implementation=self.kernel_implementation, qkv_bias=self.qkv_bias, dtype=self.dtype,
        param_dtype=self.param_dtype, name="attention")(pre("attention_norm")(x), mask=mask, cache=cache, layer=layer)
    if cache is not None:
      attended, cache = attended
    x = post("attention_norm")(x + dropout(attended, deterministic=deterministic))
    mlp = Mlp(self.mlp_dim, self.dropout_rate, self.activation, dtype=self.dtype, param_dtype=self.param_dtype,
              name="mlp")
    x = post("mlp_norm")(x + dropout(mlp(pre("mlp_norm")(x), deterministic), deterministic=deterministic))
    return x if cache is None else (x, cache)
