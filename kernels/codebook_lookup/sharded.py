"""`codebook_lookup` inside a device mesh: tokens sharded over data axes, the codebook replicated or split along K.

With a codebook axis, every device finds the best code of its own codebook shard for its own tokens; the shards'
(score, index) pairs are all-gathered along that axis and the lowest score wins, the lowest shard (hence the lowest
global index) on ties, so ties resolve exactly as in the single-device lookup.
"""
import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
from jax.sharding import AxisType
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxtok.kernels.codebook_lookup import api
from jaxtok.kernels.codebook_lookup import metric


def _axes_size(mesh: Mesh, axes: Sequence[str]) -> int:
  return math.prod(mesh.shape[axis] for axis in axes)


def _validate_mesh(z, codebook, mesh: Mesh, token_axes: tuple[str, ...], codebook_axis: str | None) -> None:
  named = token_axes + ((codebook_axis,) if codebook_axis else ())
  unknown = [axis for axis in named if axis not in mesh.shape]
  if unknown:
    raise ValueError(f"mesh axes {unknown} not in the mesh's axes {tuple(mesh.shape)}")
  if codebook_axis in token_axes:
    raise ValueError(f"codebook_axis {codebook_axis!r} must differ from token_axes {token_axes}")
  token_shards = _axes_size(mesh, token_axes)
  if z.shape[0] % token_shards:
    raise ValueError(f"N={z.shape[0]} must be divisible by the {token_shards} shards of token_axes {token_axes}")
  code_shards = mesh.shape[codebook_axis] if codebook_axis else 1
  if codebook.shape[0] % code_shards:
    raise ValueError(f"K={codebook.shape[0]} must be divisible by the {code_shards} shards of {codebook_axis!r}")


def _placer(mesh: Mesh, axes: tuple[str, ...]):
  """Puts an array at a PartitionSpec: `reshard` on Explicit mesh axes, a sharding constraint on Auto ones."""
  kinds = {mesh.axis_types[mesh.axis_names.index(axis)] for axis in axes}
  if kinds == {AxisType.Explicit}:
    return lambda x, spec: jax.reshard(x, NamedSharding(mesh, spec))
  if kinds == {AxisType.Auto}:
    return lambda x, spec: jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))
  raise ValueError(f"mesh axes {axes} must be all Explicit or all Auto, got {sorted(map(str, kinds))}")


def _local_lookup(z, codebook, codebook_sqnorm, *, nearest_code, distance, codebook_axis, return_distance):
  """Per-device lookup on z `[n, D]` and a codebook shard `[k, D]`; indices are global code indices."""
  inputs = metric.kernel_inputs(*jax.lax.stop_gradient((z, codebook)), distance,
                                jax.lax.stop_gradient(codebook_sqnorm))
  indices, scores = nearest_code(*inputs)
  distances = metric.code_distance(z, codebook[indices], distance) if return_distance else None
  if codebook_axis is not None:
    indices = indices + jax.lax.axis_index(codebook_axis).astype(jnp.int32) * codebook.shape[0]
    gathered = lambda x: jax.lax.all_gather(x, codebook_axis)
    part = jnp.argmin(gathered(scores), axis=0)
    pick = lambda x: jnp.take_along_axis(gathered(x), part[None, :], axis=0)[0]
    indices = pick(indices)
    distances = pick(distances) if return_distance else None
  return (indices, distances) if return_distance else indices


def sharded_codebook_lookup(z: jax.Array, codebook: jax.Array, *, mesh: Mesh, token_axes: Sequence[str] = ("data",),
                            codebook_axis: str | None = None, distance: metric.Distance = "l2",
                            codebook_sqnorm: jax.Array | None = None, return_distance: bool = False,
                            implementation: str | None = None):
  """`codebook_lookup` under `shard_map`: same arguments and results, plus the mesh layout.

  Args:
    z: `[N, D]`, N divisible by the product of the `token_axes` sizes; sharded over those axes.
    codebook: `[K, D]`; replicated when `codebook_axis` is None, otherwise split along K over that axis (K divisible
      by its size) and the per-shard minima are reduced across it.
    mesh: the device mesh.
    token_axes: mesh axes the tokens are sharded over.
    codebook_axis: mesh axis the codebook is split over, or None for a replicated codebook.
    distance, codebook_sqnorm, return_distance, implementation: as in `codebook_lookup` (sqnorm sharded like K).

  Returns:
    indices `[N]` int32 (global code indices), and distances `[N]` float32 when `return_distance`, sharded like z.
  """
  return _sharded_lookup(z, codebook, codebook_sqnorm, mesh=mesh, token_axes=tuple(token_axes),
                         codebook_axis=codebook_axis, distance=distance, return_distance=return_distance,
                         implementation=implementation)


@functools.partial(jax.jit, static_argnames=("mesh", "token_axes", "codebook_axis", "distance", "return_distance",
                                             "implementation"))
def _sharded_lookup(z, codebook, codebook_sqnorm, *, mesh, token_axes, codebook_axis, distance, return_distance,
                    implementation):
  api.validate(z, codebook, distance, codebook_sqnorm)
  _validate_mesh(z, codebook, mesh, token_axes, codebook_axis)
  dtype = jnp.promote_types(z.dtype, codebook.dtype)
  local = functools.partial(_local_lookup, nearest_code=api.resolve(implementation, z.shape[1], dtype),
                            distance=distance, codebook_axis=codebook_axis, return_distance=return_distance)
  row_spec = P(token_axes)
  in_specs = (P(token_axes, None), P(codebook_axis, None), None if codebook_sqnorm is None else P(codebook_axis))
  place = _placer(mesh, token_axes + ((codebook_axis,) if codebook_axis else ()))
  inputs = [x if spec is None else place(x, spec)
            for x, spec in zip((z.astype(dtype), codebook.astype(dtype), codebook_sqnorm), in_specs)]
  mapped = jax.shard_map(local, mesh=mesh, in_specs=in_specs, check_vma=False,
                         out_specs=(row_spec, row_spec) if return_distance else row_spec)
  return mapped(*inputs)
