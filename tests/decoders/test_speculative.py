"""Draft-and-verify speculative sampling: exact sequence distribution by chi-square (broken rules must fail), the
one-step identity, greedy equivalences (also under guidance), statistics, per-example determinism, argument checks."""
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sequence_oracle import CLASS, DRAFT_LOGITS, LENGTH, NUM_SAMPLES, TARGET_LOGITS
from sequence_oracle import chi_square_p_value, exact_sequence_probabilities, softmax

from jaxtok.decoders import ar_sampling
from jaxtok.decoders import autoregressive
from jaxtok.decoders import markov
from jaxtok.decoders import speculative


@pytest.fixture(scope="module")
def chains():
  return markov.markov_model(*TARGET_LOGITS), markov.markov_model(*DRAFT_LOGITS)


@pytest.fixture(scope="module")
def expected():
  return exact_sequence_probabilities(*TARGET_LOGITS)


LABELS = jnp.full((NUM_SAMPLES,), CLASS, jnp.int32)


def test_speculative_sampling_is_exact(chains, expected):
  target, draft = chains
  output = speculative.speculative_sample(target, draft, jax.random.key(0), LABELS, sequence_length=LENGTH, gamma=2)
  p_value = chi_square_p_value(output.tokens, expected)
  print(f"speculative chi-square p = {p_value:.3g}, acceptance {output.acceptance_rate:.3f}")
  assert p_value > 1e-3
  assert 0.2 < output.acceptance_rate < 0.95  # the draft differs from the target: some drafts are rejected


@pytest.mark.parametrize("broken", ["resample_from_target", "always_accept"])
def test_broken_acceptance_rules_fail_the_same_test(chains, expected, monkeypatch, broken):
  if broken == "resample_from_target":
    monkeypatch.setattr(speculative, "residual_distribution", lambda target, draft: target)
  else:
    monkeypatch.setattr(speculative, "acceptance_probability", lambda target, draft: jnp.ones_like(target))
  speculative._speculative.clear_cache()
  try:
    output = speculative.speculative_sample(*chains, jax.random.key(0), LABELS, sequence_length=LENGTH, gamma=2)
  finally:
    speculative._speculative.clear_cache()
  p_value = chi_square_p_value(output.tokens, expected)
  print(f"broken ({broken}) chi-square p = {p_value:.3g}")
  assert p_value < 1e-6


@hypothesis.settings(deadline=None, max_examples=50)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), vocab=st.sampled_from([2, 5, 12]),
                  sharpness=st.floats(0.1, 4.0))
def test_one_verification_step_yields_the_target_distribution(seed, vocab, sharpness):
  """P(out = x) = q(x) min(1, p(x)/q(x)) + P(reject) residual(x) = p(x), computed from the pure rule functions."""
  rng = np.random.default_rng(seed)
  p, q = (softmax(rng.normal(size=vocab) * sharpness).astype(np.float32) for _ in range(2))
  accept = np.asarray(speculative.acceptance_probability(jnp.asarray(p), jnp.asarray(q)))
  residual = np.asarray(speculative.residual_distribution(jnp.asarray(p), jnp.asarray(q)))
  assert np.all(residual >= 0) and np.isclose(residual.sum(), 1, atol=1e-5)
  rejection = 1 - np.sum(q * accept)
  np.testing.assert_allclose(q * accept + rejection * residual, p, atol=1e-5)


def test_identical_draft_accepts_everything(chains):
  target = chains[0]
  output = speculative.speculative_sample(target, target, jax.random.key(2), LABELS[:8], sequence_length=LENGTH,
                                          gamma=2)
  assert output.acceptance_rate == 1.0
  assert int(output.target_calls) == 2 and output.tokens_per_call == LENGTH / 2  # prefill, one round of 1 + 2


def test_guided_greedy_speculative_equals_guided_greedy_decoding(chains):
  # Class 1 prefers token 0 by a little; guided away from the null class 0 it prefers token 1.
  target = markov.markov_model(np.array([[1.0, 0.0, 0.0], [1.0, 0.9, 0.0]]), TARGET_LOGITS[1])
  guidance = dict(sequence_length=LENGTH, temperature=0, guidance_scale=2.0, null_class=0)
  labels = jnp.asarray([1, 1, 0, 1, 0, 1, 1, 0], jnp.int32)
  greedy = ar_sampling.sample(target, jax.random.key(0), labels, **guidance)
  spec = speculative.speculative_sample(target, chains[1], jax.random.key(1), labels, gamma=2, **guidance)
  np.testing.assert_array_equal(spec.tokens, greedy.tokens)
  np.testing.assert_array_equal(greedy.tokens[:, 0], np.where(labels == 1, 1, 0))


def test_examples_do_not_depend_on_their_batch(chains):
  large = speculative.speculative_sample(*chains, jax.random.key(0), LABELS, sequence_length=LENGTH, gamma=2)
  small = speculative.speculative_sample(*chains, jax.random.key(0), LABELS[:8], sequence_length=LENGTH, gamma=2)
  np.testing.assert_array_equal(small.tokens, large.tokens[:8])
  np.testing.assert_array_equal(small.accepted, large.accepted[:8])


@pytest.fixture(scope="module")
def transformers():
  target = autoregressive.CausalTokenTransformer(vocab_size=16, sequence_length=10, num_classes=3, width=32, depth=2,
                                                 num_heads=4, mlp_dim=64)
  draft = autoregressive.CausalTokenTransformer(vocab_size=16, sequence_length=10, num_classes=3, width=16, depth=1,
                                                num_heads=2, mlp_dim=32)
  tokens, labels = jnp.zeros((1, 10), jnp.int32), jnp.zeros((1,), jnp.int32)
  return (autoregressive.as_logits_fn(target, target.init(jax.random.key(10), tokens, labels)),
          autoregressive.as_logits_fn(draft, draft.init(jax.random.key(11), tokens, labels)))


def test_greedy_speculative_and_jacobi_equal_greedy_decoding(transformers):
  target, draft = transformers
  labels = jnp.asarray([0, 1, 2, 3], jnp.int32)
  greedy = ar_sampling.sample(target, jax.random.key(0), labels, sequence_length=10, temperature=0)
  spec = speculative.speculative_sample(target, draft, jax.random.key(1), labels, sequence_length=10, gamma=3,
                                        temperature=0)
  jacobi = speculative.jacobi_sample(target, jax.random.key(2), labels, sequence_length=10, window=3, temperature=0)
  np.testing.assert_array_equal(spec.tokens, greedy.tokens)
  np.testing.assert_array_equal(jacobi.tokens, greedy.tokens)
  assert spec.acceptance_rate < 1.0  # a random draft disagrees: rollbacks were exercised
  assert int(spec.target_calls) <= 10 and spec.wall_time > 0


def test_bad_arguments_raise(chains):
  target, draft = chains
  with pytest.raises(ValueError, match="gamma must be >= 1"):
    speculative.speculative_sample(target, draft, jax.random.key(0), LABELS[:2], sequence_length=3, gamma=0)
  with pytest.raises(ValueError, match="window must be >= 1"):
    speculative.jacobi_sample(target, jax.random.key(0), LABELS[:2], sequence_length=3, window=0)
  with pytest.raises(ValueError, match="init_strategy"):
    speculative.jacobi_sample(target, jax.random.key(0), LABELS[:2], sequence_length=3, init_strategy="zeros")
  with pytest.raises(ValueError, match="temperature"):
    speculative.grouped_sample(target, jax.random.key(0), LABELS[:2], sequence_length=3, temperature=-1.0)
  with pytest.raises(ValueError, match="class_labels"):
    speculative.speculative_sample(target, draft, jax.random.key(0), LABELS[:4].reshape(2, 2), sequence_length=3)
  with pytest.raises(ValueError, match="null_class"):
    speculative.jacobi_sample(target, jax.random.key(0), LABELS[:2], sequence_length=3, guidance_scale=2.0)


def test_draft_with_another_vocabulary_raises_naming_both_sizes(chains):
  target, _ = chains
  rng = np.random.default_rng(0)
  wider = markov.markov_model(rng.normal(size=(2, 4)), rng.normal(size=(LENGTH, 4, 4)))
  with pytest.raises(ValueError, match="target vocab 3, draft vocab 4"):
    speculative.speculative_sample(target, wider, jax.random.key(0), LABELS[:2], sequence_length=LENGTH)
  with pytest.raises(ValueError, match="target vocab 4, draft vocab 3"):
    speculative.speculative_sample(wider, target, jax.random.key(0), LABELS[:2], sequence_length=LENGTH,
                                   guidance_scale=1.5, null_class=0)
