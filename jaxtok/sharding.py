"""Device meshes, logical-axis rules and the shardings of the train state and batches.

Models name the axes of their parameters and key activations logically ("embed", "mlp", "heads", "codebook", ...,
via `nn.with_logical_partitioning` / `nn.with_logical_constraint`); a config's `mesh` section picks how those names
map onto the mesh axes `data`, `fsdp` and `tensor`. Batches are split over `data` x `fsdp`. A logical axis whose
size does not divide evenly over its mesh axes is replicated instead, so any model runs on any mesh.
"""
from typing import Any, Sequence

import flax.linen as nn
import jax
from jax.experimental import mesh_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec
import numpy as np

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

# Logical axis -> mesh axis (None = replicated). Names not listed are replicated.
RULE_PRESETS = {
    "data_parallel": (("batch", BATCH_AXES),),
    "fsdp": (("batch", BATCH_AXES), ("embed", "fsdp"), ("conv_out", "fsdp")),
    "fsdp_tensor": (("batch", BATCH_AXES), ("embed", "fsdp"), ("conv_out", "fsdp"), ("mlp", "tensor"),
                    ("heads", "tensor"), ("vocab", "tensor"), ("conv_in", "tensor")),
}


def resolve_axis_sizes(sizes: Sequence[int], num_devices: int) -> tuple[int, ...]:
  """Replaces at most one -1 in `sizes` by what makes their product `num_devices`."""
  sizes = tuple(int(s) for s in sizes)
  if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
    raise ValueError(f"Mesh axis sizes must be positive, with at most one -1 (= the rest); got {sizes}.")
  known = int(np.prod([s for s in sizes if s != -1]))
  if -1 in sizes:
    if num_devices % known:
      raise ValueError(f"{num_devices} devices do not split into mesh axes {sizes}.")
    sizes = tuple(num_devices // known if s == -1 else s for s in sizes)
  if int(np.prod(sizes)) != num_devices:
    raise ValueError(f"Mesh axes {dict(zip(MESH_AXES, sizes))} need {int(np.prod(sizes))} devices, "
                     f"but {num_devices} are in use.")
  return sizes


def make_mesh(ici_sizes: Sequence[int], dcn_sizes: Sequence[int] = (1, 1, 1),
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A mesh with axes (data, fsdp, tensor) and Auto (GSPMD) axis types.

  Args:
    ici_sizes: axis sizes within a slice; one may be -1 (= the rest of a slice's devices).
    dcn_sizes: axis sizes across slices (multi-slice TPU over the data-centre network); all 1 otherwise.
    devices: devices to use (default: all of them, across hosts).
  """
  devices = list(devices if devices is not None else jax.devices())
  dcn_sizes = tuple(int(s) for s in dcn_sizes)
  if len(ici_sizes) != len(MESH_AXES) or len(dcn_sizes) != len(MESH_AXES) or min(dcn_sizes) < 1:
    raise ValueError(f"Expected {len(MESH_AXES)} ici sizes and {len(MESH_AXES)} positive dcn sizes for the axes "
                     f"{MESH_AXES}, got {tuple(ici_sizes)} and {dcn_sizes}.")
  num_slices = int(np.prod(dcn_sizes))
  ici_sizes = resolve_axis_sizes(ici_sizes, len(devices) // num_slices)
  if num_slices > 1:
    grid = mesh_utils.create_hybrid_device_mesh(ici_sizes, dcn_sizes, devices)
  elif devices[0].platform in ("tpu", "gpu"):
    grid = mesh_utils.create_device_mesh(ici_sizes, devices)
  else:
    grid = np.asarray(devices).reshape(ici_sizes)
  return Mesh(grid, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


def logical_rules(preset: str, extra_rules: Sequence[Sequence[Any]] = ()) -> tuple[tuple[str, Any], ...]:
  """The rules of `preset` (a RULE_PRESETS name), with `extra_rules` (logical, mesh axes) taking precedence."""
  if preset not in RULE_PRESETS:
    raise ValueError(f"Unknown sharding rules preset {preset!r}; expected one of {', '.join(RULE_PRESETS)}.")
  extra = tuple((str(name), _mesh_axes(axes)) for name, axes in extra_rules)
  for _, axes in extra:
    for axis in (axes if isinstance(axes, tuple) else (axes,)):
      if axis is not None and axis not in MESH_AXES:
        raise ValueError(f"Unknown mesh axis {axis!r} in extra sharding rules; mesh axes are {MESH_AXES}.")
  overridden = {name for name, _ in extra}
  return extra + tuple(rule for rule in RULE_PRESETS[preset] if rule[0] not in overridden)


def _mesh_axes(axes: Any) -> Any:
  if axes in (None, "", "none", "None"):
    return None
  return tuple(axes) if isinstance(axes, (list, tuple)) else str(axes)


def _divisible_spec(spec: PartitionSpec, shape: Sequence[int], mesh: Mesh) -> PartitionSpec:
  """`spec` with every axis whose size does not divide over its mesh axes replaced by None (replicated)."""
  entries = []
  for size, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    names = axes if isinstance(axes, tuple) else (axes,) if axes else ()
    ways = int(np.prod([mesh.shape[name] for name in names])) if names else 1
    entries.append(axes if size % ways == 0 else None)
  return PartitionSpec(*entries)


def tree_shardings(boxed_tree: Any, mesh: Mesh, rules: Sequence[tuple[str, Any]]) -> Any:
  """NamedShardings for every leaf of a tree whose leaves may be `nn.Partitioned` boxes (unannotated = replicated).

  Args:
    boxed_tree: e.g. `jax.eval_shape` of an init function, keeping flax's logical-partitioning boxes.
  """
  logical_specs = nn.get_partition_spec(boxed_tree)
  mesh_specs = nn.logical_to_mesh(logical_specs, rules)
  shapes = nn.unbox(boxed_tree)
  return jax.tree.map(lambda spec, leaf: NamedSharding(mesh, _divisible_spec(spec, leaf.shape, mesh)),
                      mesh_specs, shapes, is_leaf=lambda x: isinstance(x, PartitionSpec))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over data x fsdp, the rest replicated."""
  return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def global_batch(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles each host's slice `[global_batch / num_hosts, ...]` into global arrays sharded over the batch axes."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)
