"""Plain autoregressive sampling: exact distribution by chi-square, greedy, top-k / top-p, CFG, determinism, errors."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxtok.decoders import ar_sampling
from jaxtok.decoders import autoregressive
from jaxtok.decoders import markov

VOCAB, LENGTH = 3, 3
_RNG = np.random.default_rng(3)
INITIAL, TRANSITIONS = _RNG.normal(size=(2, VOCAB)) * 1.5, _RNG.normal(size=(LENGTH, VOCAB, VOCAB)) * 1.5


def _softmax(logits):
  e = np.exp(logits - logits.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_sampling_matches_the_exact_sequence_distribution():
  model = markov.markov_model(INITIAL, TRANSITIONS)
  samples = ar_sampling.sample(model, jax.random.key(0), jnp.zeros((10000,), jnp.int32), sequence_length=LENGTH)
  initial, transitions = _softmax(INITIAL[0]), _softmax(TRANSITIONS)
  expected = np.array([initial[a] * transitions[0, a, b] * transitions[1, b, c]
                       for a, b, c in itertools.product(range(VOCAB), repeat=3)])
  counts = np.bincount(np.asarray(samples.tokens) @ np.array([9, 3, 1]), minlength=27)
  assert scipy.stats.chisquare(counts, expected * 10000).pvalue > 1e-3
  assert int(samples.target_calls) == LENGTH and samples.tokens_per_call == 1.0 and samples.wall_time > 0


def test_guided_model_combines_conditional_and_null_logits():
  model = ar_sampling.guided(markov.markov_model(INITIAL, TRANSITIONS), 2.5, null_class=1)
  logits, cache = model.init(model.params, jnp.asarray([0, 0]), 4)
  np.testing.assert_allclose(logits[0], INITIAL[0] + 2.5 * (INITIAL[0] - INITIAL[1]), rtol=1e-5)
  step, _ = model.logits_fn(model.params, jnp.asarray([[2], [1]]), cache)
  np.testing.assert_allclose(step[:, 0], TRANSITIONS[0, [2, 1]], rtol=1e-5)  # the chain ignores the class later
  assert ar_sampling.guided(model, 0.0, None) is model


@pytest.fixture(scope="module")
def transformer():
  model = autoregressive.CausalTokenTransformer(vocab_size=16, sequence_length=6, num_classes=3, width=32, depth=2,
                                                num_heads=4, mlp_dim=64)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 6), jnp.int32), jnp.zeros((1,), jnp.int32))
  return model, variables, jax.jit(model.apply)


LABELS = jnp.asarray([0, 1, 2, 3, 1, 0, 2, 1], jnp.int32)


def test_filters_are_respected_and_greedy_is_argmax(transformer):
  model, variables, forward = transformer
  token_model = autoregressive.as_logits_fn(model, variables)
  greedy = ar_sampling.sample(token_model, jax.random.key(1), LABELS, sequence_length=6, temperature=0)
  np.testing.assert_array_equal(greedy.tokens, jnp.argmax(forward(variables, greedy.tokens, LABELS), -1))
  for top_k, top_p in ((3, 1.0), (0, 0.3)):
    output = ar_sampling.sample(token_model, jax.random.key(2), LABELS, sequence_length=6, temperature=1.5,
                                top_k=top_k, top_p=top_p)
    probabilities = ar_sampling.distribution(forward(variables, output.tokens, LABELS), temperature=1.5, top_k=top_k,
                                             top_p=top_p)
    chosen = jnp.take_along_axis(probabilities, output.tokens[..., None], -1)
    assert np.all(chosen > 0), (top_k, top_p)
    assert np.all(np.sum(probabilities > 0, -1) <= (top_k or 16))


def test_guided_greedy_follows_the_guided_teacher_forced_logits(transformer):
  model, variables, forward = transformer
  output = ar_sampling.sample(autoregressive.as_logits_fn(model, variables), jax.random.key(3), LABELS[:4],
                              sequence_length=6, temperature=0, guidance_scale=3.0, null_class=3)
  cond = forward(variables, output.tokens, LABELS[:4])
  uncond = forward(variables, output.tokens, jnp.full((4,), 3))
  np.testing.assert_array_equal(output.tokens, jnp.argmax(cond + 3.0 * (cond - uncond), -1))


def test_examples_do_not_depend_on_their_batch(transformer):
  model, variables, _ = transformer
  token_model = autoregressive.as_logits_fn(model, variables)
  batch = ar_sampling.sample(token_model, jax.random.key(4), LABELS, sequence_length=6)
  alone = ar_sampling.sample(token_model, jax.random.key(4), LABELS[:4], sequence_length=6)
  np.testing.assert_array_equal(alone.tokens, batch.tokens[:4])
  assert len({tuple(row) for row in np.asarray(batch.tokens)}) > 1


def test_samplers_compose_with_jit_and_vmap():
  model = markov.markov_model(INITIAL, TRANSITIONS)
  labels = jnp.zeros((4,), jnp.int32)
  run = lambda key: ar_sampling.sample(model, key, labels, sequence_length=LENGTH).tokens
  keys = jax.random.split(jax.random.key(5), 3)
  np.testing.assert_array_equal(jax.jit(jax.vmap(run))(keys), np.stack([run(key) for key in keys]))


def test_bad_arguments_raise():
  model = markov.markov_model(INITIAL, TRANSITIONS)
  labels = jnp.zeros((2,), jnp.int32)
  for kwargs, message in (({"temperature": -0.5}, "temperature"), ({"top_k": -1}, "top_k"),
                          ({"top_p": 0.0}, "top_p"), ({"sequence_length": 0}, "sequence_length"),
                          ({"guidance_scale": 1.0}, "null_class")):
    with pytest.raises(ValueError, match=message):
      ar_sampling.sample(model, jax.random.key(0), labels, **{"sequence_length": 3, **kwargs})
  with pytest.raises(ValueError, match="class_labels"):
    ar_sampling.sample(model, jax.random.key(0), labels.astype(jnp.float32), sequence_length=3)
  with pytest.raises(ValueError, match="transition_logits"):
    markov.markov_model(INITIAL, TRANSITIONS[:, :2])
