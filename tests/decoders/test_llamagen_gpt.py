"""LlamaGen's GPT against the official `gpt.py` / `generate.py` (fixtures `official/llamagen_gpt_{c2i,t2i}.npz`):
teacher-forced logits, prefill + one-token decodes, a chunked verify from the cache, the greedy generate() sequence
under guidance through every jaxtok sampler, tree decoding, and the RoPE quirk at the condition positions."""
import functools
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec
import numpy as np
import pytest

from jaxtok import sharding
from jaxtok.convert import llamagen_gpt_from_official
from jaxtok.decoders import ar_sampling
from jaxtok.decoders import llamagen_gpt
from jaxtok.decoders import speculative
from jaxtok.decoders import tree_speculative

OFFICIAL = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "official"
TINY = dict(sequence_length=16, width=32, depth=2, num_heads=2, multiple_of=32)
DECODE_STEPS, CHUNK = 3, 4  # as the fixture maker
GREEDY = dict(cfg_scale=4.0, cfg_interval=5, top_k=8, top_p=0.9)  # the maker's generate() settings


@functools.lru_cache(maxsize=None)
def _load(kind):
  with np.load(OFFICIAL / f"llamagen_gpt_{kind}.npz") as data:
    official = {name: data[name] for name in data.files}
  state_dict = {name[len("state/"):]: value for name, value in official.items() if name.startswith("state/")}
  model, variables = llamagen_gpt_from_official(state_dict, "GPT-B", model_type=kind, **TINY)
  return official, model, variables


def _apply(model):
  """Jitted `model.apply` (eager dispatch is far slower on CPU), the method name static."""
  return jax.jit(model.apply, static_argnames="method")


@pytest.fixture(scope="module", params=["c2i", "t2i"])
def converted(request):
  return (request.param, *_load(request.param))


def _close(ours, reference):
  np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5 * np.abs(reference).max())


def _inputs(official):
  mask = official.get("caption_masks")
  return (jnp.asarray(official["tokens"], jnp.int32), jnp.asarray(official["conditions"]),
          None if mask is None else jnp.asarray(mask))


def test_teacher_forced_logits_equal_the_official(converted):
  _, official, model, variables = converted
  tokens, condition, mask = _inputs(official)
  _close(_apply(model)(variables, tokens, condition, mask), official["teacher_forced_logits"])


def test_prefill_decodes_and_a_chunked_verify_equal_the_official(converted):
  _, official, model, variables = converted
  tokens, condition, mask = _inputs(official)
  apply = _apply(model)
  cache = model.init_cache(tokens.shape[0], model.num_condition_tokens + model.sequence_length)
  logits, cache = apply(variables, condition, cache, mask, method="prefill")
  _close(logits, official["prefill_logits"])
  steps = []
  for index in range(DECODE_STEPS):
    logits, cache = apply(variables, tokens[:, index:index + 1], cache, method="decode")
    steps.append(logits[:, 0])
  _close(jnp.stack(steps, 1), official["decode_logits"])
  logits, cache = apply(variables, tokens[:, DECODE_STEPS:DECODE_STEPS + CHUNK], cache, method="decode")
  _close(logits, official["chunk_logits"])
  np.testing.assert_array_equal(cache.kv.lengths, model.num_condition_tokens + DECODE_STEPS + CHUNK)


def _greedy_setup(kind, official, model, variables):
  if kind == "c2i":
    token_model = llamagen_gpt.as_token_model(model, variables)
    return token_model, jnp.asarray(official["conditions"][:2], jnp.int32), model.num_classes
  token_model = llamagen_gpt.as_token_model(model, variables, official["conditions"], official["caption_masks"])
  count = official["conditions"].shape[0]
  return token_model, jnp.arange(count, dtype=jnp.int32), ar_sampling.PairedNull(count)


@pytest.mark.slow
def test_every_sampler_reproduces_generates_greedy_sequence_under_guidance(converted):
  kind, official, model, variables = converted
  token_model, labels, null = _greedy_setup(kind, official, model, variables)
  target = ar_sampling.llamagen_sampling(token_model, null_class=null, **GREEDY)
  draft = ar_sampling.llamagen_sampling(token_model, null_class=null, cfg_scale=1.0)  # unguided: it disagrees
  greedy = dict(sequence_length=model.sequence_length, temperature=0)
  outputs = {
      "plain": ar_sampling.sample(target, jax.random.key(0), labels, **greedy),
      "lossless": speculative.speculative_sample(target, draft, jax.random.key(1), labels, gamma=3, **greedy),
      "jacobi": speculative.jacobi_sample(target, jax.random.key(2), labels, window=4, **greedy),
      "tree": tree_speculative.tree_sample(target, draft, jax.random.key(3), labels, parents=(-1, 0, 0, 1, 2),
                                           **greedy),
  }
  for name, output in outputs.items():
    np.testing.assert_array_equal(output.tokens, official["greedy_tokens"], err_msg=name)
  assert outputs["lossless"].acceptance_rate < 1.0  # the unguided draft was rejected somewhere: rollbacks ran


def test_tree_nodes_get_the_logits_of_their_paths():
  official, model, variables = _load("c2i")
  tokens, condition, _ = _inputs(official)
  apply = _apply(model)
  cache = model.init_cache(3, 1 + model.sequence_length + 8)
  _, cache = apply(variables, condition, cache, method="prefill")
  _, cache = apply(variables, tokens[:, :2], cache, method="decode")
  parents = (-1, 0, 0, 1, 2)  # two chains of two below the root
  nodes = jnp.stack([tokens[:, 2], tokens[:, 3], tokens[:, 5], tokens[:, 4], tokens[:, 6]], 1)
  tree = jax.jit(lambda v, x, c: model.apply(v, x, c, parents, method="decode_tree"))
  tree_logits, _ = tree(variables, nodes, cache)
  for path in ((0, 1, 3), (0, 2, 4)):
    chain_logits, _ = apply(variables, nodes[:, list(path)], cache, method="decode")
    _close(tree_logits[:, list(path)], chain_logits)


def test_rope_zeroes_the_condition_positions_which_a_plain_rope_at_position_0_would_not(monkeypatch):
  official, model, variables = _load("c2i")
  tokens, condition, _ = _inputs(official)
  table = llamagen_gpt._rope_table(model.grid_size, model.width // model.num_heads, model.rope_base, 1)
  assert not table[0].any()  # cos = sin = 0 at the class token: its query and key are zero
  identity = table.copy()
  identity[0, :, 0] = 1.0  # what RoPE at position 0 would be: cos 1, sin 0
  monkeypatch.setattr(llamagen_gpt, "_rope_table", lambda *args: identity)
  plain = _apply(model)(variables, tokens, condition)
  difference = np.abs(np.asarray(plain) - official["teacher_forced_logits"]).max()
  assert difference > 1e-2, difference  # the fixture tells the two apart


def test_bad_inputs_raise():
  official, model, variables = _load("c2i")
  tokens, condition, _ = _inputs(official)
  with pytest.raises(ValueError, match="tokens must be integer"):
    model.apply(variables, tokens[:, :5], condition)
  with pytest.raises(ValueError, match="integer labels"):
    model.apply(variables, tokens, condition.astype(jnp.float32))
  caption_model = llamagen_gpt.LlamaGenGPT(condition="caption", num_condition_tokens=120, caption_dim=24, **TINY)
  with pytest.raises(ValueError, match="captions"):
    llamagen_gpt.as_token_model(caption_model, {})
  with pytest.raises(ValueError, match="square"):
    llamagen_gpt.LlamaGenGPT(sequence_length=15).init(jax.random.key(0), tokens[:, :15], condition)


def test_sharded_over_a_mesh_the_logits_and_gradients_are_those_of_one_device():
  model = llamagen_gpt.LlamaGenGPT(vocab_size=48, num_classes=10, **{**TINY, "width": 64, "num_heads": 4})
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 48, (4, 16)), jnp.int32)
  labels = jnp.asarray([1, 2, 3, 10], jnp.int32)
  boxed = jax.eval_shape(lambda: model.init(jax.random.key(0), tokens, labels))
  variables = nn.unbox(jax.jit(model.init)(jax.random.key(0), tokens, labels))
  loss = lambda v: jnp.mean(jax.nn.logsumexp(model.apply(v, tokens, labels), -1))
  single_logits, single_grads = jax.jit(model.apply)(variables, tokens, labels), jax.jit(jax.grad(loss))(variables)
  mesh, rules = sharding.make_mesh((1, 4, 2)), sharding.logical_rules("fsdp_tensor")
  shardings = sharding.tree_shardings(boxed, mesh, rules)
  assert shardings["params"]["block0"]["wqkv"].spec == PartitionSpec("fsdp", None, "tensor", None)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    placed = jax.device_put(variables, shardings)
    logits, grads = jax.jit(model.apply)(placed, tokens, labels), jax.jit(jax.grad(loss))(placed)
  np.testing.assert_allclose(logits, single_logits, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), grads, single_grads)
