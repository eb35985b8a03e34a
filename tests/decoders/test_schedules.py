"""Mask schedules: their ends, monotonicity, and the sampler's per-step masked counts."""
import math

import hypothesis
import hypothesis.strategies as st
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.decoders import schedules


@pytest.mark.parametrize("name", schedules.SCHEDULES)
def test_all_masked_at_start_none_at_end(name):
  assert float(schedules.mask_ratio(0.0, name)) == 1.0
  assert float(schedules.mask_ratio(1.0, name)) == 0.0


@pytest.mark.parametrize("name", schedules.SCHEDULES)
def test_ratio_is_non_increasing_and_in_unit_interval(name):
  ratios = np.asarray(schedules.mask_ratio(jnp.linspace(0.0, 1.0, 1001), name))
  assert np.all(np.diff(ratios) <= 0) and ratios.min() >= 0 and ratios.max() <= 1


def test_known_values():
  t = jnp.array([0.25, 0.5])
  np.testing.assert_allclose(schedules.mask_ratio(t, "cosine"), np.cos(np.pi / 2 * np.array([0.25, 0.5])), rtol=1e-6)
  np.testing.assert_allclose(schedules.mask_ratio(t, "linear"), [0.75, 0.5])
  np.testing.assert_allclose(schedules.mask_ratio(t, "square"), [0.9375, 0.75])
  np.testing.assert_allclose(schedules.mask_ratio(t, "sqrt"), [0.5, 1 - np.sqrt(0.5)], rtol=1e-6)
  # MaskGIT's 8-step cosine schedule over 64 tokens: floor(64 cos(pi/2 (s+1)/8)).
  np.testing.assert_array_equal(schedules.masked_counts(8, 64, "cosine"), [62, 59, 53, 45, 35, 24, 12, 0])


@hypothesis.settings(deadline=None, max_examples=200)
@hypothesis.given(num_tokens=st.integers(1, 300), data=st.data(), name=st.sampled_from(schedules.SCHEDULES))
def test_counts_fix_at_least_one_per_step_and_follow_schedule(num_tokens, data, name):
  num_steps = data.draw(st.integers(1, min(num_tokens, 40)))
  counts = schedules.masked_counts(num_steps, num_tokens, name)
  previous = np.concatenate([[num_tokens], counts[:-1]])
  assert counts[-1] == 0 and np.all(counts >= 0) and np.all(counts <= previous - 1)
  for step, count in enumerate(counts):
    scheduled = math.floor(num_tokens * schedules._mask_ratio_float((step + 1) / num_steps, name))
    # The schedule's count unless that would fix no token this step or leave none for a later step.
    assert count == min(max(scheduled, num_steps - 1 - step), previous[step] - 1)
    assert schedules.num_masked_after_step(step, num_steps, num_tokens, name) == count


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match="schedule must be one of"):
    schedules.mask_ratio(0.5, "exponential")
  with pytest.raises(ValueError, match="num_steps must lie in"):
    schedules.masked_counts(9, 8, "cosine")
  with pytest.raises(ValueError, match="step must lie in"):
    schedules.num_masked_after_step(8, 8, 64, "cosine")
