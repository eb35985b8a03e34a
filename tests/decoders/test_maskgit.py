"""MaskedTokenTransformer, its masking and its masked-token loss."""
import flax.linen as nn
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxtok import sharding
from jaxtok.decoders import maskgit

VOCAB, LENGTH, CLASSES = 12, 6, 4


def _model(num_codebooks=1, dtype="float32", dropout_rate=0.1):
  return maskgit.MaskedTokenTransformer(vocab_size=VOCAB, sequence_length=LENGTH, num_classes=CLASSES,
                                        num_codebooks=num_codebooks, width=32, depth=1, num_heads=2, mlp_dim=64,
                                        dropout_rate=dropout_rate, dtype=dtype)


def _tokens(key, batch, num_codebooks=None):
  shape = (batch, LENGTH) if num_codebooks is None else (batch, LENGTH, num_codebooks)
  return jax.random.randint(key, shape, 0, VOCAB)


def _jitted(model):
  """(apply, loss) of `model`, jitted once: loss(variables, tokens, labels, key, train, class_dropout)."""
  apply = jax.jit(model.apply)

  @jax.jit
  def loss(variables, tokens, labels, key, class_dropout):
    masking_key, dropout_key = jax.random.split(key)
    return model.apply(variables, tokens, labels, method="loss", class_dropout=class_dropout,
                       rngs={"masking": masking_key, "dropout": dropout_key})

  return apply, loss


@pytest.fixture(scope="module")
def single():
  model = _model()
  tokens, labels = _tokens(jax.random.key(1), 3), jnp.array([0, 3, CLASSES])
  return model, jax.jit(model.init)(jax.random.key(0), tokens, labels), tokens, labels, *_jitted(model)


def test_init_under_jit_has_logical_axes_and_shapes(single):
  model, variables, tokens, labels, apply, _ = single
  params = variables["params"]
  assert model.mask_id == VOCAB and model.null_class == CLASSES
  assert params["token_embedding"].value.shape == (1, VOCAB + 1, 32)
  assert params["class_embedding"].value.shape == (CLASSES + 1, 32)
  assert params["head_kernel"].value.shape == (32, 1, VOCAB)
  specs = nn.get_partition_spec(variables)["params"]
  assert tuple(specs["head_kernel"]) == ("embed", "codebook", "vocab")
  assert tuple(specs["block0"]["mlp"]["hidden"]["kernel"]) == ("embed", "mlp")
  logits = apply(variables, tokens.at[:, 2].set(model.mask_id), labels)
  assert logits.shape == (3, LENGTH, VOCAB) and logits.dtype == jnp.float32
  assert np.all(np.isfinite(logits))


def test_parameters_shard_on_a_mesh(single):
  """Parameters placed by their logical axes on a (data, fsdp, tensor) = (2, 2, 2) mesh give the same logits."""
  model, variables, tokens, labels, apply, _ = single
  mesh = sharding.make_mesh((2, 2, 2))
  shardings = sharding.tree_shardings(variables, mesh, sharding.logical_rules("fsdp_tensor"))
  assert tuple(shardings["params"]["head_kernel"].spec) == ("fsdp", None, "tensor")
  placed = jax.device_put(nn.unbox(variables), shardings)
  batch = jnp.concatenate([tokens, tokens[:1]]), jnp.concatenate([labels, labels[:1]])
  sharded = jax.jit(model.apply)(placed, *jax.device_put(batch, sharding.batch_sharding(mesh)))
  np.testing.assert_allclose(sharded, apply(variables, *batch), rtol=1e-5, atol=1e-5)


def test_bfloat16_multi_codebook_logits():
  model = _model(num_codebooks=2, dtype="bfloat16")
  apply, loss_fn = _jitted(model)
  tokens, labels = _tokens(jax.random.key(2), 2, num_codebooks=2), jnp.array([1, CLASSES])
  variables = jax.jit(model.init)(jax.random.key(0), tokens, labels)
  logits = apply(variables, tokens, labels)
  assert logits.shape == (2, LENGTH, 2, VOCAB) and logits.dtype == jnp.float32
  # The two codebooks' heads differ, and each position's embedding sums both codebooks.
  assert not np.allclose(logits[:, :, 0], logits[:, :, 1])
  changed = apply(variables, tokens.at[:, 0, 1].set(VOCAB), labels)
  assert not np.allclose(changed[:, 0], logits[:, 0])
  loss, metrics = loss_fn(variables, tokens, labels, jax.random.key(3), 0.1)
  assert np.isfinite(loss) and 0 < metrics["masked_fraction"] <= 1


def test_loss_gradient_finite_and_nonzero(single):
  model, variables, tokens, labels, _, loss_fn = single
  loss, grads = jax.jit(jax.value_and_grad(lambda v: loss_fn(v, tokens, labels, jax.random.key(5), 0.1)[0]))(variables)
  leaves = [np.asarray(g) for g in jax.tree.leaves(nn.unbox(grads))]
  assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in leaves)
  assert np.abs(np.asarray(nn.unbox(grads)["params"]["head_kernel"])).sum() > 0
  assert np.abs(np.asarray(nn.unbox(grads)["params"]["block0"]["mlp"]["hidden"]["kernel"])).sum() > 0


def test_class_dropout_one_equals_null_class(single):
  model, variables, tokens, labels, _, loss_fn = single
  # One key: the three runs share their masks and dropout.
  dropped = loss_fn(variables, tokens, labels, jax.random.key(7), 1.0)
  null = loss_fn(variables, tokens, jnp.full_like(labels, CLASSES), jax.random.key(7), 0.0)
  kept = loss_fn(variables, tokens, labels, jax.random.key(7), 0.0)
  np.testing.assert_allclose(dropped[0], null[0], rtol=1e-6)
  assert abs(float(dropped[0]) - float(kept[0])) > 1e-6


def test_bad_inputs_raise(single):
  model, variables, tokens, labels, _, _ = single
  with pytest.raises(ValueError, match=r"tokens must have shape \[batch, 6\]"):
    model.apply(variables, tokens[:, :4], labels)
  with pytest.raises(ValueError, match="class_labels must have shape"):
    model.apply(variables, tokens, labels[:2])
  with pytest.raises(ValueError, match="integer"):
    model.apply(variables, tokens.astype(jnp.float32), labels)
  with pytest.raises(ValueError, match="logits"):
    maskgit.masked_token_loss(jnp.zeros((2, 3, 5)), jnp.zeros((2, 4), jnp.int32), jnp.ones((2, 4), bool))
  with pytest.raises(ValueError, match="label_smoothing"):
    maskgit.masked_token_loss(jnp.zeros((2, 3, 5)), jnp.zeros((2, 3), jnp.int32), jnp.ones((2, 3), bool), 1.0)


_loss = jax.jit(maskgit.masked_token_loss, static_argnums=3)
_mask = jax.jit(maskgit.mask_tokens, static_argnums=(2, 3))


@hypothesis.settings(deadline=None, max_examples=25)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), smoothing=st.sampled_from([0.0, 0.1, 0.3]))
def test_loss_counts_masked_positions_only(seed, smoothing):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(2, 5, 7)).astype(np.float32)
  targets = rng.integers(0, 7, size=(2, 5))
  is_masked = rng.random((2, 5)) < 0.5
  is_masked[0, 0] = True
  loss, metrics = _loss(logits, targets, is_masked, smoothing)
  # Direct definition: mean over masked units of -sum(smoothed target * log softmax).
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  smoothed = (1 - smoothing) * np.eye(7)[targets] + smoothing / 7
  expected = (-(smoothed * log_probs).sum(-1))[is_masked].mean()
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(metrics["accuracy"], (logits.argmax(-1) == targets)[is_masked].mean(), rtol=1e-6)
  perturbed = np.where(is_masked[..., None], logits, rng.normal(size=logits.shape) * 10).astype(np.float32)
  np.testing.assert_allclose(_loss(perturbed, targets, is_masked, smoothing)[0], loss, rtol=1e-6)
  masked_perturbed = np.where(is_masked[..., None], logits + rng.normal(size=logits.shape), logits)
  assert abs(float(_loss(masked_perturbed.astype(np.float32), targets, is_masked, smoothing)[0]) - float(loss)) > 1e-6


def test_mask_tokens_fraction_follows_schedule():
  """The masked fraction of each example is ceil(cos(pi/2 t) n) / n for t ~ U[0, 1): KS test against that law."""
  num_units = 1000
  tokens = jnp.zeros((1500, num_units // 2, 2), jnp.int32)
  masked, is_masked = _mask(jax.random.key(0), tokens, "cosine", 99)
  masked, is_masked = np.asarray(masked), np.asarray(is_masked)
  np.testing.assert_array_equal(masked, np.where(is_masked, 99, 0))
  fractions = is_masked.reshape(1500, -1).mean(1)
  assert fractions.min() >= 1 / num_units
  # P(cos(pi/2 U) <= x) = 1 - 2 arccos(x) / pi; the ceil moves a fraction by < 1/n.
  result = scipy.stats.kstest(fractions - 0.5 / num_units, lambda x: 1 - 2 * np.arccos(np.clip(x, 0, 1)) / np.pi)
  assert result.pvalue > 1e-3
  linear = _mask(jax.random.key(0), tokens[:300], "linear", 99)[1].reshape(300, -1).mean(1)
  assert scipy.stats.kstest(np.asarray(linear), lambda x: 1 - 2 * np.arccos(np.clip(x, 0, 1)) / np.pi).pvalue < 1e-3


def test_mask_tokens_at_least_one_and_per_example_keys():
  tokens = jnp.arange(2 * 3).reshape(2, 3) % 3
  for seed in range(20):
    _, is_masked = _mask(jax.random.key(seed), tokens, "sqrt", 3)
    assert np.all(np.asarray(is_masked).sum(1) >= 1)
  big = jnp.zeros((5, 40), jnp.int32)
  np.testing.assert_array_equal(_mask(jax.random.key(1), big, "cosine", 7)[1][:2],
                                _mask(jax.random.key(1), big[:2], "cosine", 7)[1])
