"""Pre-norm transformer block (attention + MLP, each inside a residual) shared by the ViTs and the decoders."""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok.nn import attention
from jaxtok.nn import partitioned


class Mlp(nn.Module):
  """Dense -> GELU -> Dense, back to the input width. `x: [..., features]` -> `[..., features]`."""
  hidden_dim: int
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
    hidden = nn.Dense(self.hidden_dim, dtype=self.dtype, param_dtype=self.param_dtype, name="hidden",
                      kernel_init=partitioned.kernel(("embed", "mlp")), bias_init=partitioned.zeros(("mlp",)))(x)
    hidden = partitioned.constrain_activation(hidden, ("batch", "length", "mlp"))
    hidden = nn.Dropout(self.dropout_rate)(nn.gelu(hidden), deterministic=deterministic)
    return nn.Dense(x.shape[-1], dtype=self.dtype, param_dtype=self.param_dtype, name="out",
                    kernel_init=partitioned.kernel(("mlp", "embed")), bias_init=partitioned.zeros(("embed",)))(hidden)


class TransformerBlock(nn.Module):
  """`x + attention(norm(x))`, then `y + mlp(norm(y))`.

  Attributes:
    num_heads, num_kv_heads: query and key/value heads of the attention (see `MultiHeadAttention`).
    mlp_dim: hidden width of the MLP.
    implementation, kernel_implementation: dense or block-sparse attention and its backend (see `attention.attend`).
    dropout_rate: dropout after attention and inside and after the MLP.
    dtype, param_dtype: computation and parameter dtypes.
  """
  num_heads: int
  mlp_dim: int
  num_kv_heads: int | None = None
  implementation: str = "dense"
  kernel_implementation: str | None = None
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, mask=None, deterministic: bool = True) -> jax.Array:
    """`x: [batch, tokens, features]` -> `[batch, tokens, features]`; `mask` as in `attention.attend`."""
    norm = lambda name: nn.LayerNorm(dtype=self.dtype, param_dtype=self.param_dtype, name=name,
                                     scale_init=partitioned.ones(("norm",)), bias_init=partitioned.zeros(("norm",)))
    x = partitioned.constrain_activation(x, ("batch", "length", "embed"))
    dropout = nn.Dropout(self.dropout_rate)
    attended = attention.MultiHeadAttention(
        self.num_heads, self.num_kv_heads, implementation=self.implementation,
        kernel_implementation=self.kernel_implementation, dtype=self.dtype, param_dtype=self.param_dtype,
        name="attention")(norm("attention_norm")(x), mask=mask)
    x = x + dropout(attended, deterministic=deterministic)
    mlp = Mlp(self.mlp_dim, self.dropout_rate, dtype=self.dtype, param_dtype=self.param_dtype, name="mlp")
    return x + dropout(mlp(norm("mlp_norm")(x), deterministic), deterministic=deterministic)
