"""sharded_codebook_lookup on 8 simulated CPU devices: tokens over data axes, codebook replicated or split along K."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType

from codebook_lookup_oracle import check_lookup
from codebook_lookup_oracle import random_problem
from jaxtok.kernels.codebook_lookup import codebook_lookup
from jaxtok.kernels.codebook_lookup.sharded import sharded_codebook_lookup


def _mesh(axis_type=AxisType.Explicit):
  return jax.make_mesh((4, 2), ("data", "model"), axis_types=(axis_type, axis_type))


def _problem(seed: int, num_codes: int = 96, dim: int = 12):
  """Random problem whose codebook repeats one code in both halves, so the cross-shard tie-break matters."""
  z, codebook = random_problem(np.random.default_rng(seed), 64, dim, num_codes)
  codebook[num_codes // 2 + 5] = codebook[5]
  z[:8] = codebook[5] + 1e-3
  return z, codebook


@pytest.mark.parametrize("token_axes, codebook_axis", [
    (("data",), None), (("data", "model"), None), (("data",), "model"),
])
@pytest.mark.parametrize("distance", ["l2", "cosine"])
def test_matches_single_device(token_axes, codebook_axis, distance):
  z, codebook = _problem(seed=0)
  indices, distances = sharded_codebook_lookup(z, codebook, mesh=_mesh(), token_axes=token_axes,
                                               codebook_axis=codebook_axis, distance=distance, return_distance=True)
  check_lookup(z, codebook, indices, distances, distance=distance)
  np.testing.assert_array_equal(indices, codebook_lookup(z, codebook, distance=distance))
  np.testing.assert_array_equal(np.asarray(indices)[:8], 5)


def test_sharded_sqnorm_and_auto_mesh():
  z, codebook = _problem(seed=1)
  sqnorm = jnp.zeros(codebook.shape[0])  # zero norms: a maximum inner product search
  indices = sharded_codebook_lookup(z, codebook, mesh=_mesh(AxisType.Auto), codebook_axis="model",
                                    codebook_sqnorm=sqnorm)
  np.testing.assert_array_equal(indices, np.argmax(z @ codebook.T, axis=1))


@pytest.mark.parametrize("codebook_axis", [None, "model"])
def test_distance_gradients_match_single_device(codebook_axis):
  z, codebook = _problem(seed=2)
  mesh = _mesh()

  def sharded_total(z, codebook):
    return jnp.sum(sharded_codebook_lookup(z, codebook, mesh=mesh, codebook_axis=codebook_axis,
                                           return_distance=True)[1])

  def single_total(z, codebook):
    return jnp.sum(codebook_lookup(z, codebook, return_distance=True)[1])

  with jax.set_mesh(mesh):
    grads = jax.grad(sharded_total, argnums=(0, 1))(z, codebook)
  for grad, expected in zip(grads, jax.grad(single_total, argnums=(0, 1))(z, codebook)):
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_rows, num_codes, token_axes, codebook_axis, message", [
    (62, 96, ("data",), None, "N=62 must be divisible"),
    (64, 95, ("data",), "model", "K=95 must be divisible"),
    (64, 96, ("batch",), None, "not in the mesh"),
    (64, 96, ("data", "model"), "model", "must differ from token_axes"),
])
def test_bad_layouts_raise(num_rows, num_codes, token_axes, codebook_axis, message):
  with pytest.raises(ValueError, match=message):
    sharded_codebook_lookup(jnp.ones((num_rows, 4)), jnp.ones((num_codes, 4)), mesh=_mesh(), token_axes=token_axes,
                            codebook_axis=codebook_axis)
