"""Each Pallas kernel against its XLA reference on the device at hand: the first thing a GPU/TPU run must confirm.

On a GPU/TPU every kernel that runs there is compiled for it; elsewhere (`small`) the Triton and Mosaic TPU kernels
run in Pallas interpret mode, so the code path is the same. Codebook lookup: the share of rows whose chosen code
differs from the reference's and the worst excess distance over the true nearest (relative to |z|^2 + max |c|^2).
Sparse attention: the largest error of the output and of dq, dk, dv relative to the reference's largest value.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.pallas import tpu as pltpu

import jaxtok.kernels as kernels
from jaxtok.kernels.codebook_lookup import api as lookup_api
from jaxtok.kernels.codebook_lookup import mosaic_tpu as lookup_tpu
from jaxtok.kernels.codebook_lookup import reference as lookup_reference
from jaxtok.kernels.codebook_lookup import triton as lookup_triton
from jaxtok.kernels.sparse_attention import api as attention_api
from jaxtok.kernels.sparse_attention import reference as attention_reference
from jaxtok.kernels.sparse_attention import triton as attention_triton

# Largest tolerated errors (distance excess; attention error relative to the reference's scale) per dtype.
LOOKUP_TOLERANCE = {"float32": 1e-5, "bfloat16": 1e-2}
ATTENTION_TOLERANCE = {"float32": 1e-2, "bfloat16": 3e-2}


def _platform() -> str:
  return "cuda" if jax.default_backend() == "gpu" else jax.default_backend()


def lookup_kernels(small: bool, dim: int, dtype) -> dict[str, object]:
  """`nearest_code` of every codebook-lookup kernel runnable here (interpreted ones when `small` off-device)."""
  if small and _platform() == "cpu":
    return {"triton (interpret)": functools.partial(lookup_triton.nearest_code, interpret=True),
            "mosaic_tpu (interpret)": functools.partial(lookup_tpu.nearest_code, interpret=pltpu.InterpretParams())}
  return {name: lookup_api.resolve(name, dim, dtype) for name in lookup_api.IMPLEMENTATIONS[1:]
          if lookup_api.unavailable_reason(name, _platform(), dim, dtype) is None}


def lookup_rows(small: bool) -> list[dict]:
  """One row per (kernel, dtype, D) on a random problem (N=8192, K=4096; 256 x 300 when small)."""
  rows = []
  num_rows, num_codes = (256, 300) if small else (8192, 4096)
  for dtype, dim in (("float32", 32), ("bfloat16", 256)):
    keys = jax.random.split(jax.random.key(dim), 2)
    z = jax.random.normal(keys[0], (num_rows, dim), dtype)
    codebook = jax.random.normal(keys[1], (num_codes, dim), dtype)
    expected = jax.jit(lookup_reference.nearest_code)(z, codebook)[0]
    distances = _distances(z, codebook)
    for name, kernel in lookup_kernels(small, dim, dtype).items():
      indices = jax.jit(functools.partial(lookup_api.lookup_with, kernel))(z, codebook)
      excess = _excess(distances, indices, z, codebook)
      rows.append(dict(kernel="codebook_lookup", impl=name, dtype=dtype, D=dim, K=num_codes,
                       index_mismatch=float(jnp.mean(indices != expected)), error=excess,
                       passed=excess <= LOOKUP_TOLERANCE[dtype]))
  return rows


def _distances(z, codebook):
  z, codebook = z.astype(jnp.float32), codebook.astype(jnp.float32)
  dots = jnp.einsum("nd,kd->nk", z, codebook, precision=jax.lax.Precision.HIGHEST)
  return jnp.sum(z * z, 1, keepdims=True) - 2 * dots + jnp.sum(codebook * codebook, 1)[None]


def _excess(distances, indices, z, codebook) -> float:
  chosen = jnp.take_along_axis(distances, indices[:, None], axis=1)[:, 0]
  scale = jnp.sum(z.astype(jnp.float32) ** 2, 1) + jnp.max(jnp.sum(codebook.astype(jnp.float32) ** 2, 1))
  return float(jnp.max((chosen - jnp.min(distances, axis=1)) / scale))


def attention_kernels(small: bool, head_dim: int, dtype) -> dict[str, object]:
  """`attention(q, k, v, mask=, scale=)` of every sparse-attention kernel runnable here."""
  if small and _platform() == "cpu":  # interpret mode is slow: the Triton kernel stands for both
    return {"triton (interpret)": functools.partial(attention_triton.attention, interpret=True)}
  return {name: attention_api.resolve(name, head_dim, dtype) for name in attention_api.IMPLEMENTATIONS[1:]
          if attention_api.unavailable_reason(name, _platform(), head_dim, dtype) is None}


def attention_rows(small: bool) -> list[dict]:
  """Forward and gradients of each kernel under a causal, a sliding-window and a token-selection mask (small: bf16,
  no sliding window)."""
  rows = []
  seq_len, heads, kv_heads, head_dim = (160, 2, 1, 64) if small else (2048, 8, 2, 128)
  for dtype in ("bfloat16",) if small else ("float32", "bfloat16"):
    keys = jax.random.split(jax.random.key(0), 4)
    q = jax.random.normal(keys[0], (2, seq_len, heads, head_dim), dtype)
    k, v = (jax.random.normal(key, (2, seq_len, kv_heads, head_dim), dtype) for key in keys[1:3])
    d_out = jax.random.normal(keys[3], q.shape, dtype)
    masks = {"causal": lambda q, k: kernels.CausalMask(seq_len, seq_len),
             "sliding_window": lambda q, k: kernels.SlidingWindowMask(seq_len, seq_len, left=seq_len // 4),
             "token_selection": lambda q, k: kernels.token_selection_mask(q, k, seq_len // 4, query_block=32,
                                                                          causal=True)}
    for mask_name, mask_fn in masks.items():
      if small and mask_name == "sliding_window":
        continue  # interpret mode is slow; causal covers the static-mask path
      expected = _value_and_grads(attention_reference.attention, mask_fn, q, k, v, d_out)
      for name, kernel in attention_kernels(small, head_dim, dtype).items():
        got = _value_and_grads(kernel, mask_fn, q, k, v, d_out)
        errors = {part: _relative_error(a, b) for part, a, b in zip(("out", "dq", "dk", "dv"), got, expected)}
        rows.append(dict(kernel="sparse_attention", impl=name, dtype=dtype, mask=mask_name, S=seq_len,
                         head_dim=head_dim, error=max(errors.values()), **{f"error_{p}": e for p, e in errors.items()},
                         passed=max(errors.values()) <= ATTENTION_TOLERANCE[dtype]))
  return rows


@functools.partial(jax.jit, static_argnums=(0, 1))
def _value_and_grads(attention, mask_fn, q, k, v, d_out):
  scale = q.shape[-1] ** -0.5
  out, pullback = jax.vjp(lambda q, k, v: attention(q, k, v, mask=mask_fn(q, k), scale=scale), q, k, v)
  return (out, *pullback(d_out))


def _relative_error(got, want) -> float:
  got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
  return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-6))
