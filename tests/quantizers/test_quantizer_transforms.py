"""Every quantizer under jit, vmap and grad, and built by name from a config (the switch tokenizers use)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok import quantizers

CONFIGS = {
    "vq": {"name": "vq", "codebook_size": 16, "use_ema": True, "kmeans_init": True, "dead_code_window": 2},
    "vq_rotation": {"name": "vq", "codebook_size": 16, "codebook_dim": 4, "estimator": "rotation",
                    "entropy_cost": 0.1},
    "residual_vq": {"name": "residual_vq", "codebook_size": 16, "num_stages": 2, "quantizer_dropout_rate": 0.5},
    "grouped_vq": {"name": "grouped_vq", "codebook_size": 16, "num_groups": 2, "dead_code_window": 1},
    "fsq": {"name": "fsq", "levels": [8, 5, 5], "input_dim": 8},
    "lfq": {"name": "lfq", "dim": 8},
    "bsq": {"name": "bsq", "dim": 40, "input_dim": 8, "packed_indices": True, "entropy_group_bits": 8},
}
X = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4, 8)), jnp.float32)
RNGS = {"params": jax.random.PRNGKey(0), "quantizer": jax.random.PRNGKey(1)}


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_jit_vmap_and_grad(config_name):
  model = quantizers.make_quantizer(CONFIGS[config_name])
  variables = nn.unbox(model.init(RNGS, X))

  @jax.jit
  def train_step(variables, x, key):
    def loss_fn(params, x):
      out, state = model.apply({**variables, "params": params}, x, train=True, mutable=["quantizer"],
                               rngs={"quantizer": key})
      return out.loss + jnp.sum(out.quantized**2), (out, state)
    grads, (out, state) = jax.grad(loss_fn, argnums=(0, 1), has_aux=True)(variables.get("params", {}), x)
    return grads, out, state

  (param_grads, input_grads), out, state = train_step(variables, X, jax.random.PRNGKey(2))
  assert out.quantized.shape == X.shape and np.all(np.isfinite(input_grads))
  assert float(jnp.max(jnp.abs(input_grads))) > 0
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(param_grads))
  assert jax.tree.structure(state.get("quantizer")) == jax.tree.structure(variables.get("quantizer"))
  variables = {**variables, **state}

  eval_apply = lambda x: model.apply(variables, x)
  per_slice = jax.vmap(eval_apply)(X[:, None])
  whole = jax.jit(eval_apply)(X)
  np.testing.assert_array_equal(per_slice.indices[:, 0], whole.indices)
  np.testing.assert_allclose(per_slice.quantized[:, 0], whole.quantized, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(model.apply(variables, whole.indices, method="indices_to_codes"), whole.quantized,
                             rtol=1e-5, atol=1e-5)


def test_every_registered_quantizer_reports_its_size_and_bits():
  expected = {"vq": (16, 4), "residual_vq": (16, 8), "grouped_vq": (16, 8), "fsq": (200, np.log2(200)),
              "lfq": (256, 8), "bsq": (None, 40)}
  for name, (size, bits) in expected.items():
    model = quantizers.make_quantizer(CONFIGS[name])
    assert model.codebook_size == size and model.bits_per_token == pytest.approx(bits)
  assert set(expected) == set(quantizers.QUANTIZERS)
