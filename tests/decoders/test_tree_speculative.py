"""Tree verification: exact sequence distribution by chi-square (a broken residual must fail), greedy equivalence on
the transformer, full acceptance with the target as draft, argument checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sequence_oracle import CLASS, DRAFT_LOGITS, LENGTH, NUM_SAMPLES, TARGET_LOGITS
from sequence_oracle import chi_square_p_value, exact_sequence_probabilities

from jaxtok.decoders import ar_sampling
from jaxtok.decoders import autoregressive
from jaxtok.decoders import markov
from jaxtok.decoders import speculative
from jaxtok.decoders import tree_speculative

# Root, three children (i.i.d. drafts), and a second level under the first two: siblings exercise the residual chain.
TREE = (-1, 0, 0, 0, 1, 2)
LABELS = jnp.full((NUM_SAMPLES,), CLASS, jnp.int32)


@pytest.fixture(scope="module")
def chains():
  return markov.markov_model(*TARGET_LOGITS), markov.markov_model(*DRAFT_LOGITS)


def test_tree_sampling_is_exact(chains):
  output = tree_speculative.tree_sample(*chains, jax.random.key(0), LABELS, sequence_length=LENGTH, parents=TREE)
  p_value = chi_square_p_value(output.tokens, exact_sequence_probabilities(*TARGET_LOGITS))
  print(f"tree chi-square p = {p_value:.3g}, acceptance {output.acceptance_rate:.3f}")
  assert p_value > 1e-3
  assert 0.2 < output.acceptance_rate < 0.95


def test_tree_without_the_residual_update_fails_the_same_test(chains, monkeypatch):
  monkeypatch.setattr(speculative, "residual_distribution", lambda target, draft: target)
  tree_speculative._tree.clear_cache()
  try:
    output = tree_speculative.tree_sample(*chains, jax.random.key(0), LABELS, sequence_length=LENGTH, parents=TREE)
  finally:
    tree_speculative._tree.clear_cache()
  p_value = chi_square_p_value(output.tokens, exact_sequence_probabilities(*TARGET_LOGITS))
  print(f"broken tree chi-square p = {p_value:.3g}")
  assert p_value < 1e-6


def test_tree_depths_and_checks():
  np.testing.assert_array_equal(tree_speculative.tree_depths(TREE), [0, 1, 1, 1, 2, 2])
  for parents in ((0, 0), (-1, 1), (-1, 0, 3, 0), ()):
    with pytest.raises(ValueError, match="parents"):
      tree_speculative.check_tree(parents)


def test_greedy_tree_verification_equals_greedy_decoding():
  target = autoregressive.CausalTokenTransformer(vocab_size=16, sequence_length=10, num_classes=3, width=32, depth=2,
                                                 num_heads=4, mlp_dim=64)
  draft = autoregressive.CausalTokenTransformer(vocab_size=16, sequence_length=10, num_classes=3, width=16, depth=1,
                                                num_heads=2, mlp_dim=32)
  tokens, labels = jnp.zeros((1, 10), jnp.int32), jnp.asarray([0, 2, 3], jnp.int32)
  target = autoregressive.as_logits_fn(target, target.init(jax.random.key(10), tokens, labels[:1]))
  draft = autoregressive.as_logits_fn(draft, draft.init(jax.random.key(11), tokens, labels[:1]))
  greedy = ar_sampling.sample(target, jax.random.key(0), labels, sequence_length=10, temperature=0)
  output = tree_speculative.tree_sample(target, draft, jax.random.key(1), labels, sequence_length=10, parents=TREE,
                                        temperature=0)
  np.testing.assert_array_equal(output.tokens, greedy.tokens)
  assert output.acceptance_rate < 1.0  # the random draft disagrees: rejections and path compaction were exercised


def test_target_as_its_own_draft_accepts_every_path(chains):
  output = tree_speculative.tree_sample(chains[0], chains[0], jax.random.key(2), LABELS[:8], sequence_length=LENGTH,
                                        parents=TREE)
  assert output.acceptance_rate == 1.0 and int(output.target_calls) == 2  # prefill, then 2 drafts + a bonus token


def test_bad_arguments_raise(chains):
  target, draft = chains
  with pytest.raises(ValueError, match="at least one draft node"):
    tree_speculative.tree_sample(target, draft, jax.random.key(0), LABELS[:2], sequence_length=3, parents=(-1,))
  plain = ar_sampling.TokenModel(target.params, target.init, target.logits_fn, target.rollback)
  with pytest.raises(ValueError, match="tree_logits_fn"):
    tree_speculative.tree_sample(plain, draft, jax.random.key(0), LABELS[:2], sequence_length=3, parents=TREE)


def test_draft_with_another_vocabulary_raises_naming_both_sizes(chains):
  rng = np.random.default_rng(0)
  wider = markov.markov_model(rng.normal(size=(2, 5)), rng.normal(size=(LENGTH, 5, 5)))
  with pytest.raises(ValueError, match="target vocab 3, draft vocab 5"):
    tree_speculative.tree_sample(chains[0], wider, jax.random.key(0), LABELS[:2], sequence_length=LENGTH,
                                 parents=TREE)
