"""LlamaGen's generate.py sampling in jaxtok: the official filter tables (CFG-combined, top-k with ties, HF top-p),
where HF top-p differs from jaxtok's, cfg_interval and paired null conditions, and chi-square exactness of every
exact sampler on a converted official model small enough to enumerate (vocabulary 3, 2 x 2 tokens)."""
import functools
import itertools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sequence_oracle import NUM_SAMPLES, VOCAB, chi_square_p_value

from jaxtok.convert import llamagen_gpt_from_official
from jaxtok.decoders import ar_sampling
from jaxtok.decoders import llamagen_gpt
from jaxtok.decoders import logit_filters
from jaxtok.decoders import markov
from jaxtok.decoders import speculative
from jaxtok.decoders import tree_speculative

OFFICIAL = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "official"


@pytest.fixture(scope="module")
def tables():
  with np.load(OFFICIAL / "llamagen_sampling.npz") as data:
    return {name: data[name] for name in data.files}


def test_filter_tables_equal_generate_pys(tables):
  """decode_one_token's probabilities for fixed [cond; uncond] logits: CFG, temperature, top-k (ties kept), top-p."""
  checked = 0
  for index, (scale, flag, temperature, top_k, top_p) in enumerate(tables["settings"]):
    for name in ("logits", "tied_logits"):
      key = f"probabilities_{name}_{index}"
      if key not in tables:
        continue
      logits = tables[name][:, 0]
      cond, uncond = np.split(logits, 2)
      if scale > 1.0:
        logits = uncond + (cond - uncond) * np.float32(scale) if flag else cond
      filtered = logit_filters.llamagen_filter(jnp.asarray(logits), temperature=float(temperature), top_k=int(top_k),
                                               top_p=float(top_p))
      probabilities = np.asarray(jax.nn.softmax(filtered, axis=-1))
      np.testing.assert_array_equal(probabilities > 0, tables[key] > 0, err_msg=key)
      np.testing.assert_allclose(probabilities, tables[key], rtol=1e-5, atol=1e-7, err_msg=key)
      checked += 1
  assert checked == 9
  tied = tables["probabilities_tied_logits_1"]
  assert np.any(np.sum(tied > 0, -1) > 5)  # top-k 5 kept more than 5 somewhere: the ties were kept


def _hf_oracle(logits, p):
  """Hugging Face's rule on one row, in float64: keep sorted entry i while the mass before it is <= p."""
  probabilities = np.exp(logits - logits.max())
  probabilities /= probabilities.sum()
  order = np.argsort(-logits, kind="stable")
  before = np.cumsum(probabilities[order]) - probabilities[order]
  kept = np.zeros(len(logits), bool)
  kept[order[before <= p]] = True
  return kept


def test_hf_top_p_keeps_entries_whose_preceding_mass_is_at_most_p():
  rng = np.random.default_rng(0)
  for _ in range(30):
    logits = rng.normal(size=17) * 2
    p = rng.uniform(0.05, 0.99)
    probabilities = np.sort(np.exp(logits) / np.exp(logits).sum())[::-1]
    if np.min(np.abs(np.cumsum(probabilities) - p)) < 1e-5:
      continue  # within float32 rounding of the boundary
    filtered = np.asarray(logit_filters.hf_top_p_filter(jnp.asarray(logits, jnp.float32), p))
    np.testing.assert_array_equal(np.isfinite(filtered), _hf_oracle(logits, p))


def test_hf_and_jaxtok_top_p_differ_at_the_boundary_and_on_ties():
  logits = jnp.zeros((4,))  # four tokens of probability exactly 1/4; cumulative 1/4, 1/2, 3/4, 1
  hf = np.isfinite(logit_filters.hf_top_p_filter(logits, 0.5))
  nucleus = np.isfinite(logit_filters.top_p_filter(logits, 0.5))
  np.testing.assert_array_equal(hf, [True, True, True, False])  # preceding mass 0, 1/4, 1/2 <= 1/2
  np.testing.assert_array_equal(nucleus, [True] * 4)  # jaxtok: mass 1/2 is reached by 2 tokens; all 4 tie


def test_llamagen_filter_floors_temperature_and_clamps_top_k():
  logits = jnp.asarray([[1.0, 3.0, 2.0]])
  np.testing.assert_allclose(logit_filters.llamagen_filter(logits, temperature=0.0), logits / 1e-5)
  assert np.all(np.isfinite(logit_filters.llamagen_filter(logits, top_k=10)))  # generate.py: min(top_k, vocab)
  with pytest.raises(ValueError, match="top_p"):
    logit_filters.llamagen_filter(logits, top_p=0.0)


def test_guidance_follows_cfg_interval_and_paired_nulls():
  initial = np.random.default_rng(1).normal(size=(4, 3))
  transitions = np.random.default_rng(2).normal(size=(6, 3, 3))
  chain = markov.markov_model(initial, transitions)
  model = ar_sampling.llamagen_sampling(chain, null_class=ar_sampling.PairedNull(2), cfg_scale=3.0, cfg_interval=0)
  logits, cache = model.init(model.params, jnp.asarray([0, 1]), 4)
  guided = lambda cond, uncond: uncond + (cond - uncond) * 3.0
  np.testing.assert_allclose(logits, guided(initial[[0, 1]], initial[[2, 3]]), rtol=1e-5)  # class l pairs l + 2
  step, cache = model.logits_fn(model.params, jnp.asarray([[2, 1], [0, 0]]), cache)
  # Token 1 (after 1 token) is still guided (cfg_interval 0 stops after decode step 0); token 2 is not. The chain's
  # transitions ignore the class, so guidance leaves token 1's logits as they are.
  np.testing.assert_allclose(step[:, 0], transitions[0, [2, 0]], rtol=1e-5)
  np.testing.assert_allclose(step[:, 1], transitions[1, [1, 0]], rtol=1e-5)
  assert np.all(cache.num_tokens == 2)
  with pytest.raises(ValueError, match="null_class"):
    ar_sampling.llamagen_sampling(chain, cfg_scale=2.0)


# Exactness on a converted official model: class 1 of 2, guidance for tokens 0-2 only, temperature and top-k 2.
CLASS, NULL, LENGTH = 1, 2, 4
SETTINGS = dict(cfg_scale=2.5, cfg_interval=1, temperature=1.3, top_k=2)


@functools.lru_cache(maxsize=None)
def _enumerable_models():
  with np.load(OFFICIAL / "llamagen_gpt_enumerable.npz") as data:
    arrays = {name: data[name] for name in data.files}
  models = {}
  for role in ("target", "draft"):
    prefix = f"{role}/state/"
    state_dict = {name[len(prefix):]: value for name, value in arrays.items() if name.startswith(prefix)}
    models[role] = llamagen_gpt_from_official(state_dict, "GPT-B", sequence_length=LENGTH, width=32, depth=1,
                                              num_heads=2, multiple_of=32)
  return models


def _expected_probabilities(model, variables, settings) -> np.ndarray:
  """Probabilities of all 3^4 sequences: teacher-forced logits of class and null, combined and filtered in float64
  as generate.py defines it."""
  sequences = jnp.asarray(list(itertools.product(range(VOCAB), repeat=LENGTH)), jnp.int32)
  forward = jax.jit(model.apply)
  cond = np.asarray(forward(variables, sequences, jnp.full((len(sequences),), CLASS)), np.float64)
  uncond = np.asarray(forward(variables, sequences, jnp.full((len(sequences),), NULL)), np.float64)
  guided_positions = np.arange(LENGTH) <= settings["cfg_interval"] + 1
  logits = np.where(guided_positions[None, :, None], uncond + (cond - uncond) * settings["cfg_scale"], cond)
  logits = logits / settings["temperature"]
  kth = np.sort(logits, -1)[..., -settings["top_k"]][..., None]
  logits = np.where(logits >= kth, logits, -np.inf)
  log_probabilities = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1,
                                             keepdims=True)) - logits.max(-1, keepdims=True)
  chosen = np.take_along_axis(log_probabilities, np.asarray(sequences)[..., None], -1)[..., 0]
  return np.exp(chosen.sum(-1))


@pytest.fixture(scope="module")
def enumerable():
  models = _enumerable_models()
  model, variables = models["target"]
  expected = _expected_probabilities(model, variables, SETTINGS)
  target = ar_sampling.llamagen_sampling(llamagen_gpt.as_token_model(model, variables), null_class=NULL, **SETTINGS)
  draft_model, draft_variables = models["draft"]
  draft = ar_sampling.llamagen_sampling(llamagen_gpt.as_token_model(draft_model, draft_variables), null_class=NULL,
                                        **SETTINGS)
  return target, draft, expected


LABELS = jnp.full((NUM_SAMPLES,), CLASS, jnp.int32)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["plain", "lossless", "jacobi", "tree"])
def test_exact_samplers_draw_generate_pys_distribution(enumerable, sampler):
  target, draft, expected = enumerable
  assert np.isclose(expected.sum(), 1.0) and np.sum(expected > 0) < len(expected)  # top-k removed sequences
  key, common = jax.random.key(5), dict(sequence_length=LENGTH)
  if sampler == "plain":
    output = ar_sampling.sample(target, key, LABELS, **common)
  elif sampler == "lossless":
    output = speculative.speculative_sample(target, draft, key, LABELS, gamma=2, **common)
  elif sampler == "jacobi":
    output = speculative.jacobi_sample(target, key, LABELS, window=2, **common)
  else:
    output = tree_speculative.tree_sample(target, draft, key, LABELS, parents=(-1, 0, 0, 1, 2), **common)
  p_value = chi_square_p_value(output.tokens, expected)
  print(f"{sampler} on converted LlamaGen: chi-square p = {p_value:.3g}, acceptance {output.acceptance_rate:.3f}")
  assert p_value > 1e-3
  if sampler != "plain":
    assert 0.0 < output.acceptance_rate < 1.0


@pytest.mark.slow
def test_the_test_rejects_guidance_past_cfg_interval_and_grouped_decoding(enumerable):
  target, _, expected = enumerable
  model, variables = _enumerable_models()["target"]
  always_guided = ar_sampling.llamagen_sampling(llamagen_gpt.as_token_model(model, variables), null_class=NULL,
                                                **{**SETTINGS, "cfg_interval": -1})
  output = ar_sampling.sample(always_guided, jax.random.key(6), LABELS, sequence_length=LENGTH)
  assert chi_square_p_value(output.tokens, expected) < 1e-6
  grouped = speculative.grouped_sample(target, jax.random.key(7), LABELS, sequence_length=LENGTH, window=2,
                                       group_rule=speculative.NucleusGroup(0.9))
  assert chi_square_p_value(grouped.tokens, expected) < 1e-6  # runs, and is measurably not exact
