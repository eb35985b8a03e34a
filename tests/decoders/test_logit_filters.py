"""Temperature, top-k and top-p filtering against direct NumPy definitions on fresh random logits."""
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.decoders import logit_filters


def _nucleus_oracle(logits: np.ndarray, p: float) -> np.ndarray:
  """Bool mask of the smallest prefix of the sorted distribution whose mass reaches p."""
  probabilities = np.exp(logits - logits.max())
  probabilities /= probabilities.sum()
  order = np.argsort(-probabilities, kind="stable")
  kept = np.zeros_like(probabilities, bool)
  mass = 0.0
  for index in order:
    kept[index] = True
    mass += probabilities[index]
    if mass >= p:
      break
  return kept


@hypothesis.settings(deadline=None, max_examples=40)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), vocab=st.sampled_from([2, 7, 40]), p=st.floats(0.05, 0.999))
def test_top_p_keeps_the_nucleus(seed, vocab, p):
  logits = np.random.default_rng(seed).normal(size=vocab).astype(np.float32) * 3
  filtered = np.asarray(logit_filters.top_p_filter(jnp.asarray(logits), p))
  expected = _nucleus_oracle(logits.astype(np.float64), p)
  # Entries within float32 rounding of the boundary mass may go either way; everything else must agree.
  probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
  sorted_mass = np.cumsum(np.sort(probabilities)[::-1])
  hypothesis.assume(np.min(np.abs(sorted_mass - p)) > 1e-5)
  np.testing.assert_array_equal(np.isfinite(filtered), expected)
  np.testing.assert_array_equal(filtered[expected], logits[expected])


@hypothesis.settings(deadline=None, max_examples=30)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), vocab=st.sampled_from([1, 6, 30]), data=st.data())
def test_top_k_keeps_the_k_largest(seed, vocab, data):
  k = data.draw(st.integers(0, vocab))
  logits = np.random.default_rng(seed).normal(size=(3, vocab)).astype(np.float32)
  filtered = np.asarray(logit_filters.top_k_filter(jnp.asarray(logits), k))
  kept = np.isfinite(filtered)
  np.testing.assert_array_equal(kept.sum(-1), np.full(3, vocab if k == 0 else k))
  for row in range(3):
    if 0 < k < vocab:
      assert logits[row][kept[row]].min() > logits[row][~kept[row]].max()


def test_per_example_top_p_and_temperature():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
  filtered = logit_filters.filter_logits(logits, top_p=jnp.array([0.5, 0.8]))
  np.testing.assert_array_equal(np.isfinite(filtered), [[True, False, False], [True, True, False]])
  hot = logit_filters.filter_logits(logits, temperature=jnp.array([1.0, 2.0]))
  np.testing.assert_allclose(hot[1], logits[1] / 2, rtol=1e-6)
  # Works under jit with a traced p.
  jitted = jax.jit(lambda x, p: logit_filters.filter_logits(x, top_p=p))(logits, 0.5)
  assert np.isfinite(jitted).sum() == 2


def test_top_k_out_of_range_raises():
  with pytest.raises(ValueError, match="top_k must lie in"):
    logit_filters.top_k_filter(jnp.zeros((2, 5)), 6)
