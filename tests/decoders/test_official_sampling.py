"""`maskgit_sample` with the official options against tables the official 1d-tokenizer `ImageBert.generate` made
(`tests/fixtures/make_official_fixtures.py --family=maskgit`): masked counts and guidance weights per step, and the
exact tokens of deterministic runs; plus the statistics of annealed Gumbel-max sampling and raw-logit confidence."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxtok.decoders import guidance
from jaxtok.decoders import masked_sampling
from jaxtok.decoders import schedules

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "official" / "maskgit_sampling.npz"
TABLES = dict(np.load(FIXTURE))
VOCAB, NUM_CLASSES = 16, 3  # the stand-in network's; class NUM_CLASSES is its dropped (unconditional) class


def _cases(kind: str) -> list[dict[str, np.ndarray]]:
  indices = sorted({int(key.split("/")[1]) for key in TABLES if key.startswith(kind + "/")})
  return [{key.split("/")[2]: value for key, value in TABLES.items() if key.startswith(f"{kind}/{index}/")}
          for index in indices]


@pytest.mark.parametrize("case", _cases("counts"), ids=lambda c: f"n{c['num_tokens']}_T{c['num_steps']}")
def test_masked_counts_equal_the_official_tables(case):
  counts = schedules.masked_counts(int(case["num_steps"]), int(case["num_tokens"]), "arccos", "maskgit")
  np.testing.assert_array_equal(counts, case["masked"])


def test_the_official_count_rule_may_fix_no_token_in_a_step():
  # Four tokens in eight steps: the official rule keeps one masked for five steps; jaxtok's rule refuses T > n.
  np.testing.assert_array_equal(schedules.masked_counts(8, 4, "arccos", "maskgit"), [3, 2, 1, 1, 1, 1, 1, 0])
  with pytest.raises(ValueError, match="num_steps must lie in"):
    schedules.masked_counts(8, 4, "arccos")
  # sqrt over 4 tokens in 3 steps schedules floor(4 (1 - sqrt(1/3))) = 1 masked after step 0: the official rule
  # then fixes nothing at step 1; jaxtok's keeps one token for each later step.
  np.testing.assert_array_equal(schedules.masked_counts(3, 4, "sqrt", "maskgit"), [1, 1, 0])
  np.testing.assert_array_equal(schedules.masked_counts(3, 4, "sqrt"), [2, 1, 0])


@pytest.mark.parametrize("case", _cases("weights"), ids=lambda c: f"{c['decay']}_T{c['num_steps']}")
def test_guidance_weights_equal_the_official_tables(case):
  weights = guidance.guidance_weights(int(case["num_steps"]), float(case["scale"]), str(case["decay"]),
                                      float(case["power"]))
  np.testing.assert_allclose(weights, case["weight"], rtol=2e-7, atol=1e-7)
  # Where the official code called the network once (weight 0), guidance returns the conditional logits exactly.
  single = case["network_calls"] == 1
  assert np.all(case["weight"][single] == 0) and np.all(case["network_calls"][~single] == 2)


def test_jaxtok_linear_inclusive_is_one_step_ahead_of_the_official_linear():
  official = guidance.guidance_weights(8, 4.5, "linear")
  np.testing.assert_allclose(guidance.guidance_weights(8, 4.5, "linear-inclusive")[:-1], official[1:], rtol=1e-6)


def _stand_in_logits_fn(case):
  """The fixture's network: the class's table (the unconditional one for class NUM_CLASSES) + visible * D."""
  conditional = jnp.asarray(case["conditional"])
  unconditional = jnp.asarray(case["unconditional"])

  def logits_fn(tokens, class_labels):
    visible = jnp.sum(tokens != VOCAB, axis=-1).astype(jnp.float32)
    table = jnp.where((class_labels == NUM_CLASSES)[:, None, None], unconditional,
                      conditional[jnp.minimum(class_labels, NUM_CLASSES - 1)])
    return table + visible[:, None, None] * jnp.asarray(case["per_visible"])

  return logits_fn


def _official_options(case) -> dict:
  scale = float(case["scale"])
  return dict(schedule="arccos", count_rule="maskgit", token_sampling="annealed_gumbel", confidence="logit",
              softmax_temperature_annealing=bool(case["softmax_temperature_annealing"]), guidance_scale=scale,
              guidance_schedule=str(case["decay"]), guidance_power=float(case["power"]),
              null_class=NUM_CLASSES if scale != 0 else None)


RUNS = _cases("runs")


@pytest.mark.parametrize("case", RUNS, ids=lambda c: f"{c['decay']}_L{c['conditional'].shape[1]}_T{c['num_steps']}")
def test_deterministic_run_gives_the_official_tokens_at_every_step(case):
  num_steps, length = int(case["num_steps"]), case["conditional"].shape[1]
  labels = jnp.arange(3)
  output = masked_sampling.maskgit_sample(_stand_in_logits_fn(case), jax.random.key(0), labels,
                                          sequence_length=length, mask_id=VOCAB, num_steps=num_steps,
                                          choice_temperature=0.0, return_trajectory=True, **_official_options(case))
  np.testing.assert_array_equal(output.trajectory, case["trajectory"])
  np.testing.assert_array_equal(output.tokens, case["trajectory"][-1])


@pytest.mark.parametrize("case", RUNS, ids=lambda c: f"{c['decay']}_L{c['conditional'].shape[1]}_T{c['num_steps']}")
def test_guided_annealed_logits_equal_the_official_ones(case):
  num_steps, length = int(case["num_steps"]), case["conditional"].shape[1]
  options = _official_options(case)
  logits_fn, labels = _stand_in_logits_fn(case), jnp.arange(3)
  weights = guidance.guidance_weights(num_steps, options["guidance_scale"], options["guidance_schedule"],
                                      options["guidance_power"])
  temperatures = masked_sampling.step_tables(num_steps, 0.0, options["softmax_temperature_annealing"])[
      "softmax_temperature"]
  inputs = np.concatenate([np.full((1, 3, length), VOCAB), case["trajectory"][:-1]])
  for step in range(num_steps):
    tokens = jnp.asarray(inputs[step], jnp.int32)
    guided = guidance.guided_logits(logits_fn(tokens, labels), logits_fn(tokens, jnp.full(3, NUM_CLASSES)),
                                    weights[step], options["guidance_schedule"])
    # float32 rounding of logits of magnitude ~10 (the weights are computed in float64 here, in float32 there).
    np.testing.assert_allclose(guided / temperatures[step], case["logits"][step], rtol=1e-6, atol=1e-5)


def test_annealed_gumbel_draws_follow_the_tempered_softmax():
  logits = jnp.log(jnp.array([0.5, 0.25, 0.15, 0.1]))
  num_samples, noise_scale = 20_000, 1.7
  draws = masked_sampling.draw_candidates(jax.random.key(0), jnp.broadcast_to(logits, (num_samples, 4)), noise_scale,
                                          "annealed_gumbel")
  expected = np.asarray(jax.nn.softmax(logits / noise_scale), np.float64)
  expected = expected / expected.sum() * num_samples
  assert scipy.stats.chisquare(np.bincount(np.asarray(draws), minlength=4), expected).pvalue > 1e-3
  # The untempered distribution is rejected; noise 0 is the argmax.
  untempered = np.asarray(jax.nn.softmax(logits), np.float64)
  untempered = untempered / untempered.sum() * num_samples
  assert scipy.stats.chisquare(np.bincount(np.asarray(draws), minlength=4), untempered).pvalue < 1e-6
  greedy = masked_sampling.draw_candidates(jax.random.key(1), jnp.broadcast_to(logits, (50, 4)), 0.0,
                                           "annealed_gumbel")
  assert np.all(np.asarray(greedy) == 0)


def test_logit_confidence_decodes_the_largest_raw_logit_first():
  # Unit 0: flat, large logits (p = 1/4 each, logit 10); unit 1: peaked, small logits (p ~ 1, logit 0).
  table = jnp.array([[10.0, 10.0, 10.0, 10.0], [0.0, -30.0, -30.0, -30.0]])
  logits_fn = lambda tokens, labels: jnp.broadcast_to(table, (*tokens.shape, 4))

  def first_decoded(confidence):
    output = masked_sampling.maskgit_sample(logits_fn, jax.random.key(2), jnp.zeros(1, jnp.int32),
                                            sequence_length=2, mask_id=4, num_steps=2, schedule="linear",
                                            choice_temperature=0.0, confidence=confidence, return_trajectory=True)
    return int(np.flatnonzero(np.asarray(output.trajectory[0, 0]) != 4)[0])

  assert first_decoded("logit") == 0
  assert first_decoded("log_probability") == 1


@pytest.mark.parametrize("top_p", [0.0, -0.5, 1.5])
@pytest.mark.parametrize("sampler", [masked_sampling.maskgit_sample, masked_sampling.remasking_sample])
def test_top_p_outside_the_unit_interval_raises(sampler, top_p):
  logits_fn = lambda tokens, labels: jnp.zeros((*tokens.shape, 4))
  with pytest.raises(ValueError, match=rf"top_p must lie in \(0, 1\].*got {top_p}"):
    sampler(logits_fn, jax.random.key(0), jnp.zeros(2, jnp.int32), sequence_length=3, mask_id=4, num_steps=3,
            top_p=top_p)


def test_bad_official_options_raise():
  logits_fn = lambda tokens, labels: jnp.zeros((*tokens.shape, 4))
  sample = lambda **kwargs: masked_sampling.maskgit_sample(logits_fn, jax.random.key(0), jnp.zeros(2, jnp.int32),
                                                           sequence_length=3, mask_id=4, num_steps=3, **kwargs)
  for options, message in (({"token_sampling": "nucleus"}, "token_sampling must be one of"),
                           ({"confidence": "entropy"}, "confidence must be one of"),
                           ({"count_rule": "muse"}, "count rule must be one of"),
                           ({"guidance_schedule": "cos", "guidance_scale": 1.0, "null_class": 1},
                            "guidance_schedule must be one of"),
                           ({"choice_temperature": -1.0}, "choice_temperature must be >= 0")):
    with pytest.raises(ValueError, match=message):
      sample(**options)
