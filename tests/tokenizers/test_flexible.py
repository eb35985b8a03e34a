"""Flexible-length helpers: prefix-length sampling and the encoder / decoder attention masks, against NumPy."""
import jax
import numpy as np
import pytest

from jaxtok.tokenizers import flexible


def test_prefix_lengths():
  np.testing.assert_array_equal(flexible.prefix_lengths(12, "powers_of_two"), [1, 2, 4, 8, 12])
  np.testing.assert_array_equal(flexible.prefix_lengths(8, "powers_of_two"), [1, 2, 4, 8])
  np.testing.assert_array_equal(flexible.prefix_lengths(3, "uniform"), [1, 2, 3])
  np.testing.assert_array_equal(flexible.prefix_lengths(12, "uniform_powers_of_two"), [1, 2, 4, 8, 12])
  with pytest.raises(ValueError, match="length distribution must be one of"):
    flexible.prefix_lengths(8, "geometric")


@pytest.mark.parametrize("distribution, support", [("powers_of_two", [1, 2, 4, 8]), ("uniform", range(1, 9))])
def test_nested_dropout_samples_its_support_uniformly(distribution, support):
  lengths = np.asarray(flexible.sample_keep_lengths(jax.random.PRNGKey(0), 8000, 8, "nested_dropout",
                                                    length_distribution=distribution))
  values, counts = np.unique(lengths, return_counts=True)
  np.testing.assert_array_equal(values, list(support))
  np.testing.assert_allclose(counts / len(lengths), 1 / len(values), atol=0.02)


@pytest.mark.parametrize("tokens", [32, 12])
def test_uniform_powers_of_two_rounds_a_uniform_length_up(tokens):
  """FlexTok's "uniform_pow2": P(k) = (k - previous allowed length) / K, e.g. 16/32 for k = K = 32."""
  lengths = np.asarray(flexible.sample_keep_lengths(jax.random.PRNGKey(3), 20000, tokens, "nested_dropout",
                                                    length_distribution="uniform_powers_of_two"))
  support = flexible.prefix_lengths(tokens, "uniform_powers_of_two")
  values, counts = np.unique(lengths, return_counts=True)
  np.testing.assert_array_equal(values, support)
  expected = np.diff(np.concatenate([[0], support])) / tokens
  np.testing.assert_allclose(counts / len(lengths), expected, atol=0.012)


def test_tail_drop_keeps_everything_or_a_uniform_prefix():
  probability, tokens = 0.3, 8
  lengths = np.asarray(flexible.sample_keep_lengths(jax.random.PRNGKey(1), 20000, tokens, "tail_drop",
                                                    tail_drop_probability=probability))
  assert lengths.min() == 1 and lengths.max() == tokens
  np.testing.assert_allclose(np.mean(lengths == tokens), 1 - probability + probability / tokens, atol=0.015)
  np.testing.assert_allclose(np.mean(lengths == 1), probability / tokens, atol=0.01)
  np.testing.assert_array_equal(flexible.sample_keep_lengths(jax.random.PRNGKey(2), 5, tokens, "none"), [tokens] * 5)
  with pytest.raises(ValueError, match="token dropout must be one of"):
    flexible.sample_keep_lengths(jax.random.PRNGKey(2), 5, tokens, "drop")


def test_keep_mask():
  kept = np.asarray(flexible.keep_mask(np.array([1, 3, 4]), 4))
  np.testing.assert_array_equal(kept, [[1, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]])


def test_encoder_mask_against_loop_oracle():
  patches, latents = 3, 4
  mask = flexible.encoder_mask(patches, latents, "causal")
  oracle = np.zeros((patches + latents,) * 2, bool)
  for query in range(patches + latents):
    for key in range(patches + latents):
      key_is_patch = key < patches
      if query < patches:
        oracle[query, key] = key_is_patch
      else:
        oracle[query, key] = key_is_patch or key <= query
  np.testing.assert_array_equal(mask[0], oracle)
  assert flexible.encoder_mask(patches, latents, "full") is None
  with pytest.raises(ValueError, match="latent_attention must be one of"):
    flexible.encoder_mask(patches, latents, "bidirectional")


def test_decoder_mask_hides_dropped_latent_keys_from_every_query():
  kept = np.array([[True, False, False], [True, True, True]])
  mask = np.asarray(flexible.decoder_mask(2, kept))
  assert mask.shape == (2, 1, 5, 5)
  for example in range(2):
    expected_keys = np.concatenate([[True, True], kept[example]])
    for query in range(5):
      np.testing.assert_array_equal(mask[example, 0, query], expected_keys)
