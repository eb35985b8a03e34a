"""`sparse_attention`: attention that visits only the blocks a mask allows, with dispatch over backends.

`implementation=None` stages, for the platform the program is lowered for, the fastest kernel that runs there
(cuda: Pallas Triton; tpu: Pallas Mosaic TPU) with the dense XLA reference (`'xla'`, also the CPU path) as the
fallback (`jaxtok.kernels.op`). An explicit implementation that cannot run raises `NotImplementedError` saying why.
"""
import math
from typing import Callable

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from jaxtok.kernels import op
from jaxtok.kernels import sharding
from jaxtok.kernels.sparse_attention import mask as mask_lib
from jaxtok.kernels.sparse_attention import mosaic_tpu
from jaxtok.kernels.sparse_attention import reference
from jaxtok.kernels.sparse_attention import token_selection
from jaxtok.kernels.sparse_attention import triton

Attention = Callable[..., jax.Array]
_SUPPORTED_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16))

ATTENTION = op.Op("sparse_attention", reference.attention, backends=(triton.BACKEND, mosaic_tpu.BACKEND),
                  preferred={"cuda": ("triton",), "tpu": ("mosaic_tpu",)})
IMPLEMENTATIONS = ATTENTION.implementations


def unavailable_reason(implementation: str, platform: str, head_dim: int, dtype=jnp.float32,
                       selection_block: int | None = None) -> str | None:
  """Why `implementation` cannot run when lowering for `platform` ('cpu', 'cuda', 'tpu') with this head size (and
  a token selection's `query_block`, if the mask is one), or None when it can."""
  return ATTENTION.unavailable_reason(implementation, platform, head_dim=head_dim, dtype=jnp.dtype(dtype),
                                      selection_block=selection_block)


def resolve(implementation: str | None, head_dim: int, dtype=jnp.float32, block_sizes: op.BlockSizes | None = None,
            selection_block: int | None = None) -> Attention:
  """The `attention(q, k, v, mask=..., scale=...)` that `implementation` means (see `jaxtok.kernels.op`)."""
  return ATTENTION.resolve(implementation, block_sizes, head_dim=head_dim, dtype=jnp.dtype(dtype),
                           selection_block=selection_block)


def validate_inputs(q: jax.Array, k: jax.Array, v: jax.Array) -> None:
  """Raises ValueError naming the expected and received value for malformed q, k, v."""
  if q.ndim != 4 or k.ndim != 4 or k.shape != v.shape:
    raise ValueError(f"need q [B, Sq, H, Dh] and k, v [B, Sk, Hkv, Dh] of equal shape, got q {q.shape}, "
                     f"k {k.shape}, v {v.shape}")
  if q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]:
    raise ValueError(f"q and k need the same batch and head_dim, got q {q.shape} and k {k.shape}")
  if k.shape[2] == 0 or q.shape[2] % k.shape[2]:
    raise ValueError(f"kv heads must divide query heads, got {k.shape[2]} and {q.shape[2]}")
  for name, array in (("q", q), ("k", k), ("v", v)):
    if jnp.dtype(array.dtype) not in _SUPPORTED_DTYPES or array.dtype != q.dtype:
      raise ValueError(f"q, k, v must share one dtype, float32 or bfloat16; {name} is {array.dtype}")


def _extent(mask) -> tuple[int, int, int, int]:
  """(batch, heads, q_len, k_len) a normalised mask covers, batch and heads being 1 when shared."""
  if isinstance(mask, jax.Array):
    return mask.shape
  if isinstance(mask, token_selection.TokenSelectionMask):
    return (mask.selected.shape[0], *mask.shape)
  return (1, *mask.shape)


def normalize_mask(mask, q: jax.Array, k: jax.Array):
  """A structured mask, a `TokenSelectionMask`, or a bool jax array `[B or 1, H or 1, Sq, Sk]`, checked against q, k.

  Host boolean arrays (numpy) become `BooleanMask` so their tables are built, and deduplicated, at trace time;
  jax arrays are treated as computed at run time.
  """
  if isinstance(mask, np.ndarray) and mask.ndim == 4 and mask.shape[0] == 1:
    mask = mask[0]
  if isinstance(mask, np.ndarray) and mask.ndim == 3:
    mask = mask_lib.BooleanMask(mask)
  elif isinstance(mask, (np.ndarray, jax.Array)):
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_ or mask.ndim not in (3, 4):
      raise ValueError(f"a mask array must be bool [H or 1, Sq, Sk] or [B or 1, H or 1, Sq, Sk], got {mask.dtype} "
                       f"{mask.shape}")
    mask = mask[None] if mask.ndim == 3 else mask
  elif isinstance(mask, token_selection.TokenSelectionMask):
    mask.validate()
  elif not isinstance(mask, mask_lib.StructuredMask):
    raise ValueError(f"mask must be a structured mask, a TokenSelectionMask or a bool array, got {type(mask)}")
  batch, q_len, heads = q.shape[:3]
  mask_batch, mask_heads, mask_q, mask_k = _extent(mask)
  if (mask_q, mask_k) != (q_len, k.shape[1]) or mask_heads not in (1, heads) or mask_batch not in (1, batch):
    raise ValueError(f"mask must cover [B={batch} or 1, H={heads} or 1, Sq={q_len}, Sk={k.shape[1]}], got "
                     f"[{mask_batch}, {mask_heads}, {mask_q}, {mask_k}]")
  return mask


def _mask_spec(mask, batch_axes, head_axes):
  """The shard_map spec of a run-time mask (its batch and head axes split like q's when not shared)."""
  spec = lambda extent: P(batch_axes if extent[0] > 1 else None, head_axes if extent[1] > 1 else None)
  if isinstance(mask, jax.Array):
    return spec(mask.shape)
  if isinstance(mask, token_selection.TokenSelectionMask):
    return dataclasses.replace(mask, selected=spec(mask.selected.shape))
  return None


def per_device(attention: Attention, q: jax.Array, k: jax.Array, mask) -> Attention:
  """`attention` on each device's batch (and, when the mask allows, heads) under the mesh in context
  (`jaxtok.kernels.sharding`); unchanged outside a mesh. Host masks that differ per head keep heads whole."""
  free = sharding.free_axes()
  batch_axes = sharding.dividing_axes(q.shape[0], free)
  per_head_host_mask = not isinstance(mask, (jax.Array, token_selection.TokenSelectionMask)) and mask.shape[0] > 1
  rest = () if per_head_host_mask else tuple(axis for axis in free if axis not in batch_axes)
  head_axes = sharding.dividing_axes(k.shape[2], rest)
  if not batch_axes and not head_axes:
    return attention
  heads = P(batch_axes or None, None, head_axes or None, None)
  mask_spec = _mask_spec(mask, batch_axes or None, head_axes or None)

  def sharded(q, k, v, *, mask, scale):
    local = lambda q, k, v, mask: attention(q, k, v, mask=mask, scale=scale)
    if mask_spec is None:  # a host mask, closed over
      return jax.shard_map(lambda q, k, v: local(q, k, v, mask), in_specs=(heads,) * 3, out_specs=heads,
                           check_vma=False)(q, k, v)
    return jax.shard_map(local, in_specs=(heads,) * 3 + (mask_spec,), out_specs=heads, check_vma=False)(q, k, v, mask)

  return sharded


def sparse_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask, *, scale: float | None = None,
                     implementation: str | None = None, block_sizes: op.BlockSizes | None = None) -> jax.Array:
  """Softmax attention over the (query, key) pairs `mask` allows, skipping every key block it excludes.

  Under a mesh with automatic axes (`jax.set_mesh`) each device attends its own batch and heads.

  Args:
    q: `[batch, q_len, heads, head_dim]` float32 or bfloat16 (the layout of `jax.nn.dot_product_attention`).
    k, v: `[batch, k_len, kv_heads, head_dim]`, kv_heads dividing heads (grouped-query attention).
    mask: a structured mask (`CausalMask`, `SlidingWindowMask`, `PrefixLMMask`, `SegmentMask`, `TreeMask`,
      `BlockMask`, `BooleanMask`), a run-time `TokenSelectionMask`, or a bool array `[heads or 1, q_len, k_len]`
      (or with a leading `[batch or 1]` axis), True = attend. NumPy arrays are processed at trace time, jax arrays
      at run time.
    scale: logit scale, default `1 / sqrt(head_dim)`.
    implementation: None (the best kernel for the platform lowered for, falling back to 'xla'), 'xla', 'triton' or
      'mosaic_tpu'.
    block_sizes: with an explicit kernel implementation, its `BlockSizes` (e.g. `triton.BlockSizes(forward_q=64)`);
      None picks the backend's defaults for the head size.

  Returns:
    `[batch, q_len, heads, head_dim]` in q's dtype; rows with nothing to attend are zero (and get zero gradient).
  """
  validate_inputs(q, k, v)
  mask = normalize_mask(mask, q, k)
  selection_block = mask.query_block if isinstance(mask, token_selection.TokenSelectionMask) else None
  attention = per_device(resolve(implementation, q.shape[-1], q.dtype, block_sizes, selection_block), q, k, mask)
  return attention(q, k, v, mask=mask, scale=1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale))
