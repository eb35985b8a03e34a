"""CausalTokenTransformer: cached incremental decoding equals the teacher-forced pass, rollback, loss, shapes, axes."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.decoders import autoregressive
from jaxtok.nn import kv_cache
from jaxtok.decoders import tree_speculative

VOCAB, LENGTH, CLASSES = 16, 8, 3


def _model(dtype="float32"):
  return autoregressive.CausalTokenTransformer(vocab_size=VOCAB, sequence_length=LENGTH, num_classes=CLASSES,
                                               width=32, depth=2, num_heads=4, mlp_dim=64, dtype=dtype)


def _jitted(model, method):
  return jax.jit(functools.partial(model.apply, method=method))


@pytest.fixture(scope="module")
def setup():
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(0, VOCAB, (3, LENGTH)), jnp.int32)
  labels = jnp.asarray([0, 2, CLASSES], jnp.int32)
  model = _model()
  variables = model.init(jax.random.key(0), tokens, labels)
  return model, variables, tokens, labels


def test_incremental_decoding_equals_teacher_forcing(setup):
  model, variables, tokens, labels = setup
  full = jax.jit(model.apply)(variables, tokens, labels)
  assert full.shape == (3, LENGTH, VOCAB) and full.dtype == jnp.float32
  cache = model.init_cache(3, LENGTH + 1)
  first, cache = _jitted(model, "prefill")(variables, labels, cache)
  pieces = [first[:, None]]
  decode = _jitted(model, "decode")
  for start, stop in ((0, 1), (1, 4), (4, 5), (5, 8)):  # chunks of 1 and 3 tokens, as plain and speculative decoding
    logits, cache = decode(variables, tokens[:, start:stop], cache)
    pieces.append(logits)
  np.testing.assert_allclose(np.concatenate(pieces, 1)[:, :LENGTH], full, atol=1e-5, rtol=1e-5)
  np.testing.assert_array_equal(cache.lengths, [LENGTH + 1] * 3)


def test_rollback_per_example_then_redecode(setup):
  model, variables, tokens, labels = setup
  cache = model.init_cache(3, LENGTH + 1)
  _, cache = _jitted(model, "prefill")(variables, labels, cache)
  wrong = (tokens[:, :3] + 1) % VOCAB
  decode = _jitted(model, "decode")
  _, cache = decode(variables, wrong, cache)
  # Example e keeps the first kept[e] wrong tokens, then decodes 3 true tokens (shapes [3, 3] for the jitted decode).
  kept = jnp.asarray([3, 1, 0])
  cache = kv_cache.rollback(cache, kept + 1)
  mixed = jnp.where(jnp.arange(LENGTH)[None] < kept[:, None], jnp.pad(wrong, ((0, 0), (0, LENGTH - 3))), tokens)
  continuation = jax.vmap(lambda row, k: jax.lax.dynamic_slice(row, (k,), (3,)))(mixed, kept)
  logits, cache = decode(variables, continuation, cache)
  full = jax.jit(model.apply)(variables, mixed, labels)
  expected = jax.vmap(lambda rows, k: jax.lax.dynamic_slice_in_dim(rows, k + 1, 3))(full, kept)
  np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=1e-5)
  np.testing.assert_array_equal(cache.lengths, kept + 4)


def test_tree_decoding_equals_teacher_forcing_of_each_path(setup):
  model, variables, tokens, labels = setup
  parents = (-1, 0, 0, 1, 2)
  depths = tree_speculative.tree_depths(parents)
  cache = model.init_cache(3, LENGTH + 1)
  _, cache = _jitted(model, "prefill")(variables, labels, cache)
  decode = _jitted(model, "decode")
  _, cache = decode(variables, tokens[:, :2], cache)
  nodes = jnp.asarray(np.random.default_rng(1).integers(0, VOCAB, (3, len(parents))), jnp.int32)
  tree_logits, tree_cache = jax.jit(lambda v, t, c: model.apply(v, t, c, parents, method="decode_tree"))(
      variables, nodes, cache)
  forward = jax.jit(model.apply)
  for node, depth in enumerate(depths):
    path = [node]
    while parents[path[-1]] >= 0:
      path.append(parents[path[-1]])
    sequence = jnp.concatenate([tokens[:, :2], nodes[:, path[::-1]]], 1)
    sequence = jnp.pad(sequence, ((0, 0), (0, LENGTH - sequence.shape[1])))
    np.testing.assert_allclose(tree_logits[:, node], forward(variables, sequence, labels)[:, 2 + depth + 1],
                               atol=1e-5, rtol=1e-5)
  # Keep the path 0 -> 1 -> 3 of example 0, 0 -> 2 of example 1 and the root alone in example 2, then decode on.
  path, count = jnp.asarray([[0, 1, 3], [0, 2, 0], [0, 0, 0]]), jnp.asarray([3, 2, 1])
  kept = kv_cache.keep_positions(tree_cache, cache.lengths, path, count)
  np.testing.assert_array_equal(kept.lengths, cache.lengths + count)
  following = jnp.asarray([[5], [6], [7]], jnp.int32)
  logits, _ = decode(variables, following, kept)
  path_tokens = np.take_along_axis(np.asarray(nodes), np.asarray(path), 1)
  sequence = np.zeros((3, LENGTH), np.int32)
  for example, kept_count in enumerate(np.asarray(count)):
    row = [*np.asarray(tokens[example, :2]), *path_tokens[example, :kept_count], int(following[example, 0])]
    sequence[example, :len(row)] = row
  expected = forward(variables, sequence, labels)[jnp.arange(3), 2 + count + 1]
  np.testing.assert_allclose(logits[:, 0], expected, atol=1e-5, rtol=1e-5)


def test_rollback_never_raises_lengths():
  cache = kv_cache.create(1, 2, 6, 1, 2)
  cache = kv_cache.advance(cache, 3)
  np.testing.assert_array_equal(kv_cache.rollback(cache, jnp.asarray([5, 1])).lengths, [3, 1])
  with pytest.raises(ValueError, match="new_lengths"):
    kv_cache.rollback(cache, jnp.asarray([1, 1, 1]))


def test_loss_metrics_gradients_and_class_dropout(setup):
  model, variables, tokens, labels = setup
  rngs = {"masking": jax.random.key(1), "dropout": jax.random.key(2)}
  loss_fn = jax.jit(lambda v, dropout, smoothing: model.apply(v, tokens, labels, method="loss", rngs=rngs,
                                                              class_dropout=dropout, label_smoothing=smoothing),
                    static_argnums=1)
  loss, metrics = loss_fn(variables, 0.0, 0.0)
  logits = jax.jit(model.apply)(variables, tokens, labels)
  expected = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[..., None], -1))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(metrics["accuracy"], jnp.mean(jnp.argmax(logits, -1) == tokens))
  all_null, _ = loss_fn(variables, 1.0, 0.0)
  null_logits = jax.jit(model.apply)(variables, tokens, jnp.full_like(labels, CLASSES))
  np.testing.assert_allclose(all_null, -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(null_logits),
                                                                      tokens[..., None], -1)), rtol=1e-5)
  assert not np.isclose(loss_fn(variables, 0.0, 0.1)[0], loss)
  grads = jax.grad(lambda v: loss_fn(v, 0.1, 0.1)[0])(variables)
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_parameters_carry_logical_axes_and_bf16_computes(setup):
  _, variables, tokens, labels = setup
  specs = nn.get_partition_spec(variables)["params"]
  assert specs["token_embedding"] == jax.sharding.PartitionSpec("vocab", "embed")
  assert specs["output"]["kernel"] == jax.sharding.PartitionSpec("embed", "vocab")
  assert specs["block0"]["attention"]["query"]["kernel"] == jax.sharding.PartitionSpec("embed", "heads", "head_dim")
  bf16 = _model("bfloat16")
  logits = bf16.apply(variables, tokens, labels)
  assert logits.dtype == jnp.float32
  np.testing.assert_allclose(logits, _model().apply(variables, tokens, labels), atol=0.1)


def test_bad_inputs_raise(setup):
  model, variables, tokens, labels = setup
  with pytest.raises(ValueError, match=f"batch, {LENGTH}"):
    model.apply(variables, tokens[:, :5], labels)
  with pytest.raises(ValueError, match="class_labels"):
    model.apply(variables, tokens, labels[:2])
  with pytest.raises(ValueError, match="integer"):
    model.apply(variables, tokens.astype(jnp.float32), labels)
  with pytest.raises(ValueError, match="tokens must be"):
    model.apply(variables, tokens[0], model.init_cache(3, 4), method="decode")
  with pytest.raises(ValueError, match="num_heads must divide width"):
    autoregressive.CausalTokenTransformer(VOCAB, LENGTH, CLASSES, width=30, num_heads=4).init(
        jax.random.key(0), tokens, labels)
