"""Multi-head attention, the one attention layer of jaxtok: dense (cuDNN on GPU) or block-sparse, chosen by config.

`attend` holds the math on already projected heads; `MultiHeadAttention` adds the projections and, for incremental
decoding, reads and fills a `kv_cache.KVCache`. Dense attention goes through `jax.nn.dot_product_attention`; sparse
attention through `jaxtok.kernels.sparse_attention`, which skips every key block the mask excludes. Rows with nothing
to attend are zero on the sparse path, whereas the dense path averages their values as `jax.nn.dot_product_attention`
does.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxtok import kernels as sparse
from jaxtok.kernels.sparse_attention import mask as mask_lib
from jaxtok.nn import kv_cache
from jaxtok.nn import partitioned

IMPLEMENTATIONS = ("dense", "sparse")


def _dense_mask(mask, batch: int) -> jax.Array:
  """Any sparse_attention mask as a bool array `[B or 1, H or 1, Sq, Sk]` for `jax.nn.dot_product_attention`."""
  if isinstance(mask, sparse.TokenSelectionMask):
    return mask.dense()
  if isinstance(mask, (np.ndarray, jax.Array)):
    mask = jnp.asarray(mask)
    return mask[None] if mask.ndim == 3 else mask
  return jnp.broadcast_to(jnp.asarray(mask_lib.dense(mask))[None], (batch, *mask.shape))


def attend(q: jax.Array, k: jax.Array, v: jax.Array, mask=None, *, implementation: str = "dense",
           kernel_implementation: str | None = None) -> jax.Array:
  """Scaled dot-product attention over projected heads.

  Args:
    q: `[batch, q_len, heads, head_dim]`.
    k, v: `[batch, k_len, kv_heads, head_dim]`, kv_heads dividing heads.
    mask: None (attend everywhere), or any mask `sparse_attention` takes: a structured mask (`CausalMask`, ...), a
      `TokenSelectionMask`, or a bool array `[heads or 1, q_len, k_len]` / `[batch or 1, heads or 1, q_len, k_len]`.
    implementation: 'dense' (`jax.nn.dot_product_attention`) or 'sparse' (`sparse_attention`); without a mask there
      is nothing to skip and both run dense.
    kernel_implementation: passed on as `implementation=` to the chosen function (e.g. 'cudnn' / 'xla' for dense,
      'triton' / 'xla' for sparse); None picks the best available.

  Returns:
    `[batch, q_len, heads, head_dim]` in q's dtype.
  """
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
  if implementation == "sparse" and mask is not None:
    return sparse.sparse_attention(q, k, v, mask, implementation=kernel_implementation)
  dense_mask = None if mask is None else _dense_mask(mask, q.shape[0])
  return jax.nn.dot_product_attention(q, k, v, mask=dense_mask, implementation=kernel_implementation)


class HeadsProjection(nn.Module):
  """A linear map between `[..., embed]` and `[..., heads, head_dim]` whose parameters carry logical axis names.

  `to_heads=True`: `[..., in_features] -> [..., heads, head_dim]` (kernel `[in_features, heads, head_dim]`);
  `to_heads=False`: `[..., heads, head_dim] -> [..., features]` (kernel `[heads, head_dim, features]`).
  (flax's DenseGeneral initialises a flattened kernel, which cannot carry 3 logical axis names.)
  """
  features: int
  heads: int
  head_dim: int
  to_heads: bool
  use_bias: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.to_heads:
      shape, names, init_axes = (x.shape[-1], self.heads, self.head_dim), ("embed", "heads", "head_dim"), (0, (1, 2))
      bias_shape, bias_names, equation = (self.heads, self.head_dim), ("heads", "head_dim"), "...d,dhk->...hk"
    else:
      shape, names, init_axes = (self.heads, self.head_dim, self.features), ("heads", "head_dim", "embed"), ((0, 1), 2)
      bias_shape, bias_names, equation = (self.features,), ("embed",), "...hk,hkd->...d"
    init = nn.initializers.lecun_normal(in_axis=init_axes[0], out_axis=init_axes[1])
    kernel = self.param("kernel", partitioned.kernel(names, init), shape, self.param_dtype)
    y = jnp.einsum(equation, x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      y = y + self.param("bias", partitioned.zeros(bias_names), bias_shape, self.param_dtype).astype(self.dtype)
    return y


class MultiHeadAttention(nn.Module):
  """Grouped-query attention with input and output projections, optionally over a KV cache.

  Attributes:
    num_heads: query heads.
    num_kv_heads: key/value heads, dividing num_heads (None: num_heads, plain multi-head attention).
    head_dim: features per head (None: input features / num_heads).
    implementation: 'dense' or 'sparse' (see `attend`).
    kernel_implementation: backend of the chosen implementation (see `attend`).
    qkv_bias: biases in the query, key and value projections (U-ViT's generator has none).
    out_bias: bias in the output projection.
    dtype: computation dtype; param_dtype: parameter dtype.
  """
  num_heads: int
  num_kv_heads: int | None = None
  head_dim: int | None = None
  implementation: str = "dense"
  kernel_implementation: str | None = None
  qkv_bias: bool = True
  out_bias: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, inputs_q: jax.Array, inputs_kv: jax.Array | None = None, mask=None, *,
               cache: kv_cache.KVCache | None = None, layer: int = 0):
    """Attends from `inputs_q` `[batch, q_len, features]` to `inputs_kv` `[batch, k_len, kv_features]` (default:
    `inputs_q`, self-attention) under `mask` (see `attend`); returns `[batch, q_len, features]`.

    With a `cache` (self-attention only), the q_len new keys/values are written into layer `layer` of the cache at
    each example's length (lengths are not advanced here) and the queries attend over all its max_length positions,
    so `mask` is then `[batch or 1, 1, q_len, max_length]` (e.g. `kv_cache.attention_mask`). Returns
    (`[batch, q_len, features]`, the updated cache).
    """
    features = inputs_q.shape[-1]
    num_kv_heads = self.num_kv_heads or self.num_heads
    head_dim = self.head_dim or features // self.num_heads
    if self.num_heads % num_kv_heads or head_dim < 1:
      raise ValueError(f"num_kv_heads must divide num_heads and head_dim be >= 1, got num_heads={self.num_heads}, "
                       f"num_kv_heads={num_kv_heads}, head_dim={head_dim} (features={features})")
    if cache is not None and inputs_kv is not None:
      raise ValueError("A KV cache holds self-attention keys and values; got both `cache` and `inputs_kv`.")
    inputs_kv = inputs_q if inputs_kv is None else inputs_kv
    project = lambda heads, name: HeadsProjection(features, heads, head_dim, to_heads=True, use_bias=self.qkv_bias,
                                                  dtype=self.dtype, param_dtype=self.param_dtype, name=name)
    q = project(self.num_heads, "query")(inputs_q)
    k = project(num_kv_heads, "key")(inputs_kv)
    v = project(num_kv_heads, "value")(inputs_kv)
    if cache is not None:
      cache = kv_cache.write_layer(cache, layer, k, v)
      k, v = cache.keys[layer], cache.values[layer]
    out = attend(q, k, v, mask, implementation=self.implementation, kernel_implementation=self.kernel_implementation)
    out = HeadsProjection(features, self.num_heads, head_dim, to_heads=False, use_bias=self.out_bias,
                          dtype=self.dtype, param_dtype=self.param_dtype, name="out")(out)
    return out if cache is None else (out, cache)
