"""VectorQuantizer against float64 NumPy oracles: nearest codes, EMA step, dead-code restart, k-means, errors."""
import hypothesis
from hypothesis import strategies as st
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.quantizers import VectorQuantizer

KEYS = {"params": jax.random.PRNGKey(0), "quantizer": jax.random.PRNGKey(1)}


def _train_step(model, variables, x, seed=1):
  out, state = model.apply(variables, x, train=True, mutable=["quantizer"],
                           rngs={"quantizer": jax.random.PRNGKey(seed)})
  return out, {**variables, **state}


def _nearest(z: np.ndarray, codebook: np.ndarray) -> np.ndarray:
  return np.argmin(((z[:, None, :] - codebook[None]) ** 2).sum(-1), axis=1)


@hypothesis.settings(max_examples=6, deadline=None)
@hypothesis.given(leading=st.sampled_from([(5,), (2, 3), (2, 1, 4)]), dim=st.sampled_from([3, 8]),
                  dtype=st.sampled_from([jnp.float32, jnp.bfloat16]), seed=st.integers(0, 1000))
def test_quantized_values_are_the_nearest_codes(leading, dim, dtype, seed):
  x = jnp.asarray(np.random.default_rng(seed).normal(size=leading + (dim,)), dtype)
  model = VectorQuantizer(codebook_size=16)
  variables = nn.unbox(model.init(KEYS, x))
  out = model.apply(variables, x)
  codebook = np.asarray(variables["params"]["codebook"], np.float64)
  assert out.quantized.shape == x.shape and out.quantized.dtype == dtype and out.indices.shape == leading
  expected = _nearest(np.asarray(x, np.float64).reshape(-1, dim), codebook)
  np.testing.assert_array_equal(np.asarray(out.indices).reshape(-1), expected)
  np.testing.assert_allclose(np.asarray(out.quantized, np.float64).reshape(-1, dim), codebook[expected],
                             rtol=1e-2 if dtype == jnp.bfloat16 else 1e-6, atol=1e-6)


def test_loss_and_metrics_match_numpy():
  x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
  model = VectorQuantizer(codebook_size=8, commitment_cost=0.3, codebook_cost=0.7)
  variables = nn.unbox(model.init(KEYS, x))
  out = model.apply(variables, x)
  codes = np.asarray(variables["params"]["codebook"], np.float64)[np.asarray(out.indices)]
  squared_error = np.mean((x - codes) ** 2)
  np.testing.assert_allclose(float(out.loss), (0.3 + 0.7) * squared_error, rtol=1e-5)
  np.testing.assert_allclose(float(out.metrics["quantization_error"]), squared_error * 4, rtol=1e-5)
  assert float(out.metrics["codebook_usage"]) == pytest.approx(len(set(np.asarray(out.indices).tolist())) / 8)


@pytest.mark.parametrize("options", [{}, {"codebook_dim": 3, "distance": "cosine"}, {"use_ema": True}])
def test_indices_to_codes_and_codes_to_indices_round_trip(options):
  x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 5, 6)), jnp.float32)
  model = VectorQuantizer(codebook_size=32, **options)
  variables = nn.unbox(model.init(KEYS, x))
  out = model.apply(variables, x)
  np.testing.assert_allclose(model.apply(variables, out.indices, method="indices_to_codes"), out.quantized,
                             rtol=1e-6, atol=1e-6)
  all_codes = jnp.arange(32)
  if "codebook_dim" in options:
    codebook = variables["params"]["codebook"]
    all_codes_space = codebook / jnp.linalg.norm(codebook, axis=-1, keepdims=True)
  else:
    all_codes_space = model.apply(variables, all_codes, method="indices_to_codes")
  np.testing.assert_array_equal(model.apply(variables, all_codes_space, method="codes_to_indices"), all_codes)


def test_straight_through_gradient_is_identity_and_rotation_differs():
  x = jnp.asarray(np.random.default_rng(2).normal(size=(12, 4)), jnp.float32)
  cotangent = jnp.asarray(np.random.default_rng(3).normal(size=(12, 4)), jnp.float32)
  grads = {}
  for estimator in ("ste", "rotation"):
    model = VectorQuantizer(codebook_size=8, estimator=estimator)
    variables = nn.unbox(model.init(KEYS, x))
    grads[estimator] = jax.grad(lambda v: jnp.sum(model.apply(variables, v).quantized * cotangent))(x)
  np.testing.assert_allclose(grads["ste"], cotangent, rtol=0, atol=0)
  assert float(jnp.max(jnp.abs(grads["rotation"] - cotangent))) > 0.1


def test_ema_update_equals_closed_form_after_one_step():
  decay, epsilon, size = 0.9, 1e-3, 8
  x = np.random.default_rng(4).normal(size=(40, 3)).astype(np.float32)
  model = VectorQuantizer(codebook_size=size, use_ema=True, ema_decay=decay, ema_epsilon=epsilon)
  variables = nn.unbox(model.init(KEYS, x))
  out, variables_after = _train_step(model, variables, x)
  codebook0 = np.asarray(variables["quantizer"]["codebook"], np.float64)
  indices = _nearest(x.astype(np.float64), codebook0)
  np.testing.assert_array_equal(np.asarray(out.indices), indices)
  counts = np.bincount(indices, minlength=size)
  sums = np.zeros((size, 3))
  np.add.at(sums, indices, x.astype(np.float64))
  cluster_size = decay * 1.0 + (1 - decay) * counts
  embed_sum = decay * codebook0 + (1 - decay) * sums
  total = cluster_size.sum()
  expected = embed_sum / ((cluster_size + epsilon) / (total + size * epsilon) * total)[:, None]
  state = variables_after["quantizer"]
  np.testing.assert_allclose(state["cluster_size"], cluster_size, rtol=1e-5)
  np.testing.assert_allclose(state["embed_sum"], embed_sum, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(state["codebook"], expected, rtol=1e-5, atol=1e-6)
  assert float(out.loss) == pytest.approx(0.25 * np.mean((x - codebook0[indices]) ** 2), rel=1e-5)


@pytest.mark.parametrize("use_ema", [False, True])
def test_dead_code_restart_raises_usage_on_a_collapsed_codebook(use_ema):
  x = np.random.default_rng(5).normal(size=(64, 4)).astype(np.float32)
  model = VectorQuantizer(codebook_size=8, use_ema=use_ema, dead_code_window=1)
  variables = nn.unbox(model.init(KEYS, x))
  collapsed = np.full((8, 4), 100.0, np.float32)
  collapsed[0] = 0.0
  collection = "quantizer" if use_ema else "params"
  variables = jax.tree.map(lambda a: a, variables)
  variables[collection]["codebook"] = jnp.asarray(collapsed)
  if use_ema:
    variables["quantizer"]["embed_sum"] = jnp.asarray(collapsed)
  first, variables = _train_step(model, variables, x)
  assert float(first.metrics["codebook_usage"]) == pytest.approx(1 / 8)
  assert float(first.metrics["restarted_codes"]) == 7
  second, _ = _train_step(model, variables, x, seed=2)
  assert float(second.metrics["codebook_usage"]) >= 0.5
  codebook = np.asarray(model.apply(variables, jnp.arange(8), method="indices_to_codes"))
  rows_from_batch = [np.any(np.all(np.isclose(row, x, atol=1e-5), axis=1)) for row in codebook[1:]]
  assert all(rows_from_batch)


@pytest.mark.parametrize("use_ema", [False, True])
def test_kmeans_init_finds_separated_clusters_on_the_first_training_batch(use_ema):
  rng = np.random.default_rng(6)
  centres = rng.normal(size=(4, 3)) * 20
  x = (centres[rng.integers(0, 4, 200)] + 0.1 * rng.normal(size=(200, 3))).astype(np.float32)
  model = VectorQuantizer(codebook_size=4, kmeans_init=True, use_ema=use_ema, ema_decay=0.5)
  variables = nn.unbox(model.init(KEYS, x))
  out, variables = _train_step(model, variables, x)
  assert bool(variables["quantizer"]["initialized"])
  assert float(out.metrics["quantization_error"]) < 0.1
  codebook = np.asarray(model.apply(variables, jnp.arange(4), method="indices_to_codes"))
  distances = np.linalg.norm(codebook[:, None] - centres[None], axis=-1)
  assert sorted(np.argmin(distances, axis=1)) == [0, 1, 2, 3] and distances.min(axis=1).max() < 0.5


def test_state_is_untouched_without_train_or_mutable_collection():
  x = np.random.default_rng(7).normal(size=(10, 4)).astype(np.float32)
  model = VectorQuantizer(codebook_size=8, use_ema=True, dead_code_window=1)
  variables = nn.unbox(model.init(KEYS, x))
  _, state = model.apply(variables, x, train=False, mutable=["quantizer"])
  jax.tree.map(np.testing.assert_array_equal, state["quantizer"], variables["quantizer"])
  model.apply(variables, x, train=True, rngs={"quantizer": KEYS["quantizer"]})


def test_entropy_penalty_matches_numpy():
  x = np.random.default_rng(8).normal(size=(16, 3)).astype(np.float32)
  model = VectorQuantizer(codebook_size=8, entropy_cost=0.5, entropy_temperature=2.0, commitment_cost=0.0,
                          codebook_cost=0.0)
  variables = nn.unbox(model.init(KEYS, x))
  out = model.apply(variables, x)
  codebook = np.asarray(variables["params"]["codebook"], np.float64)
  logits = -((x[:, None, :].astype(np.float64) - codebook[None]) ** 2).sum(-1) / 2.0
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  entropy = lambda p: -np.sum(p * np.log(p), axis=-1)
  expected = 0.5 * (np.mean(entropy(probs)) - entropy(probs.mean(0)))
  np.testing.assert_allclose(float(out.loss), expected, rtol=1e-4, atol=1e-6)


def test_bad_inputs_raise_value_errors_naming_expected_and_received():
  model = VectorQuantizer(codebook_size=8)
  variables = nn.unbox(model.init(KEYS, jnp.zeros((2, 4))))
  with pytest.raises(ValueError, match=r"expects input \[..., 4\], got shape \(2, 5\)"):
    model.apply(variables, jnp.zeros((2, 5)))
  with pytest.raises(ValueError, match="floating-point input .* got dtype int32"):
    model.apply(variables, jnp.zeros((2, 4), jnp.int32))
  with pytest.raises(ValueError, match="distance must be one of .* got 'dot'"):
    VectorQuantizer(codebook_size=8, distance="dot").init(KEYS, jnp.zeros((2, 4)))
  with pytest.raises(ValueError, match="integer indices, got dtype float32"):
    model.apply(variables, jnp.zeros((3,)), method="indices_to_codes")
