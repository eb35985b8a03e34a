"""LFQ and BSQ: sign codes, bit order, entropy loss against brute force over all 2^d codes, packed indices."""
import itertools

import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.quantizers import BSQ
from jaxtok.quantizers import LFQ


def _brute_force_entropy_loss(z: np.ndarray, scale: float, temperature: float, gamma: float) -> float:
  """mean per-sample entropy - gamma * codebook entropy of softmax(-|z - c|^2 / T) over every code c."""
  codes = np.array(list(itertools.product([-scale, scale], repeat=z.shape[-1])))
  logits = -((z[:, None, :] - codes[None]) ** 2).sum(-1) / temperature
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  entropy = lambda p: -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)
  return float(np.mean(entropy(probs)) - gamma * entropy(probs.mean(0)))


@hypothesis.settings(max_examples=8, deadline=None)
@hypothesis.given(module=st.sampled_from([LFQ, BSQ]), leading=st.sampled_from([(7,), (2, 5)]),
                  dtype=st.sampled_from([jnp.float32, jnp.bfloat16]), seed=st.integers(0, 10**6))
def test_codes_are_signs_and_indices_read_the_first_channel_as_msb(module, leading, dtype, seed):
  dim = 6
  x = jnp.asarray(np.random.default_rng(seed).normal(size=leading + (dim,)), dtype)
  model = module(dim=dim)
  variables = model.init({}, x)
  out = model.apply(variables, x)
  scale = 1.0 if module is LFQ else 1 / np.sqrt(dim)
  expected_codes = np.where(np.asarray(x, np.float32) > 0, scale, -scale)
  np.testing.assert_allclose(np.asarray(out.quantized, np.float32), expected_codes, rtol=1e-2)
  bits = (np.asarray(x, np.float32) > 0).astype(int)
  np.testing.assert_array_equal(out.indices, np.sum(bits * 2 ** np.arange(dim - 1, -1, -1), axis=-1))
  np.testing.assert_allclose(model.apply(variables, out.indices, method="indices_to_codes"), expected_codes,
                             rtol=1e-6)
  np.testing.assert_array_equal(model.apply(variables, jnp.asarray(expected_codes), method="codes_to_indices"),
                                out.indices)


@pytest.mark.parametrize("module", [LFQ, BSQ])
def test_entropy_loss_equals_brute_force_over_all_codes(module):
  dim, temperature, gamma = 5, 0.7, 0.8
  z = np.random.default_rng(0).normal(size=(24, dim)) * 0.7
  model = module(dim=dim, commitment_cost=0.0, entropy_cost=1.0, entropy_temperature=temperature,
                 diversity_gamma=gamma)
  z32 = jnp.asarray(z, jnp.float32)
  out = model.apply(model.init({}, z32), z32)
  scale = 1.0 if module is LFQ else 1 / np.sqrt(dim)
  on_sphere = z / np.linalg.norm(z, axis=-1, keepdims=True) if module is BSQ else z
  expected = _brute_force_entropy_loss(on_sphere, scale, temperature, gamma)
  np.testing.assert_allclose(float(out.loss), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("module", [LFQ, BSQ])
def test_commitment_loss_matches_numpy(module):
  z = np.random.default_rng(1).normal(size=(10, 4))
  model = module(dim=4, commitment_cost=0.3, entropy_cost=0.0)
  z32 = jnp.asarray(z, jnp.float32)
  out = model.apply(model.init({}, z32), z32)
  u = z / np.linalg.norm(z, axis=-1, keepdims=True) if module is BSQ else z
  scale = 0.5 if module is BSQ else 1.0
  np.testing.assert_allclose(float(out.loss), 0.3 * np.mean((u - np.where(u > 0, scale, -scale)) ** 2), rtol=1e-5)


@pytest.mark.parametrize("module", [LFQ, BSQ])
def test_128_bit_codes_round_trip_through_packed_indices(module):
  x = jnp.asarray(np.random.default_rng(2).normal(size=(3, 4, 128)), jnp.float32)
  model = module(dim=128, packed_indices=True, entropy_group_bits=8)
  out = model.apply({}, x)
  assert model.codebook_size is None and model.bits_per_token == 128
  assert out.indices.shape == (3, 4, 4) and out.indices.dtype == jnp.uint32
  np.testing.assert_array_equal(model.apply({}, out.indices, method="indices_to_codes"), out.quantized)
  np.testing.assert_array_equal(model.apply({}, out.quantized, method="codes_to_indices"), out.indices)
  first_channel_only = jnp.zeros((1, 128)).at[0, 0].set(1.0) - jnp.zeros((1, 128)).at[0, 1:].set(1.0)
  np.testing.assert_array_equal(model.apply({}, first_channel_only).indices, [[2**31, 0, 0, 0]])
  assert np.isfinite(float(out.loss)) and float(out.metrics["perplexity"]) >= 1


@pytest.mark.parametrize("module", [LFQ, BSQ])
def test_entropy_stays_finite_with_bf16_inputs_and_2_to_18_codes(module):
  x = jnp.asarray(np.random.default_rng(3).normal(size=(2, 16, 18)) * 50, jnp.bfloat16)
  model = module(dim=18, entropy_group_bits=9)
  variables = model.init({}, x)
  out, _ = model.apply(variables, x, train=True, mutable=["quantizer"])
  for name in ("per_sample_entropy", "codebook_entropy"):
    value = float(out.metrics[name])
    assert np.isfinite(value) and value >= 0
  assert np.isfinite(float(out.loss)) and out.quantized.dtype == jnp.bfloat16
  grad = jax.grad(lambda v: model.apply(variables, v).loss)(x)
  assert np.all(np.isfinite(np.asarray(grad, np.float32)))


def test_projection_from_input_dim_and_bad_inputs():
  model = BSQ(dim=8, input_dim=16)
  x = jnp.asarray(np.random.default_rng(4).normal(size=(5, 16)), jnp.float32)
  variables = model.init({"params": jax.random.PRNGKey(0)}, x)
  out = model.apply(variables, x)
  assert out.quantized.shape == (5, 16)
  np.testing.assert_allclose(model.apply(variables, out.indices, method="indices_to_codes"), out.quantized,
                             rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match=r"expects input \[..., 16\], got shape \(5, 8\)"):
    model.apply(variables, x[:, :8])
  with pytest.raises(ValueError, match="needs packed indices .* at most 31 bits, got 32"):
    LFQ(dim=32).init({}, jnp.zeros((2, 32)))
  with pytest.raises(ValueError, match="floating-point input .* got dtype int8"):
    LFQ(dim=4).init({}, jnp.zeros((2, 4), jnp.int8))
