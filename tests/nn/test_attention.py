"""The attention layer and transformer block against float64 NumPy oracles; dense and sparse paths agree."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok import nn as jnn
from jaxtok import kernels as sa
from jaxtok.kernels.sparse_attention import mask as mask_lib

BATCH, TOKENS, FEATURES, HEADS, KV_HEADS = 2, 23, 32, 4, 2


def _softmax_attention(q, k, v, allowed):
  """Float64 masked attention on heads; q `[B, Sq, H, D]`, k/v `[B, Sk, Hkv, D]`, allowed `[Sq, Sk]`."""
  group = q.shape[2] // k.shape[2]
  k, v = np.repeat(k, group, axis=2), np.repeat(v, group, axis=2)
  logits = np.where(allowed, np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1]), -np.inf)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  return np.einsum("bhqk,bkhd->bqhd", weights / weights.sum(-1, keepdims=True), v)


def _layer_oracle(params, x, allowed):
  """The layer from its parameters in float64: projections, attention, output projection."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  project = lambda name: np.einsum("btf,fhd->bthd", x, p[name]["kernel"]) + p[name]["bias"]
  heads = _softmax_attention(project("query"), project("key"), project("value"), allowed)
  return np.einsum("bthd,hdf->btf", heads, p["out"]["kernel"]) + p["out"]["bias"]


@pytest.fixture(scope="module")
def inputs():
  return np.random.default_rng(0).normal(size=(BATCH, TOKENS, FEATURES))


@pytest.mark.parametrize("implementation", ["dense", "sparse"])
@pytest.mark.parametrize("mask", [None, sa.CausalMask(TOKENS, TOKENS), sa.SlidingWindowMask(TOKENS, TOKENS, 5, 2)],
                         ids=["full", "causal", "window"])
def test_layer_matches_float64_oracle(inputs, implementation, mask):
  layer = jnn.MultiHeadAttention(HEADS, KV_HEADS, implementation=implementation)
  x = jnp.asarray(inputs, jnp.float32)
  params = nn.unbox(layer.init(jax.random.key(0), x))["params"]
  out = layer.apply({"params": params}, x, mask=mask)
  allowed = np.ones((TOKENS, TOKENS), bool) if mask is None else mask_lib.dense(mask)[0]
  np.testing.assert_allclose(np.asarray(out), _layer_oracle(params, inputs, allowed), atol=2e-5, rtol=2e-5)


def test_dense_and_sparse_layers_share_parameters_and_gradients(inputs):
  x = jnp.asarray(inputs, jnp.float32)
  mask = sa.PrefixLMMask(TOKENS, prefix_length=7)
  layers = [jnn.MultiHeadAttention(HEADS, KV_HEADS, implementation=i) for i in ("dense", "sparse")]
  params = nn.unbox(layers[0].init(jax.random.key(1), x))
  loss = lambda layer: jax.value_and_grad(lambda p: jnp.sum(layer.apply(p, x, mask=mask) ** 2))(params)
  (dense_loss, dense_grads), (sparse_loss, sparse_grads) = map(loss, layers)
  np.testing.assert_allclose(float(sparse_loss), float(dense_loss), rtol=1e-5)
  for got, want in zip(jax.tree.leaves(sparse_grads), jax.tree.leaves(dense_grads)):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4, rtol=1e-4)


def test_cross_attention_with_a_run_time_boolean_mask(inputs):
  x = jnp.asarray(inputs, jnp.float32)
  context = jnp.asarray(np.random.default_rng(2).normal(size=(BATCH, 9, 16)), jnp.float32)
  allowed = np.random.default_rng(3).random((TOKENS, 9)) < 0.5
  allowed[:, 0] = True
  layer = jnn.MultiHeadAttention(HEADS, implementation="sparse", head_dim=8)
  params = nn.unbox(layer.init(jax.random.key(2), x, context))
  out = jax.jit(lambda p, m: layer.apply(p, x, context, mask=m))(params, jnp.asarray(allowed)[None])
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
  project = lambda name, source: np.einsum("btf,fhd->bthd", source, p[name]["kernel"]) + p[name]["bias"]
  heads = _softmax_attention(project("query", inputs), project("key", np.asarray(context, np.float64)),
                             project("value", np.asarray(context, np.float64)), allowed)
  expected = np.einsum("bthd,hdf->btf", heads, p["out"]["kernel"]) + p["out"]["bias"]
  np.testing.assert_allclose(np.asarray(out), expected, atol=2e-5, rtol=2e-5)


def test_transformer_block_is_two_pre_norm_residuals(inputs):
  x = jnp.asarray(inputs, jnp.float32)
  block = jnn.TransformerBlock(HEADS, mlp_dim=48, num_kv_heads=KV_HEADS, implementation="sparse")
  mask = sa.CausalMask(TOKENS, TOKENS)
  params = nn.unbox(block.init(jax.random.key(3), x, mask))["params"]
  out = block.apply({"params": params}, x, mask)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)

  def layer_norm(h, scale_bias):
    normed = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-6)
    return normed * scale_bias["scale"] + scale_bias["bias"]

  gelu = lambda h: 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h**3)))
  hidden = inputs + _layer_oracle(p["attention"], layer_norm(inputs, p["attention_norm"]), mask_lib.dense(mask)[0])
  mlp_in = layer_norm(hidden, p["mlp_norm"])
  mlp_out = gelu(mlp_in @ p["mlp"]["hidden"]["kernel"] + p["mlp"]["hidden"]["bias"])
  expected = hidden + mlp_out @ p["mlp"]["out"]["kernel"] + p["mlp"]["out"]["bias"]
  np.testing.assert_allclose(np.asarray(out), expected, atol=5e-5, rtol=5e-5)


def test_layer_rejects_bad_configuration(inputs):
  x = jnp.asarray(inputs, jnp.float32)
  with pytest.raises(ValueError, match="num_kv_heads must divide"):
    jnn.MultiHeadAttention(HEADS, num_kv_heads=3).init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="implementation must be one of"):
    jnn.MultiHeadAttention(HEADS, implementation="flash").init(jax.random.key(0), x, mask=sa.CausalMask(23, 23))

