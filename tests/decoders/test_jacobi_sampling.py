"""Speculative Jacobi and Grouped decoding: Jacobi exact by chi-square for both initialisations, grouped decoding
measurably not exact, group rules, and the limits of grouping (whole vocabulary, singletons)."""
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sequence_oracle import CLASS, LENGTH, NUM_SAMPLES, TARGET_LOGITS
from sequence_oracle import chi_square_p_value, exact_sequence_probabilities, softmax

from jaxtok.decoders import markov
from jaxtok.decoders import speculative

LABELS = jnp.full((NUM_SAMPLES,), CLASS, jnp.int32)


@pytest.fixture(scope="module")
def chains():
  return (markov.markov_model(*TARGET_LOGITS),)


@pytest.fixture(scope="module")
def expected():
  return exact_sequence_probabilities(*TARGET_LOGITS)


@pytest.mark.parametrize("init_strategy", speculative.INIT_STRATEGIES)
def test_jacobi_sampling_is_exact(chains, expected, init_strategy):
  output = speculative.jacobi_sample(chains[0], jax.random.key(1), LABELS, sequence_length=LENGTH, window=2,
                                     init_strategy=init_strategy)
  p_value = chi_square_p_value(output.tokens, expected)
  print(f"jacobi ({init_strategy}) chi-square p = {p_value:.3g}, acceptance {output.acceptance_rate:.3f}")
  assert p_value > 1e-3
  assert output.acceptance_rate > 0.05


def test_grouped_decoding_is_not_exact(chains, expected):
  output = speculative.grouped_sample(chains[0], jax.random.key(1), LABELS, sequence_length=LENGTH, window=2,
                                      group_rule=speculative.NucleusGroup(mass=0.9))
  assert chi_square_p_value(output.tokens, expected) < 1e-6


def test_grouped_with_the_whole_vocabulary_as_group_accepts_every_draft(chains):
  output = speculative.grouped_sample(chains[0], jax.random.key(3), LABELS[:8], sequence_length=LENGTH, window=2,
                                      group_rule=speculative.NucleusGroup(mass=1.0))
  assert output.acceptance_rate == 1.0 and int(output.target_calls) == 2


def test_grouped_with_singleton_groups_is_jacobi(chains):
  # Example i draws with fold_in(key, i) whatever its batch: the first 8 of a large batch are a batch of 8.
  jacobi = speculative.jacobi_sample(chains[0], jax.random.key(1), LABELS, sequence_length=LENGTH, window=2)
  grouped = speculative.grouped_sample(chains[0], jax.random.key(1), LABELS[:8], sequence_length=LENGTH, window=2,
                                       group_rule=speculative.NucleusGroup(mass=1e-6))
  np.testing.assert_array_equal(grouped.tokens, jacobi.tokens[:8])


@hypothesis.settings(deadline=None, max_examples=30)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), mass=st.floats(0.05, 1.0), radius=st.floats(0.0, 3.0))
def test_groups_contain_their_draft_and_follow_their_rule(seed, mass, radius):
  rng = np.random.default_rng(seed)
  target = softmax(rng.normal(size=(2, 8)) * 2).astype(np.float32)
  drafts = rng.integers(0, 8, (2,))
  nucleus = np.asarray(speculative.NucleusGroup(mass)(jnp.asarray(target), jnp.asarray(drafts)))
  codebook = rng.normal(size=(8, 2)).astype(np.float32)
  near = np.asarray(speculative.EmbeddingGroup(jnp.asarray(codebook), radius)(jnp.asarray(target),
                                                                              jnp.asarray(drafts)))
  for row in range(2):
    assert nucleus[row, drafts[row]] and near[row, drafts[row]]
    order = np.argsort(-target[row])
    mass_before = np.cumsum(target[row, order]) - target[row, order]
    top = set(order[mass_before < mass])
    hypothesis.assume(np.min(np.abs(np.cumsum(target[row, order]) - mass)) > 1e-5)
    expected = top if drafts[row] in top else {drafts[row]}
    assert set(np.flatnonzero(nucleus[row])) == expected
    distances = np.linalg.norm(codebook - codebook[drafts[row]], axis=1)
    np.testing.assert_array_equal(near[row], distances <= radius)
