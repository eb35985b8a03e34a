"""The two distances a lookup can minimise, as a kernel-ready form plus an exact evaluation for the chosen code.

Kernels minimise `|c|^2 - 2 z.c`. For 'l2' that is the squared euclidean distance minus the row constant `|z|^2`;
for 'cosine' both sides are l2-normalised first and `|c|^2` is taken as 0, so the kernel maximises `z.c`. The
distance returned to the caller is recomputed directly for the chosen code (`|z - c|^2` or `1 - cos`), which is
exact to float32 rounding even where the expanded form above cancels catastrophically.
"""
from typing import Literal

import jax
import jax.numpy as jnp

Distance = Literal["l2", "cosine"]
DISTANCES = ("l2", "cosine")
_NORM_EPSILON = 1e-12


def l2_normalize(x: jax.Array) -> jax.Array:
  """`x` `[..., D]` with every row (last axis) scaled to unit l2 norm, float32 (all-zero rows stay zero)."""
  x = x.astype(jnp.float32)
  sqnorm = jnp.sum(x * x, axis=-1, keepdims=True)
  return x * jax.lax.rsqrt(jnp.maximum(sqnorm, _NORM_EPSILON**2))


def kernel_inputs(z: jax.Array, codebook: jax.Array, distance: Distance,
                  codebook_sqnorm: jax.Array | None) -> tuple[jax.Array, jax.Array, jax.Array | None]:
  """What the kernels consume: (z `[N, D]`, codebook `[K, D]`, sqnorm `[K]` float32 or None), operands in z's dtype.

  For 'l2' without given norms the sqnorm is None: kernels then compute `|c|^2` from each tile they multiply.
  """
  if distance == "cosine":
    z, codebook = l2_normalize(z).astype(z.dtype), l2_normalize(codebook).astype(codebook.dtype)
    return z, codebook, jnp.zeros(codebook.shape[:1], jnp.float32)
  return z, codebook, None if codebook_sqnorm is None else codebook_sqnorm.astype(jnp.float32)


def code_distance(z: jax.Array, codes: jax.Array, distance: Distance) -> jax.Array:
  """Distance of each row of z `[N, D]` to its code `[N, D]` -> `[N]` float32 (squared l2, or 1 - cos)."""
  if distance == "cosine":
    return 1.0 - jnp.sum(l2_normalize(z) * l2_normalize(codes), axis=-1)
  difference = z.astype(jnp.float32) - codes.astype(jnp.float32)
  return jnp.sum(difference * difference, axis=-1)
