"""Kernels under a mesh in context (`jax.set_mesh`, 8 simulated CPU devices): each device works on its own shard
(`jaxtok.kernels.sharding`), and results and gradients equal those without a mesh."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

import jaxtok.kernels as sa
from codebook_lookup_oracle import random_problem
from jaxtok.kernels import codebook_lookup


def _mesh():
  return jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto, AxisType.Auto))


@pytest.mark.parametrize("num_rows, expected_spec", [(64, P(("data", "model"))), (36, P("data")), (7, None)])
def test_lookup_rows_are_split_over_the_mesh(num_rows, expected_spec):
  z, codebook = random_problem(np.random.default_rng(num_rows), num_rows, 12, 100)
  expected = codebook_lookup(z, codebook, distance="cosine")
  with jax.set_mesh(_mesh()):
    indices, distances = jax.jit(lambda z, c: codebook_lookup(z, c, distance="cosine", return_distance=True))(
        z, codebook)
    shard_maps = str(jax.make_jaxpr(lambda z, c: codebook_lookup(z, c))(z, codebook)).count("shard_map")
  np.testing.assert_array_equal(indices, expected)
  assert distances.shape == (num_rows,)
  assert shard_maps == (expected_spec is not None)
  if expected_spec is not None:
    assert indices.sharding.spec == expected_spec


def _masks(q, k):
  rng = np.random.default_rng(3)
  return {
      "shared_causal": sa.CausalMask(q.shape[1], k.shape[1]),
      "per_head_host_array": rng.random((q.shape[2], q.shape[1], k.shape[1])) < 0.4,
      "per_batch_run_time": jnp.einsum("bqhd,bkhd->bhqk", q[:, :, :1], k[:, :, :1]) > 0,
      "token_selection": sa.token_selection_mask(q, k, num_selected=9, query_block=16, causal=True),
  }


@pytest.mark.parametrize("kind", ["shared_causal", "per_head_host_array", "per_batch_run_time", "token_selection"])
def test_attention_splits_batch_and_heads_and_matches(kind):
  """Batch 4 over 'data', the 2 kv heads over 'model' (host masks that differ per head keep heads whole)."""
  rng = np.random.default_rng(0)
  q = jnp.asarray(rng.normal(size=(4, 40, 4, 16)), jnp.float32)
  k, v = (jnp.asarray(rng.normal(size=(4, 40, 2, 16)), jnp.float32) for _ in range(2))

  def loss(q, k, v):
    return jnp.sum(sa.sparse_attention(q, k, v, _masks(q, k)[kind]) ** 2)

  expected = jax.value_and_grad(loss, argnums=(0, 1, 2))(q, k, v)
  with jax.set_mesh(_mesh()):
    got = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(q, k, v)
  for want, have in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
    np.testing.assert_allclose(np.asarray(have), np.asarray(want), rtol=2e-5, atol=2e-5)
