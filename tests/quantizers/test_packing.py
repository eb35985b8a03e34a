"""Binary codes <-> dense int32 and packed uint32 indices, against a NumPy big-integer oracle."""
import hypothesis
from hypothesis import strategies as st
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.quantizers import packing


def _big_integers(bits: np.ndarray) -> list[int]:
  """Each row of 0/1 bits read as one Python integer, first column the most significant bit."""
  return [int("".join(map(str, row)), 2) if row.size else 0 for row in bits.astype(int)]


def _words_of(value: int, words: int) -> list[int]:
  return [(value >> (32 * (words - 1 - w))) & 0xFFFFFFFF for w in range(words)]


@hypothesis.settings(max_examples=8, deadline=None)
@hypothesis.given(dim=st.integers(1, 31), rows=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_dense_indices_first_channel_most_significant(dim, rows, seed):
  bits = np.random.default_rng(seed).integers(0, 2, (rows, dim)).astype(bool)
  indices = packing.bits_to_indices(jnp.asarray(bits), packed=False)
  assert indices.dtype == jnp.int32
  np.testing.assert_array_equal(np.asarray(indices), _big_integers(bits))
  np.testing.assert_array_equal(np.asarray(packing.indices_to_bits(indices, dim, packed=False)), bits)


@hypothesis.settings(max_examples=12, deadline=None)
@hypothesis.given(dim=st.sampled_from([1, 17, 31, 32, 33, 64, 100, 128]), seed=st.integers(0, 2**31 - 1))
def test_packed_indices_are_big_endian_words_and_round_trip(dim, seed):
  bits = np.random.default_rng(seed).integers(0, 2, (3, 2, dim)).astype(bool)
  words = packing.bits_to_indices(jnp.asarray(bits), packed=True)
  assert words.dtype == jnp.uint32 and words.shape == (3, 2, packing.num_words(dim))
  expected = [_words_of(value, packing.num_words(dim)) for value in _big_integers(bits.reshape(-1, dim))]
  np.testing.assert_array_equal(np.asarray(words).reshape(-1, packing.num_words(dim)), expected)
  np.testing.assert_array_equal(np.asarray(packing.indices_to_bits(words, dim, packed=True)), bits)


def test_one_packed_word_equals_the_dense_index():
  bits = np.random.default_rng(0).integers(0, 2, (50, 20)).astype(bool)
  dense = packing.bits_to_indices(jnp.asarray(bits), packed=False)
  packed = packing.bits_to_indices(jnp.asarray(bits), packed=True)
  np.testing.assert_array_equal(np.asarray(packed)[:, 0], np.asarray(dense))


def test_dense_rejects_more_than_31_bits_and_packed_checks_word_count():
  with pytest.raises(ValueError, match="at most 31 bits, got 32"):
    packing.bits_to_indices(jnp.zeros((2, 32), bool), packed=False)
  with pytest.raises(ValueError, match=r"\[..., 4\] uint32 words, got shape \(2, 3\)"):
    packing.indices_to_bits(jnp.zeros((2, 3), jnp.uint32), 128, packed=True)
