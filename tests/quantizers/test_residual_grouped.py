"""ResidualVQ and GroupedVQ against greedy / per-group NumPy nearest-code oracles."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.quantizers import GroupedVQ
from jaxtok.quantizers import ResidualVQ

KEYS = {"params": jax.random.PRNGKey(0), "quantizer": jax.random.PRNGKey(1)}
X = np.random.default_rng(0).normal(size=(4, 6, 8)).astype(np.float32)


def _nearest(z: np.ndarray, codebook: np.ndarray) -> np.ndarray:
  return np.argmin(((z[:, None, :] - codebook[None]) ** 2).sum(-1), axis=1)


def test_residual_stages_quantize_what_the_previous_left():
  model = ResidualVQ(codebook_size=16, num_stages=3)
  variables = nn.unbox(model.init(KEYS, X))
  out = model.apply(variables, X)
  assert out.indices.shape == (4, 6, 3) and model.bits_per_token == 12
  residual = X.reshape(-1, 8).astype(np.float64)
  for stage in range(3):
    codebook = np.asarray(variables["params"][f"stage_{stage}"]["codebook"], np.float64)
    indices = _nearest(residual, codebook)
    np.testing.assert_array_equal(np.asarray(out.indices)[..., stage].reshape(-1), indices)
    residual = residual - codebook[indices]
  np.testing.assert_allclose(np.asarray(out.quantized).reshape(-1, 8), X.reshape(-1, 8) - residual, atol=1e-5)
  np.testing.assert_allclose(model.apply(variables, out.indices, method="indices_to_codes"), out.quantized,
                             atol=1e-5)
  np.testing.assert_array_equal(model.apply(variables, X, method="codes_to_indices"), out.indices)


def test_residual_gradient_is_identity():
  model = ResidualVQ(codebook_size=16, num_stages=3)
  variables = nn.unbox(model.init(KEYS, X))
  cotangent = np.random.default_rng(1).normal(size=X.shape).astype(np.float32)
  grad = jax.grad(lambda v: jnp.sum(model.apply(variables, v).quantized * cotangent))(jnp.asarray(X))
  np.testing.assert_allclose(grad, cotangent, atol=1e-6)


def test_quantizer_dropout_keeps_a_prefix_of_stages_per_example():
  model = ResidualVQ(codebook_size=16, num_stages=4, quantizer_dropout_rate=1.0)
  variables = nn.unbox(model.init(KEYS, X))
  out, _ = model.apply(variables, X, train=True, mutable=["quantizer"], rngs={"quantizer": jax.random.PRNGKey(3)})
  stage_codes = [model.apply(variables, out.indices[..., : n + 1], method=lambda m, i: sum(
      s.indices_to_codes(i[..., k]) for k, s in enumerate(m.stages[: i.shape[-1]]))) for n in range(4)]
  kept = []
  for example in range(X.shape[0]):
    matches = [n + 1 for n in range(4) if np.allclose(out.quantized[example], stage_codes[n][example], atol=1e-5)]
    assert matches, f"example {example} is not a prefix sum of its stage codes"
    kept.append(matches[0])
  assert float(out.metrics["active_stages"]) == pytest.approx(np.mean(kept))
  full = model.apply(variables, X)
  assert float(full.metrics["active_stages"]) == 4


def test_shared_codebook_has_one_codebook():
  model = ResidualVQ(codebook_size=8, num_stages=3, shared_codebook=True)
  variables = nn.unbox(model.init(KEYS, X))
  assert list(variables["params"]) == ["shared_stage"]
  out = model.apply(variables, X)
  np.testing.assert_allclose(model.apply(variables, out.indices, method="indices_to_codes"), out.quantized,
                             atol=1e-5)


def test_grouped_quantizes_each_channel_group_with_its_own_codebook():
  model = GroupedVQ(codebook_size=8, num_groups=4)
  variables = nn.unbox(model.init(KEYS, X))
  out = model.apply(variables, X)
  assert out.indices.shape == (4, 6, 4) and model.bits_per_token == 12
  for group in range(4):
    codebook = np.asarray(variables["params"][f"group_{group}"]["codebook"], np.float64)
    part = X.reshape(-1, 8)[:, 2 * group: 2 * group + 2].astype(np.float64)
    np.testing.assert_array_equal(np.asarray(out.indices)[..., group].reshape(-1), _nearest(part, codebook))
  np.testing.assert_allclose(model.apply(variables, out.indices, method="indices_to_codes"), out.quantized,
                             atol=1e-6)
  np.testing.assert_array_equal(model.apply(variables, out.quantized, method="codes_to_indices"), out.indices)


def test_bad_shapes_raise_value_errors():
  with pytest.raises(ValueError, match=r"divisible by num_groups=3, got shape \(4, 6, 8\)"):
    GroupedVQ(codebook_size=8, num_groups=3).init(KEYS, X)
  model = ResidualVQ(codebook_size=8, num_stages=2)
  variables = nn.unbox(model.init(KEYS, X))
  with pytest.raises(ValueError, match=r"indices \[..., 2\], got shape \(4, 3\)"):
    model.apply(variables, jnp.zeros((4, 3), jnp.int32), method="indices_to_codes")
