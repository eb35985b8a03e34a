"""`sparse_attention`: attention that visits only the blocks a mask allows, with dispatch over backends.

`implementation=None` uses the fastest backend that runs on the current platform (GPU: Pallas Triton; TPU: Pallas
Mosaic TPU) and falls back to the dense XLA reference (`'xla'`, also the CPU path). An explicit implementation that
cannot run raises `NotImplementedError` saying why.
"""
import math
import types
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxtok.kernels.sparse_attention import mask as mask_lib
from jaxtok.kernels.sparse_attention import mosaic_tpu
from jaxtok.kernels.sparse_attention import reference
from jaxtok.kernels.sparse_attention import token_selection
from jaxtok.kernels.sparse_attention import triton

Attention = Callable[..., jax.Array]
IMPLEMENTATIONS = ("xla", "triton", "mosaic_gpu", "mosaic_tpu")
_PREFERENCE = {"cpu": (), "gpu": ("triton",), "tpu": ("mosaic_tpu",)}
_SUPPORTED_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16))


def _backends() -> dict[str, types.ModuleType]:
  return {"xla": reference, "triton": triton, "mosaic_tpu": mosaic_tpu}


def unavailable_reason(implementation: str, head_dim: int) -> str | None:
  """Why `implementation` cannot run here for this head size, or None when it can."""
  if implementation == "mosaic_gpu":
    return "there is no Mosaic GPU backend for sparse_attention; 'triton' serves GPUs"
  return _backends()[implementation].unavailable_reason(head_dim)


def resolve(implementation: str | None, head_dim: int) -> Attention:
  """The `attention` function of the requested (or best available) backend."""
  if implementation is None:
    for candidate in _PREFERENCE.get(jax.default_backend(), ()):
      if unavailable_reason(candidate, head_dim) is None:
        return _backends()[candidate].attention
    return reference.attention
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f"implementation must be None or one of {IMPLEMENTATIONS}, got {implementation!r}")
  reason = unavailable_reason(implementation, head_dim)
  if reason is not None:
    raise NotImplementedError(f"sparse_attention implementation={implementation!r} cannot run: {reason}")
  return _backends()[implementation].attention


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


def sparse_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask, *, scale: float | None = None,
                     implementation: str | None = None) -> jax.Array:
  """Softmax attention over the (query, key) pairs `mask` allows, skipping every key block it excludes.

  Args:
    q: `[batch, q_len, heads, head_dim]` float32 or bfloat16 (the layout of `jax.nn.dot_product_attention`).
    k, v: `[batch, k_len, kv_heads, head_dim]`, kv_heads dividing heads (grouped-query attention).
    mask: a structured mask (`CausalMask`, `SlidingWindowMask`, `PrefixLMMask`, `SegmentMask`, `TreeMask`,
      `BlockMask`, `BooleanMask`), a run-time `TokenSelectionMask`, or a bool array `[heads or 1, q_len, k_len]`
      (or with a leading `[batch or 1]` axis), True = attend. NumPy arrays are processed at trace time, jax arrays
      at run time.
    scale: logit scale, default `1 / sqrt(head_dim)`.
    implementation: None (best available, falling back to 'xla'), 'xla', 'triton', 'mosaic_gpu' or 'mosaic_tpu'.

  Returns:
    `[batch, q_len, heads, head_dim]` in q's dtype; rows with nothing to attend are zero (and get zero gradient).
  """
  validate_inputs(q, k, v)
  mask = normalize_mask(mask, q, k)
  attention = resolve(implementation, q.shape[-1])
  return attention(q, k, v, mask, scale=1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale))
