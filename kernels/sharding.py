"""Kernels inside a device mesh: each device runs the kernel on its own shard.

XLA cannot partition a Pallas call: under a mesh (`jax.set_mesh`) with automatic (GSPMD) axes it would gather the
operands onto every device and repeat the whole kernel there. The kernels' APIs instead wrap the call in
`jax.shard_map` over the mesh in context, splitting independent axes (rows of a lookup, batch and heads of
attention) over as many of its automatic axes as divide them. Outside a mesh, inside `shard_map` (manual axes) or on
explicit axes (whose shardings the caller already states) the call runs as it is.
"""
import math
from typing import Sequence

import jax
from jax.sharding import AxisType


def free_axes() -> tuple[str, ...]:
  """The automatic axes of size > 1 of the mesh in context, in mesh order (none outside a mesh)."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return ()
  return tuple(name for name, kind in zip(mesh.axis_names, mesh.axis_types)
               if kind == AxisType.Auto and mesh.shape[name] > 1)


def dividing_axes(size: int, axes: Sequence[str]) -> tuple[str, ...]:
  """The longest prefix of `axes` (of the mesh in context) whose sizes multiply to a divisor of `size`."""
  mesh_shape = jax.sharding.get_abstract_mesh().shape
  chosen = []
  for axis in axes:
    if size % (math.prod(mesh_shape[name] for name in chosen) * mesh_shape[axis]):
      break
    chosen.append(axis)
  return tuple(chosen)
