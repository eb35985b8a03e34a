"""MaskGIT and remasking samplers on analytic models: exact marginals, schedules, guidance, keys, remasking."""
import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxtok.decoders import guidance
from jaxtok.decoders import logit_filters
from jaxtok.decoders import masked_sampling
from jaxtok.decoders import maskgit
from jaxtok.decoders import schedules

VOCAB, MASK, NULL = 5, 5, 3
# Fixed per-position logits of the toy model: position 2 is nearly deterministic, the others spread out.
TOY_LOGITS = np.log(np.array([[0.4, 0.3, 0.15, 0.1, 0.05],
                              [0.05, 0.1, 0.2, 0.25, 0.4],
                              [0.002, 0.002, 0.99, 0.004, 0.002]], np.float32))


def toy_logits_fn(tokens, class_labels, logits=TOY_LOGITS):
  """Ignores its input: every example's position j is distributed as softmax(logits[j]) (codebooks tiled)."""
  del class_labels
  table = jnp.asarray(logits)[:tokens.shape[1]]
  if tokens.ndim == 3:
    table = jnp.stack([table, jnp.roll(table, 1, axis=-1)], axis=1)[:, :tokens.shape[2]]
  return jnp.broadcast_to(table, (*tokens.shape, VOCAB))


def consensus_logits_fn(tokens, class_labels):
  """Input-dependent model: each unit prefers the tokens other visible units hold, plus a class preference."""
  units = tokens.reshape(tokens.shape[0], -1)
  visible = jax.nn.one_hot(units, VOCAB) * (units != MASK)[..., None]
  votes = jnp.sum(visible, axis=1, keepdims=True) - visible
  class_bias = jax.nn.one_hot(class_labels % VOCAB, VOCAB)[:, None] * 1.5
  return (2.0 * votes + class_bias).reshape(*tokens.shape, VOCAB)


def _chi_square_pvalues(samples: np.ndarray, probabilities: np.ndarray) -> list[float]:
  """Per unit: chi-square p-value of the samples' counts against `probabilities` (zero-probability tokens must
  never appear)."""
  pvalues = []
  for unit in range(probabilities.shape[0]):
    counts = np.bincount(samples[:, unit], minlength=VOCAB)
    support = probabilities[unit] > 0
    assert counts[~support].sum() == 0
    expected = probabilities[unit][support].astype(np.float64)
    pvalues.append(scipy.stats.chisquare(counts[support], expected / expected.sum() * len(samples)).pvalue)
  return pvalues


def _filtered_probabilities(logits, temperature, top_k):
  return np.asarray(jax.nn.softmax(logit_filters.filter_logits(jnp.asarray(logits), temperature=temperature,
                                                               top_k=top_k), axis=-1))


def _sampler(logits_fn=toy_logits_fn, *, sampler=masked_sampling.maskgit_sample, **kwargs):
  settings = dict(sequence_length=3, mask_id=MASK, num_steps=3)
  settings.update(kwargs)
  return jax.jit(functools.partial(sampler, logits_fn, **settings))


NUM_SAMPLES = 4000
RANDOM_ORDER = 1e6  # choice temperature whose Gumbel noise swamps the confidences: unit order independent of values


def test_marginals_match_the_model():
  """With a random unit order, every unit's final token is one draw of the filtered model distribution."""
  labels = jnp.zeros(NUM_SAMPLES, jnp.int32)
  sample = _sampler(temperature=0.8, top_k=4, choice_temperature=RANDOM_ORDER)
  tokens = np.asarray(sample(jax.random.key(0), labels).tokens)
  expected = _filtered_probabilities(TOY_LOGITS, 0.8, 4)
  assert min(_chi_square_pvalues(tokens, expected)) > 1e-3
  # Broken variants the same test catches: the temperature applied twice; confidence-ordered choice (MaskGIT's
  # choice_temperature -> 0), which resamples unlikely draws and so favours likely tokens.
  twice = _sampler(lambda t, c: toy_logits_fn(t, c) / 0.8, temperature=0.8, top_k=4, choice_temperature=RANDOM_ORDER)
  assert min(_chi_square_pvalues(np.asarray(twice(jax.random.key(0), labels).tokens), expected)) < 1e-6
  greedy_order = _sampler(temperature=0.8, top_k=4, choice_temperature=0.0, return_trajectory=True)
  greedy = greedy_order(jax.random.key(0), labels)
  assert min(_chi_square_pvalues(np.asarray(greedy.tokens), expected)) < 1e-6
  # That variant fixes the most confident unit first: unit 2 exactly when it drew its 0.99-likely token 2 (whose
  # log-probability beats any draw of units 0 and 1, and any other draw of unit 2 loses to them).
  first = np.asarray(greedy.trajectory[0])
  assert np.all((first != MASK).sum(1) == 1)
  unit_two_first = first[:, 2] != MASK
  assert np.all(first[unit_two_first, 2] == 2)
  rate, expected_rate = unit_two_first.mean(), expected[2, 2]
  assert abs(rate - expected_rate) < 5 * np.sqrt(expected_rate * (1 - expected_rate) / NUM_SAMPLES)


def test_multi_codebook_marginals():
  labels = jnp.zeros(NUM_SAMPLES, jnp.int32)
  sample = _sampler(sequence_length=2, num_codebooks=2, num_steps=4, top_p=0.9, choice_temperature=RANDOM_ORDER,
                    sampler=masked_sampling.remasking_sample, strategy="easy_first")
  tokens = np.asarray(sample(jax.random.key(1), labels).tokens)
  assert tokens.shape == (NUM_SAMPLES, 2, 2)
  table = np.asarray(toy_logits_fn(jnp.zeros((1, 2, 2), jnp.int32), None)[0]).reshape(4, VOCAB)
  expected = np.asarray(jax.nn.softmax(logit_filters.filter_logits(jnp.asarray(table), top_p=0.9), axis=-1))
  assert min(_chi_square_pvalues(tokens.reshape(NUM_SAMPLES, 4), expected)) > 1e-3


def _check_remasked_are_least_confident(trajectory, labels):
  """Low-confidence remasking with margin scores: at every step, each remasked decoded unit's margin (under the
  step's input) is at most every kept unit's."""
  for step in range(1, trajectory.shape[0]):
    before, after = trajectory[step - 1], trajectory[step]
    probabilities = np.asarray(jax.nn.softmax(consensus_logits_fn(jnp.asarray(before), labels), axis=-1))
    tokens = np.where(after != MASK, after, np.minimum(before, VOCAB - 1))
    chosen = np.take_along_axis(probabilities, tokens[..., None], axis=-1)[..., 0]
    others = np.where(np.eye(VOCAB, dtype=bool)[tokens], -1.0, probabilities).max(-1)
    margin = chosen - others
    remasked = (before != MASK) & (after == MASK)
    kept = after != MASK
    for example in np.flatnonzero(remasked.any(1)):
      assert margin[example][remasked[example]].max() <= margin[example][kept[example]].min() + 1e-6


REMASK_LABELS = jnp.arange(32) % 4


def _check_follows_schedule(trajectory, *, may_unfix: bool) -> None:
  """Masked counts per step equal the 5-step cosine schedule's over 7 units; tokens are un-fixed iff allowed."""
  expected_counts = np.tile(schedules.masked_counts(5, 7, "cosine"), (trajectory.shape[1], 1)).T
  np.testing.assert_array_equal((trajectory == MASK).sum(-1), expected_counts)
  assert np.all(trajectory[-1] < VOCAB)
  unfixed = (trajectory[:-1] != MASK) & (trajectory[1:] != trajectory[:-1])
  assert unfixed.any() == may_unfix


def test_low_confidence_remasking():
  sample = _sampler(consensus_logits_fn, sampler=masked_sampling.remasking_sample, strategy="low_confidence",
                    score="margin", sequence_length=7, num_steps=5, return_trajectory=True)
  trajectory = np.asarray(sample(jax.random.key(3), REMASK_LABELS).trajectory)
  # Decoded units whose context turned against them are remasked, the counts still follow the schedule.
  _check_follows_schedule(trajectory, may_unfix=True)
  _check_remasked_are_least_confident(trajectory, REMASK_LABELS)


_guided_trajectory = jax.jit(lambda key, labels, scale: masked_sampling.maskgit_sample(
    consensus_logits_fn, key, labels, sequence_length=4, num_codebooks=2, mask_id=MASK, num_steps=6,
    schedule="sqrt", top_k=3, guidance_scale=scale, null_class=NULL, return_trajectory=True))


@hypothesis.settings(deadline=None, max_examples=30)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), scale=st.floats(-1.0, 8.0),
                  labels=st.lists(st.integers(0, NULL), min_size=3, max_size=3))
def test_maskgit_invariants(seed, scale, labels):
  """Any key, guidance scale and labels (null included): the schedule's counts, no token un-fixed, a fully decoded
  result equal to the last step."""
  output = _guided_trajectory(jax.random.key(seed), jnp.asarray(labels), scale)
  trajectory = np.asarray(output.trajectory).reshape(6, 3, 8)
  np.testing.assert_array_equal((trajectory == MASK).sum(-1), np.tile(schedules.masked_counts(6, 8, "sqrt"), (3, 1)).T)
  fixed = trajectory[:-1] != MASK
  np.testing.assert_array_equal(trajectory[1:][fixed], trajectory[:-1][fixed])
  np.testing.assert_array_equal(np.asarray(output.tokens).reshape(3, 8), trajectory[-1])
  assert np.all(trajectory[-1] < VOCAB)


def test_easy_first_and_secondary_remasking():
  labels = REMASK_LABELS
  secondary = jax.jit(lambda threshold, drop: masked_sampling.remasking_sample(
      consensus_logits_fn, jax.random.key(4), labels, sequence_length=7, mask_id=MASK, num_steps=5,
      strategy="secondary", remask_threshold=threshold, remask_drop=drop, return_trajectory=True).trajectory)
  easy_first = _sampler(consensus_logits_fn, sampler=masked_sampling.remasking_sample, strategy="easy_first",
                        sequence_length=7, num_steps=5, return_trajectory=True)
  easy_first_trajectory = np.asarray(easy_first(jax.random.key(4), labels).trajectory)
  _check_follows_schedule(easy_first_trajectory, may_unfix=False)
  # Checks off: easy-first decoding exactly.
  np.testing.assert_array_equal(secondary(0.0, 1.0), easy_first_trajectory)
  # Every threshold check fails (p < 1), or every residual-drop check (drop > -1): a unit decoded before step s is
  # masked again after it, except at the last step, which decodes everything.
  for threshold, drop in ((1.0, 1.0), (0.0, -1.0)):
    trajectory = np.asarray(secondary(threshold, drop))
    for step in range(1, 4):
      assert not np.any((trajectory[step - 1] != MASK) & (trajectory[step] != MASK))
    assert np.all(trajectory[-1] != MASK)
  # Threshold 0.7: exactly the earlier decoded units whose probability under step s's input is below 0.7 are
  # remasked after step s (some, not all, here).
  trajectory = np.asarray(secondary(0.7, 1.0))
  remasked_count = 0
  for step in range(1, 4):
    before = trajectory[step - 1]
    probabilities = np.asarray(jax.nn.softmax(consensus_logits_fn(jnp.asarray(before), labels), axis=-1))
    current = np.take_along_axis(probabilities, np.minimum(before, VOCAB - 1)[..., None], axis=-1)[..., 0]
    expected = (before != MASK) & (current < 0.7)
    np.testing.assert_array_equal((before != MASK) & (trajectory[step] == MASK), expected)
    remasked_count += expected.sum()
  assert 0 < remasked_count < (trajectory[:3] != MASK).sum()


LABELS = jnp.array([0, 1, 2, 0, 1, 2, 1])
_plain = _sampler(consensus_logits_fn, sequence_length=6, num_steps=4)


def test_guidance_scale_zero_equals_conditional_model():
  batch_sizes = []

  def recording_fn(tokens, class_labels):
    batch_sizes.append(tokens.shape[0])
    return consensus_logits_fn(tokens, class_labels)

  guided = jax.jit(lambda key, scale: masked_sampling.maskgit_sample(
      recording_fn, key, LABELS, sequence_length=6, mask_id=MASK, num_steps=4, guidance_scale=scale,
      guidance_schedule="linear-inclusive", null_class=NULL).tokens)
  plain = _plain(jax.random.key(5), LABELS).tokens
  np.testing.assert_array_equal(guided(jax.random.key(5), 0.0), plain)
  assert batch_sizes == [2 * len(LABELS)]  # the conditional and null passes run as one batched call
  assert np.any(np.asarray(guided(jax.random.key(5), 3.0)) != np.asarray(plain))
  cond, uncond = jnp.array([1.0, 2.0]), jnp.array([0.5, 3.0])
  np.testing.assert_allclose(guidance.guided_logits(cond, uncond, 2.0), [2.0, 0.0])
  np.testing.assert_allclose(guidance.guidance_weights(4, 2.0, "linear-inclusive"), [0.5, 1.0, 1.5, 2.0])


def test_fixed_key_is_deterministic_and_examples_ignore_their_batch():
  first, again = _plain(jax.random.key(6), LABELS).tokens, _plain(jax.random.key(6), LABELS).tokens
  np.testing.assert_array_equal(first, again)
  assert np.any(np.asarray(_plain(jax.random.key(7), LABELS).tokens) != np.asarray(first))
  np.testing.assert_array_equal(_plain(jax.random.key(6), LABELS[:2]).tokens, first[:2])
  # Under vmap over keys: each key's result as alone.
  keys = jnp.stack([jax.random.key(6), jax.random.key(7)])
  mapped = jax.vmap(lambda key: _plain(key, LABELS).tokens)(keys)
  np.testing.assert_array_equal(mapped[0], first)
  np.testing.assert_array_equal(mapped[1], _plain(jax.random.key(7), LABELS).tokens)


def test_with_the_transformer_multi_codebook():
  model = maskgit.MaskedTokenTransformer(vocab_size=VOCAB, sequence_length=3, num_classes=NULL, num_codebooks=2,
                                         width=16, depth=1, num_heads=2, mlp_dim=32, dropout_rate=0.0)
  variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 3, 2), jnp.int32), jnp.zeros(1, jnp.int32))
  sample = _sampler(lambda t, c: model.apply(variables, t, c), num_codebooks=2, num_steps=4, guidance_scale=2.0,
                    null_class=model.null_class, return_trajectory=True)
  output = sample(jax.random.key(8), jnp.array([0, 2]))
  assert output.tokens.shape == (2, 3, 2) and output.trajectory.shape == (4, 2, 3, 2)
  assert np.all(np.asarray(output.tokens) < VOCAB)
  np.testing.assert_array_equal((np.asarray(output.trajectory) == MASK).reshape(4, 2, 6).sum(-1),
                                np.tile(schedules.masked_counts(4, 6, "cosine"), (2, 1)).T)


def test_unit_confidence_scores():
  log_probs = jnp.log(jnp.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]))
  tokens = jnp.array([1, 1])
  np.testing.assert_allclose(masked_sampling.unit_confidence(log_probs, tokens, "probability"), np.log([0.3, 0.6]),
                             rtol=1e-6)
  np.testing.assert_allclose(masked_sampling.unit_confidence(log_probs, tokens, "margin"), [-0.2, 0.3], rtol=1e-5)


def test_bad_arguments_raise():
  labels = jnp.zeros(2, jnp.int32)
  sample = functools.partial(masked_sampling.maskgit_sample, toy_logits_fn, jax.random.key(0), sequence_length=3,
                             mask_id=MASK, num_steps=3)
  with pytest.raises(ValueError, match="class_labels must be"):
    sample(jnp.zeros((2, 1), jnp.int32))
  with pytest.raises(ValueError, match="needs null_class"):
    sample(labels, guidance_scale=1.0)
  with pytest.raises(ValueError, match="num_steps must lie in"):
    sample(labels, num_steps=4)
  with pytest.raises(ValueError, match="logits_fn must return"):
    sample(labels, mask_id=3)
  with pytest.raises(ValueError, match="logits_fn must return"):
    masked_sampling.maskgit_sample(lambda t, c: jnp.zeros((t.shape[0], 3, VOCAB)), jax.random.key(0), labels,
                                   sequence_length=3, mask_id=MASK, num_codebooks=2, num_steps=3)
  with pytest.raises(ValueError, match="guidance_schedule"):
    sample(labels, guidance_scale=1.0, null_class=NULL, guidance_schedule="step")
  with pytest.raises(ValueError, match="strategy"):
    masked_sampling.remasking_sample(toy_logits_fn, jax.random.key(0), labels, sequence_length=3, mask_id=MASK,
                                     strategy="random")
