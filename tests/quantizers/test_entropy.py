"""Entropy terms against brute-force float64 softmax over every code."""
import functools
import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.quantizers import entropy


def _softmax(logits: np.ndarray) -> np.ndarray:
  shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
  return shifted / shifted.sum(axis=-1, keepdims=True)


def _entropy(probs: np.ndarray) -> np.ndarray:
  return -np.sum(np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0), axis=-1)


def _code_probs(bit_logits: np.ndarray) -> np.ndarray:
  """Softmax over all 2^d codes of `sum_i bit_i * logit_i` (codes in MSB-first order) -> `[N, 2^d]`."""
  codes = np.array(list(itertools.product([0, 1], repeat=bit_logits.shape[-1])), np.float64)
  return _softmax(bit_logits @ codes.T)


@pytest.mark.parametrize("terms, brute_force_probs, seed, shape, scale", [
    (entropy.entropy_terms, _softmax, 0, (20, 9), 3),
    (functools.partial(entropy.binary_entropy_terms, max_group_bits=7), _code_probs, 1, (30, 7), 2),
], ids=["softmax_terms_match_numpy", "binary_is_exact_over_all_codes_in_one_group"])
def test_entropy_terms_match_brute_force(terms, brute_force_probs, seed, shape, scale):
  logits = np.random.default_rng(seed).normal(size=shape) * scale
  per_sample, codebook = terms(jnp.asarray(logits, jnp.float32))
  probs = brute_force_probs(logits)
  np.testing.assert_allclose(float(per_sample), np.mean(_entropy(probs)), rtol=1e-5)
  np.testing.assert_allclose(float(codebook), _entropy(probs.mean(axis=0)), rtol=1e-5)


def test_grouped_codebook_entropy_is_the_sum_of_group_marginals():
  bit_logits = np.random.default_rng(2).normal(size=(25, 7)) * 2
  _, codebook = entropy.binary_entropy_terms(jnp.asarray(bit_logits, jnp.float32), max_group_bits=3)
  groups = entropy.group_sizes(7, 3)
  assert groups == (3, 2, 2)
  bounds = np.cumsum((0,) + groups)
  expected = sum(_entropy(_code_probs(bit_logits[:, a:b]).mean(axis=0)) for a, b in zip(bounds[:-1], bounds[1:]))
  np.testing.assert_allclose(float(codebook), expected, rtol=1e-5)
  exact = _entropy(_code_probs(bit_logits).mean(axis=0))
  assert float(codebook) >= exact - 1e-5


def test_entropies_stay_finite_and_non_negative_for_bf16_and_2_to_18_codes():
  logits = jnp.asarray(np.random.default_rng(3).normal(size=(64, 18)) * 1e4, jnp.bfloat16)
  per_sample, codebook = entropy.binary_entropy_terms(logits, max_group_bits=9)
  for value in (per_sample, codebook):
    assert value.dtype == jnp.float32 and np.isfinite(float(value)) and float(value) >= 0


def test_group_sizes_reject_zero():
  with pytest.raises(ValueError, match="max_group_bits must be >= 1, got 0"):
    entropy.group_sizes(8, 0)
