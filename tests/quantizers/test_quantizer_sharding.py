"""Codebook statistics are global: 1 device and a batch sharded over 8 simulated CPU devices give equal codebooks.

The mesh uses Auto axes: jit partitions the model by GSPMD, and the quantizers' plain reductions become global.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxtok.quantizers import VectorQuantizer


def _run(model, variables, batches, place_batch, place_variables):
  step = jax.jit(lambda v, x, key: model.apply(v, x, train=True, mutable=["quantizer"], rngs={"quantizer": key}))
  variables, outputs = place_variables(variables), []
  for i, batch in enumerate(batches):
    out, state = step(variables, place_batch(batch), jax.random.PRNGKey(i))
    variables = {**variables, **state}
    outputs.append(out)
  return jax.device_get(variables), jax.device_get(outputs)


@pytest.mark.parametrize("use_ema", [False, True])
def test_one_and_eight_devices_give_the_same_codebooks(use_ema):
  assert jax.device_count() == 8, "tests/conftest.py should simulate 8 CPU devices"
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(6, 4)) * 5
  # The first batch seeds k-means over 6 clusters; the later ones hold 2 of them, leaving codes to restart.
  batches = [jnp.asarray(centres[rng.integers(0, clusters, (16, 8))] + rng.normal(size=(16, 8, 4)), jnp.float32)
             for clusters in (6, 2, 2)]
  model = VectorQuantizer(codebook_size=16, use_ema=use_ema, kmeans_init=True, kmeans_iterations=3,
                          dead_code_window=1)
  variables = nn.unbox(model.init({"params": jax.random.PRNGKey(0)}, batches[0]))
  one_device = jax.devices()[0]
  single = _run(model, variables, batches, lambda x: jax.device_put(x, one_device),
                lambda v: jax.device_put(v, one_device))
  mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
  sharded = _run(model, variables, batches, lambda x: jax.device_put(x, NamedSharding(mesh, P("data"))),
                 lambda v: jax.device_put(v, NamedSharding(mesh, P())))
  (single_vars, single_out), (sharded_vars, sharded_out) = single, sharded
  for a, b in zip(single_out, sharded_out):
    np.testing.assert_array_equal(a.indices, b.indices)
    assert float(a.metrics["restarted_codes"]) == float(b.metrics["restarted_codes"])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), single_vars["quantizer"],
               sharded_vars["quantizer"])
  assert float(sum(out.metrics["restarted_codes"] for out in single_out)) > 0
