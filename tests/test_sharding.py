"""jaxtok.sharding: mesh sizes, rules, and the replicate-when-indivisible fallback."""
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec
import pytest

from jaxtok import sharding


@pytest.mark.parametrize("sizes, devices, want", [((-1, 1, 1), 8, (8, 1, 1)), ((2, -1, 2), 8, (2, 2, 2)),
                                                  ((1, 1, 1), 1, (1, 1, 1))])
def test_resolve_axis_sizes(sizes, devices, want):
  assert sharding.resolve_axis_sizes(sizes, devices) == want


@pytest.mark.parametrize("sizes, match", [((-1, -1, 1), "at most one -1"), ((3, -1, 1), "do not split"),
                                          ((2, 2, 1), "need 4 devices"), ((0, 1, 1), "positive")])
def test_bad_axis_sizes_are_explained(sizes, match):
  with pytest.raises(ValueError, match=match):
    sharding.resolve_axis_sizes(sizes, 8)


def test_make_mesh_names_axes_and_uses_every_device():
  mesh = sharding.make_mesh((2, -1, 2))
  assert dict(mesh.shape) == {"data": 2, "fsdp": 2, "tensor": 2}
  assert mesh.devices.size == jax.device_count() == 8
  with pytest.raises(ValueError, match="3 ici sizes"):
    sharding.make_mesh((8, 1))


def test_rules_presets_and_overrides():
  rules = dict(sharding.logical_rules("fsdp", [("codebook", "tensor"), ("embed", None)]))
  assert rules["codebook"] == "tensor" and rules["embed"] is None and rules["batch"] == ("data", "fsdp")
  with pytest.raises(ValueError, match="expected one of"):
    sharding.logical_rules("zero3")
  with pytest.raises(ValueError, match="Unknown mesh axis 'model'"):
    sharding.logical_rules("fsdp", [("mlp", "model")])


def test_indivisible_axes_are_replicated():
  mesh = sharding.make_mesh((1, 4, 2))

  class Layer(nn.Module):
    @nn.compact
    def __call__(self, x):
      kernel_init = nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("embed", "mlp"))
      return nn.Dense(6, kernel_init=kernel_init)(x)

  abstract = jax.eval_shape(lambda: Layer().init(jax.random.key(0), jnp.zeros((1, 10))))
  shardings = sharding.tree_shardings(abstract, mesh, sharding.logical_rules("fsdp_tensor"))
  # embed = 10 does not divide over fsdp = 4: replicated; mlp = 6 divides over tensor = 2.
  assert shardings["params"]["Dense_0"]["kernel"].spec == PartitionSpec(None, "tensor")
  assert shardings["params"]["Dense_0"]["bias"].spec == PartitionSpec(None)
