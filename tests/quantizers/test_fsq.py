"""FSQ against a float64 NumPy transcription of the paper's reference code."""
import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.quantizers import FSQ
from jaxtok.quantizers import fsq


def _reference_quantize(z: np.ndarray, levels) -> np.ndarray:
  """google-research/finite_scalar_quantization `FSQ.quantize`, in float64."""
  levels = np.asarray(levels, np.float64)
  half_l = (levels - 1) * (1 - 1e-3) / 2
  offset = np.where(levels % 2 == 1, 0.0, 0.5)
  shift = np.tan(offset / half_l)
  bounded = np.tanh(z + shift) * half_l - offset
  return np.round(bounded) / (levels // 2)


def _reference_indices(codes: np.ndarray, levels) -> np.ndarray:
  levels = np.asarray(levels)
  half_width = levels // 2
  basis = np.concatenate([[1], np.cumprod(levels[:-1])])
  return np.sum((codes * half_width + half_width) * basis, axis=-1).round().astype(np.int64)


LEVELS = st.lists(st.integers(2, 9), min_size=1, max_size=5)


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(levels=LEVELS, seed=st.integers(0, 10**6), scale=st.sampled_from([0.5, 3.0]))
def test_matches_reference_code_and_lies_on_the_grid(levels, seed, scale):
  z = np.random.default_rng(seed).normal(size=(6, len(levels))) * scale
  codes = np.asarray(fsq.fsq_quantize(jnp.asarray(z, jnp.float32), levels))
  expected = _reference_quantize(z, levels)
  # Rounding may legitimately differ where float32 and float64 straddle a half-integer.
  agree = np.isclose(codes, expected, atol=1e-6)
  assert agree.mean() > 0.97
  half_width = np.asarray(levels) // 2
  steps = codes * half_width
  assert np.allclose(steps, np.round(steps), atol=1e-5) and np.all(np.abs(codes) <= 1)
  indices = np.asarray(fsq.fsq_codes_to_indices(jnp.asarray(codes), levels))
  np.testing.assert_array_equal(indices[agree.all(-1)], _reference_indices(expected, levels)[agree.all(-1)])


@hypothesis.settings(max_examples=6, deadline=None)
@hypothesis.given(levels=LEVELS)
def test_every_index_round_trips_and_the_first_channel_is_least_significant(levels):
  size = int(np.prod(levels))
  codes = fsq.fsq_indices_to_codes(jnp.arange(size), levels)
  np.testing.assert_array_equal(np.asarray(fsq.fsq_codes_to_indices(codes, levels)), np.arange(size))
  digits = np.round(np.asarray(codes) * (np.asarray(levels) // 2) + np.asarray(levels) // 2).astype(int)
  np.testing.assert_array_equal(digits[:, 0], np.arange(size) % levels[0])


def test_module_round_trips_and_reports_usage():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 10, 4)) * 2, jnp.bfloat16)
  model = FSQ(levels=(8, 5, 5, 5))
  variables = model.init({}, x)
  out = model.apply(variables, x)
  assert model.codebook_size == 1000 and model.bits_per_token == pytest.approx(np.log2(1000))
  assert out.quantized.dtype == jnp.bfloat16 and out.indices.shape == (3, 10) and float(out.loss) == 0
  np.testing.assert_allclose(model.apply(variables, out.indices, method="indices_to_codes"),
                             np.asarray(out.quantized, np.float32), atol=1e-2)
  np.testing.assert_array_equal(model.apply(variables, model.apply(variables, out.indices, method="indices_to_codes"),
                                            method="codes_to_indices"), out.indices)
  assert float(out.metrics["codebook_usage"]) == pytest.approx(len(np.unique(np.asarray(out.indices))) / 1000)


def test_gradient_is_the_bound_derivative_over_half_width():
  levels = (8, 5, 4)
  z = np.random.default_rng(1).normal(size=(7, 3))
  grad = jax.grad(lambda v: jnp.sum(fsq.fsq_quantize(v, levels)))(jnp.asarray(z, jnp.float32))
  levels_f = np.asarray(levels, np.float64)
  half_l = (levels_f - 1) * (1 - 1e-3) / 2
  shift = np.tan(np.where(levels_f % 2 == 1, 0.0, 0.5) / half_l)
  expected = (1 - np.tanh(z + shift) ** 2) * half_l / (levels_f // 2)
  np.testing.assert_allclose(grad, expected, rtol=1e-5)


def test_atanh_shift_centres_the_bound_and_tan_does_not():
  levels = (2, 4, 8)
  centred = np.asarray(fsq.bound(jnp.zeros((3,)), levels, "atanh"))
  np.testing.assert_allclose(centred, 0.0, atol=1e-6)
  reference = np.asarray(fsq.bound(jnp.zeros((3,)), levels, "tan"))
  np.testing.assert_allclose(reference, [-0.04268, -4.285e-4, -1.403e-5], rtol=2e-2)
  codes = np.asarray(fsq.fsq_quantize(jnp.linspace(-6, 6, 101)[:, None] * jnp.ones((1, 3)), levels, "atanh"))
  for channel, level in enumerate(levels):
    assert len(np.unique(codes[:, channel])) == level


def test_bad_inputs_raise_value_errors():
  with pytest.raises(ValueError, match=r"ints >= 2, got \(8, 1\)"):
    FSQ(levels=(8, 1)).init({}, jnp.zeros((2, 2)))
  with pytest.raises(ValueError, match=r"expects input \[..., 3\], got shape \(2, 4\)"):
    FSQ(levels=(8, 5, 5)).init({}, jnp.zeros((2, 4)))
  with pytest.raises(ValueError, match="bound_shift must be one of"):
    FSQ(levels=(8, 5), bound_shift="atan").init({}, jnp.zeros((2, 2)))
  with pytest.raises(ValueError, match="<= 2\\^31"):
    FSQ(levels=(2**16, 2**16)).init({}, jnp.zeros((2, 2)))
