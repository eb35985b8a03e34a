"""`codebook_lookup`: nearest code per row without materialising the `[N, K]` distance matrix.

`implementation=None` stages, for the platform the program is lowered for, the fastest kernel that runs there
(cuda: Pallas Triton; tpu: Pallas Mosaic TPU) with the chunked XLA reference (`'xla'`, also the CPU path) as the
fallback (`jaxtok.kernels.op`). 'mosaic_gpu' (Hopper, bfloat16) is available on request. An explicit implementation
that cannot run raises `NotImplementedError` saying why.
"""
import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from jaxtok.kernels import op
from jaxtok.kernels import sharding
from jaxtok.kernels.codebook_lookup import metric
from jaxtok.kernels.codebook_lookup import mosaic_gpu
from jaxtok.kernels.codebook_lookup import mosaic_tpu
from jaxtok.kernels.codebook_lookup import reference
from jaxtok.kernels.codebook_lookup import triton

NearestCode = Callable[[jax.Array, jax.Array, jax.Array | None], tuple[jax.Array, jax.Array]]

_SUPPORTED_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16))

# 'mosaic_gpu' stays opt-in until it has been measured against 'triton' on a GPU.
LOOKUP = op.Op("codebook_lookup", reference.nearest_code,
               backends=(triton.BACKEND, mosaic_gpu.BACKEND, mosaic_tpu.BACKEND),
               preferred={"cuda": ("triton",), "tpu": ("mosaic_tpu",)})
IMPLEMENTATIONS = LOOKUP.implementations


def unavailable_reason(implementation: str, platform: str, dim: int, dtype=jnp.float32) -> str | None:
  """Why `implementation` cannot run when lowering for `platform` ('cpu', 'cuda', 'tpu') for `dtype` vectors of
  size `dim`, or None when it can."""
  return LOOKUP.unavailable_reason(implementation, platform, dim=dim, dtype=jnp.dtype(dtype))


def resolve(implementation: str | None, dim: int, dtype=jnp.float32,
            block_sizes: op.BlockSizes | None = None) -> NearestCode:
  """The `nearest_code(z, codebook, sqnorm)` that `implementation` means (see `jaxtok.kernels.op.Op.resolve`)."""
  return LOOKUP.resolve(implementation, block_sizes, dim=dim, dtype=jnp.dtype(dtype))


def per_device(nearest_code: NearestCode, num_rows: int) -> NearestCode:
  """`nearest_code` on each device's rows under the mesh in context (`jaxtok.kernels.sharding`), the codebook
  replicated; unchanged outside a mesh."""
  axes = sharding.dividing_axes(num_rows, sharding.free_axes())
  if not axes:
    return nearest_code

  def sharded(z, codebook, codebook_sqnorm):
    rows = P(axes)
    return jax.shard_map(nearest_code, in_specs=(P(axes, None), P(), None if codebook_sqnorm is None else P()),
                         out_specs=(rows, rows), check_vma=False)(z, codebook, codebook_sqnorm)

  return sharded


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


@functools.partial(jax.jit, static_argnames=("distance", "return_distance", "implementation", "block_sizes"))
def codebook_lookup(z: jax.Array, codebook: jax.Array, *, distance: metric.Distance = "l2",
                    codebook_sqnorm: jax.Array | None = None, return_distance: bool = False,
                    implementation: str | None = None, block_sizes: op.BlockSizes | None = None):
  """Index of the nearest code for every row of z, streaming the codebook through on-chip memory.

  Under a mesh with automatic axes (`jax.set_mesh`) each device looks up its own rows against a replicated codebook
  (`sharded_codebook_lookup` also splits the codebook).

  Args:
    z: `[N, D]` float32 or bfloat16 vectors (flatten any leading axes first).
    codebook: `[K, D]` float32 or bfloat16 codes; any K >= 1, not necessarily a power of two.
    distance: 'l2' (squared euclidean) or 'cosine' (rows of z and codebook are l2-normalised inside).
    codebook_sqnorm: optional precomputed `|c_k|^2` `[K]` for 'l2' (computed when None).
    return_distance: also return the distance of each row to its chosen code.
    implementation: None (the best kernel for the platform lowered for, falling back to 'xla'), 'xla', 'triton',
      'mosaic_gpu' (bfloat16 only) or 'mosaic_tpu'.
    block_sizes: with an explicit kernel implementation, its `BlockSizes` (e.g. `triton.BlockSizes(block_rows=64)`);
      None picks the backend's defaults for the shape.

  Returns:
    indices `[N]` int32, ties going to the lowest index like `jnp.argmin`; with `return_distance`, also distances
    `[N]` float32: the squared euclidean distance for 'l2', `1 - cos` for 'cosine', evaluated directly for the
    chosen code. No gradient flows through the lookup (quantizers use a straight-through estimator); the returned
    distance is differentiable with respect to z and codebook through the chosen code.
  """
  validate(z, codebook, distance, codebook_sqnorm)
  nearest_code = resolve(implementation, z.shape[1], jnp.promote_types(z.dtype, codebook.dtype), block_sizes)
  nearest_code = per_device(nearest_code, z.shape[0])
  return lookup_with(nearest_code, z, codebook, distance=distance, codebook_sqnorm=codebook_sqnorm,
                     return_distance=return_distance)
