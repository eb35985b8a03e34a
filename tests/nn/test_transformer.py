"""The transformer block's options (norm position, LayerNorm epsilon, GELU form, q/k/v biases) and its KV cache,
against a float64 NumPy oracle; the shared normalisations."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from jaxtok import nn as jnn
from jaxtok.nn import kv_cache

BATCH, TOKENS, FEATURES, HEADS = 2, 7, 16, 4


def _layer_norm(h, scale_bias, epsilon):
  normed = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + epsilon)
  return normed * scale_bias["scale"] + scale_bias["bias"]


def _attention(p, x, allowed):
  """Float64 multi-head self-attention from the layer's parameters; a projection without "bias" has none."""
  project = lambda name: np.einsum("btf,fhd->bthd", x, p[name]["kernel"]) + p[name].get("bias", 0.0)
  q, k, v = project("query"), project("key"), project("value")
  logits = np.where(allowed, np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1]), -np.inf)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  heads = np.einsum("bhqk,bkhd->bqhd", weights / weights.sum(-1, keepdims=True), v)
  return np.einsum("bthd,hdf->btf", heads, p["out"]["kernel"]) + p["out"]["bias"]


def _block_oracle(params, x, allowed, *, norm_position, epsilon, exact_gelu):
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  if exact_gelu:
    gelu = lambda h: 0.5 * h * (1 + special.erf(h / np.sqrt(2)))
  else:
    gelu = lambda h: 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h**3)))
  mlp = lambda h: gelu(h @ p["mlp"]["hidden"]["kernel"] + p["mlp"]["hidden"]["bias"]) @ p["mlp"]["out"]["kernel"] + \
      p["mlp"]["out"]["bias"]
  norm = lambda h, name: _layer_norm(h, p[name], epsilon)
  if norm_position == "pre":
    hidden = x + _attention(p["attention"], norm(x, "attention_norm"), allowed)
    return hidden + mlp(norm(hidden, "mlp_norm"))
  hidden = norm(x + _attention(p["attention"], x, allowed), "attention_norm")
  return norm(hidden + mlp(hidden), "mlp_norm")


def _random_params(params, seed):
  """Every parameter redrawn N(0, 0.5^2), so that LayerNorm scales/biases and zero-initialised biases matter."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(tree, [0.5 * jax.random.normal(k, leaf.shape) for k, leaf in zip(keys, leaves)])


@pytest.mark.parametrize("norm_position, epsilon, activation, qkv_bias", [
    ("pre", 1e-6, "gelu_tanh", True),
    ("pre", 1e-5, "gelu_exact", False),
    ("post", 1e-12, "gelu_exact", True),
])
def test_block_options_match_float64_oracle(norm_position, epsilon, activation, qkv_bias):
  x = np.random.default_rng(0).normal(size=(BATCH, TOKENS, FEATURES))
  block = jnn.TransformerBlock(HEADS, mlp_dim=24, norm_position=norm_position, layer_norm_epsilon=epsilon,
                               activation=activation, qkv_bias=qkv_bias)
  params = _random_params(nn.unbox(block.init(jax.random.key(0), jnp.asarray(x, jnp.float32)))["params"], 1)
  causal = np.tril(np.ones((TOKENS, TOKENS), bool))
  with jax.default_matmul_precision("highest"):
    out = block.apply({"params": params}, jnp.asarray(x, jnp.float32), jnp.asarray(causal)[None, None])
  expected = _block_oracle(params, x, causal, norm_position=norm_position, epsilon=epsilon,
                           exact_gelu=activation == "gelu_exact")
  np.testing.assert_allclose(np.asarray(out), expected, atol=2e-5, rtol=2e-5)


def test_qkv_bias_off_drops_only_the_input_projection_biases():
  x = jnp.zeros((1, TOKENS, FEATURES))
  attention = nn.unbox(jnn.TransformerBlock(HEADS, 24, qkv_bias=False).init(jax.random.key(0), x))["params"]
  attention = attention["attention"]
  assert {name: sorted(attention[name]) for name in attention} == {
      "query": ["kernel"], "key": ["kernel"], "value": ["kernel"], "out": ["bias", "kernel"]}


def test_gelu_forms_differ_and_tanh_is_the_default():
  """The default keeps flax's tanh approximation (today's numerics); the exact form is PyTorch's nn.GELU()."""
  h = jnp.linspace(-4.0, 4.0, 101)
  np.testing.assert_allclose(jnn.transformer.activation("gelu_tanh")(h), nn.gelu(h), rtol=1e-6)
  np.testing.assert_allclose(jnn.transformer.activation("gelu_exact")(h),
                             0.5 * np.asarray(h) * (1 + special.erf(np.asarray(h) / np.sqrt(2))), atol=1e-6)
  assert float(jnp.max(jnp.abs(nn.gelu(h) - nn.gelu(h, approximate=False)))) > 1e-4
  assert jnn.TransformerBlock(1, 1).activation == "gelu_tanh"


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_cached_decoding_equals_the_full_causal_pass(norm_position):
  """Prefill 3 positions, then one at a time: the outputs equal one causal pass over all positions."""
  x = jnp.asarray(np.random.default_rng(1).normal(size=(BATCH, TOKENS, FEATURES)), jnp.float32)
  block = jnn.TransformerBlock(HEADS, 24, norm_position=norm_position)
  params = _random_params(nn.unbox(block.init(jax.random.key(0), x))["params"], 2)
  full = block.apply({"params": params}, x, jnp.tril(jnp.ones((TOKENS, TOKENS), bool))[None, None])
  cache = kv_cache.create(layers=2, batch=BATCH, max_length=TOKENS + 2, kv_heads=HEADS, head_dim=FEATURES // HEADS)
  pieces = []
  for start, stop in [(0, 3)] + [(i, i + 1) for i in range(3, TOKENS)]:
    out, cache = block.apply({"params": params}, x[:, start:stop], kv_cache.attention_mask(cache, stop - start),
                             cache=cache, layer=1)
    cache = kv_cache.advance(cache, stop - start)
    pieces.append(out)
  np.testing.assert_allclose(np.asarray(jnp.concatenate(pieces, 1)), np.asarray(full), atol=1e-5, rtol=1e-5)
  assert not np.any(np.asarray(cache.keys[0])), "only the given layer of the cache is written"


def test_block_rejects_bad_options():
  x = jnp.zeros((1, TOKENS, FEATURES))
  with pytest.raises(ValueError, match="norm_position must be one of"):
    jnn.TransformerBlock(HEADS, 24, norm_position="sandwich").init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="activation must be one of"):
    jnn.TransformerBlock(HEADS, 24, activation="relu6").init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="epsilon must be > 0"):
    jnn.TransformerBlock(HEADS, 24, layer_norm_epsilon=0.0).init(jax.random.key(0), x)
  cache = kv_cache.create(1, 1, TOKENS, HEADS, FEATURES // HEADS)
  with pytest.raises(ValueError, match="self-attention"):
    jnn.MultiHeadAttention(HEADS).init(jax.random.key(0), x, x, cache=cache)


@pytest.mark.parametrize("epsilon", [1e-6, 1e-2])
def test_layer_norm_epsilon(epsilon):
  x = np.random.default_rng(2).normal(size=(3, 5)) * 0.1
  out = jnn.layer_norm(jnp.float32, "norm", epsilon).apply({"params": {"scale": np.ones(5), "bias": np.zeros(5)}},
                                                          jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(np.asarray(out), _layer_norm(x, {"scale": 1.0, "bias": 0.0}, epsilon), atol=1e-5)


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows():
  x = np.random.default_rng(3).normal(size=(4, 3, 6)).astype(np.float32)
  x[1, 2] = 0.0
  out = np.asarray(jnn.l2_normalize(jnp.asarray(x, jnp.bfloat16)))
  assert out.dtype == np.float32
  norms = np.linalg.norm(out, axis=-1)
  np.testing.assert_allclose(np.delete(norms.reshape(-1), 5), 1.0, atol=1e-5)
  assert not np.any(out[1, 2])
  np.testing.assert_allclose(out[0, 0], x[0, 0] / np.linalg.norm(x[0, 0]), atol=1e-2)  # bf16 input
