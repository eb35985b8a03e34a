"""`codebook_lookup`: nearest code per row without materialising the `[N, K]` distance matrix.

`implementation=None` uses the fastest backend that runs on the current platform (GPU: Pallas Triton; TPU: Pallas
Mosaic TPU) and falls back to the chunked XLA reference (`'xla'`, also the CPU path). 'mosaic_gpu' (Hopper, bfloat16)
is available on request. An explicit implementation that cannot run raises `NotImplementedError` saying why.
"""
import functools
import types
from typing import Callable

import jax
import jax.numpy as jnp

from jaxtok.kernels.codebook_lookup import metric
from jaxtok.kernels.codebook_lookup import mosaic_gpu
from jaxtok.kernels.codebook_lookup import mosaic_tpu
from jaxtok.kernels.codebook_lookup import reference
from jaxtok.kernels.codebook_lookup import triton

NearestCode = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]

_SUPPORTED_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16))


_BACKENDS: dict[str, types.ModuleType] = {
    "xla": reference, "triton": triton, "mosaic_gpu": mosaic_gpu, "mosaic_tpu": mosaic_tpu}
IMPLEMENTATIONS = tuple(_BACKENDS)
# Kernels worth trying per platform, fastest first; anything else falls back to 'xla'. 'mosaic_gpu' (bfloat16,
# Hopper) stays opt-in until it has been measured against 'triton' on a GPU.
_PREFERENCE = {"gpu": ("triton",), "tpu": ("mosaic_tpu",)}


def unavailable_reason(implementation: str, dim: int) -> str | None:
  """Why `implementation` cannot run here for vectors of size `dim`, or None when it can."""
  if implementation == "xla":
    return None
  return _BACKENDS[implementation].unavailable_reason(dim)


def resolve(implementation: str | None, dim: int) -> NearestCode:
  """The `nearest_code` function of the requested (or best available) backend."""
  if implementation is None:
    platform = jax.default_backend()
    for candidate in _PREFERENCE.get(platform, ()):
      if unavailable_reason(candidate, dim) is None:
        return _BACKENDS[candidate].nearest_code
    return reference.nearest_code
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f"implementation must be None or one of {IMPLEMENTATIONS}, got {implementation!r}")
  reason = unavailable_reason(implementation, dim)
  if reason is not None:
    raise NotImplementedError(f"codebook_lookup implementation={implementation!r} cannot run: {reason}")
  return _BACKENDS[implementation].nearest_code


def validate(z: jax.Array, codebook: jax.Array, distance: str, codebook_sqnorm: jax.Array | None) -> None:
  """Raises ValueError naming the expected and received value for any malformed argument."""
  if z.ndim != 2:
    raise ValueError(f"z must be [N, D]; flatten leading axes first. Got shape {z.shape}")
  if codebook.ndim != 2 or codebook.shape[0] == 0:
    raise ValueError(f"codebook must be [K, D] with K >= 1, got shape {codebook.shape}")
  if z.shape[1] != codebook.shape[1] or z.shape[1] == 0:
    raise ValueError(f"z [N, D] and codebook [K, D] need the same D >= 1, got {z.shape} and {codebook.shape}")
  for name, array in (("z", z), ("codebook", codebook)):
    if jnp.dtype(array.dtype) not in _SUPPORTED_DTYPES:
      raise ValueError(f"{name} must be float32 or bfloat16, got {array.dtype}")
  if distance not in metric.DISTANCES:
    raise ValueError(f"distance must be one of {metric.DISTANCES}, got {distance!r}")
  if codebook_sqnorm is not None:
    if distance != "l2":
      raise ValueError(f"codebook_sqnorm applies only to distance='l2', got distance={distance!r}")
    if codebook_sqnorm.shape != codebook.shape[:1]:
      raise ValueError(f"codebook_sqnorm must be [K]={codebook.shape[:1]}, got shape {codebook_sqnorm.shape}")


def lookup_with(nearest_code: NearestCode, z: jax.Array, codebook: jax.Array, *, distance: metric.Distance = "l2",
                codebook_sqnorm: jax.Array | None = None, return_distance: bool = False):
  """`codebook_lookup` through a given backend function (for tests and the sharded wrapper).

  Returns indices `[N]` int32, plus distances `[N]` float32 when `return_distance`.
  """
  dtype = jnp.promote_types(z.dtype, codebook.dtype)
  z, codebook = z.astype(dtype), codebook.astype(dtype)
  if z.shape[0] == 0:
    indices = jnp.zeros((0,), jnp.int32)
  else:
    inputs = metric.kernel_inputs(*jax.lax.stop_gradient((z, codebook)), distance,
                                  jax.lax.stop_gradient(codebook_sqnorm))
    indices, _ = nearest_code(*inputs)
  if not return_distance:
    return indices
  return indices, metric.code_distance(z, codebook[indices], distance)


@functools.partial(jax.jit, static_argnames=("distance", "return_distance", "implementation"))
def codebook_lookup(z: jax.Array, codebook: jax.Array, *, distance: metric.Distance = "l2",
                    codebook_sqnorm: jax.Array | None = None, return_distance: bool = False,
                    implementation: str | None = None):
  """Index of the nearest code for every row of z, streaming the codebook through on-chip memory.

  Args:
    z: `[N, D]` float32 or bfloat16 vectors (flatten any leading axes first).
    codebook: `[K, D]` float32 or bfloat16 codes; any K >= 1, not necessarily a power of two.
    distance: 'l2' (squared euclidean) or 'cosine' (rows of z and codebook are l2-normalised inside).
    codebook_sqnorm: optional precomputed `|c_k|^2` `[K]` for 'l2' (computed when None).
    return_distance: also return the distance of each row to its chosen code.
    implementation: None (best available here, falling back to 'xla'), 'xla', 'triton', 'mosaic_gpu' (bfloat16
      only) or 'mosaic_tpu'.

  Returns:
    indices `[N]` int32, ties going to the lowest index like `jnp.argmin`; with `return_distance`, also distances
    `[N]` float32: the squared euclidean distance for 'l2', `1 - cos` for 'cosine', evaluated directly for the
    chosen code. No gradient flows through the lookup (quantizers use a straight-through estimator); the returned
    distance is differentiable with respect to z and codebook through the chosen code.
  """
  validate(z, codebook, distance, codebook_sqnorm)
  nearest_code = resolve(implementation, z.shape[1])
  return lookup_with(nearest_code, z, codebook, distance=distance, codebook_sqnorm=codebook_sqnorm,
                     return_distance=return_distance)
