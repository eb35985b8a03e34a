"""sparse_attention: every backend that runs on CPU (Pallas in interpret mode) against a float64 NumPy oracle.

The run-time mask path shares one compiled kernel across mask kinds (its tables have one shape), which is both the
design under test and what keeps this file fast; host masks and token selections compile once each.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok import kernels as sa
from jaxtok.kernels.sparse_attention import block_tables
from jaxtok.kernels.sparse_attention import mask as mask_lib
from jaxtok.kernels.sparse_attention import mosaic_tpu
from jaxtok.kernels.sparse_attention import reference
from jaxtok.kernels.sparse_attention import triton

SMALL_BLOCKS = triton.BlockSizes(forward_q=32, forward_k=16, backward_q=16, backward_k=32)
BATCH, Q_LEN, K_LEN, HEADS, KV_HEADS, HEAD_DIM = 2, 45, 75, 4, 2, 64
SCALE = 0.17


def oracle(q, k, v, allowed, scale, d_out):
  """Float64 masked attention and its gradients: (out, dq, dk, dv). allowed: `[B or 1, H or 1, Sq, Sk]`."""
  q, k, v, d_out = (np.asarray(x, np.float64) for x in (q, k, v, d_out))
  group = q.shape[2] // k.shape[2]
  k_full, v_full = np.repeat(k, group, axis=2), np.repeat(v, group, axis=2)
  allowed = np.broadcast_to(allowed, (q.shape[0], q.shape[2], q.shape[1], k.shape[1]))
  logits = np.where(allowed, np.einsum("bqhd,bkhd->bhqk", q, k_full) * scale, -np.inf)
  row_max = logits.max(-1, keepdims=True)
  weights = np.exp(logits - np.where(np.isfinite(row_max), row_max, 0.0))
  total = weights.sum(-1, keepdims=True)
  probs = weights / np.where(total > 0, total, 1.0)
  out = np.einsum("bhqk,bkhd->bqhd", probs, v_full)
  d_probs = np.einsum("bqhd,bkhd->bhqk", d_out, v_full)
  d_logits = probs * (d_probs - (d_probs * probs).sum(-1, keepdims=True))
  dq = np.einsum("bhqk,bkhd->bqhd", d_logits, k_full) * scale
  fold = lambda x: x.reshape(*k.shape[:2], k.shape[2], group, k.shape[3]).sum(3)
  dk = fold(np.einsum("bhqk,bqhd->bkhd", d_logits, q) * scale)
  dv = fold(np.einsum("bhqk,bqhd->bkhd", probs, d_out))
  return out, dq, dk, dv


def _inputs(seed, shapes=((BATCH, Q_LEN, HEADS, HEAD_DIM), (BATCH, K_LEN, KV_HEADS, HEAD_DIM)), dtype=jnp.float32):
  rng = np.random.default_rng(seed)
  q_shape, kv_shape = shapes
  arrays = [rng.normal(size=s) for s in (q_shape, kv_shape, kv_shape, q_shape)]
  return [jnp.asarray(a, dtype) for a in arrays]


def _value_and_grads(attention, q, k, v, d_out):
  out, pullback = jax.vjp(attention, q, k, v)
  return (out, *pullback(d_out))


@functools.partial(jax.jit, static_argnames="backend")
def _run_time_mask_results(q, k, v, d_out, allowed, backend):
  if backend == "triton":
    attention = lambda q, k, v: triton.attention(q, k, v, allowed, scale=SCALE, block_sizes=SMALL_BLOCKS,
                                                 interpret=True)
  else:
    attention = lambda q, k, v: reference.attention(q, k, v, allowed, scale=SCALE)
  return _value_and_grads(attention, q, k, v, d_out)


def _assert_close(results, expected, atol):
  for name, got, want in zip(("out", "dq", "dk", "dv"), results, expected):
    got = np.asarray(got, np.float64)
    assert not np.isnan(got).any(), name
    np.testing.assert_allclose(got, want, atol=atol, rtol=atol, err_msg=name)


def _per_example_masks():
  """Masks of every kind for q_len=45, k_len=75, as `[B, H, Sq, Sk]` bool (shared ones broadcast)."""
  rng = np.random.default_rng(7)
  dense = lambda m: np.broadcast_to(mask_lib.dense(m)[None], (BATCH, HEADS, Q_LEN, K_LEN))
  random_rows = rng.random((BATCH, HEADS, Q_LEN, K_LEN)) < 0.2
  random_rows[0, 1, 3] = False  # a fully masked row
  random_rows[1, :, 40:] = False  # fully masked rows in every head
  segments = [0] * 20 + [1] * 25
  return {
      "causal": dense(mask_lib.CausalMask(Q_LEN, K_LEN, offset=K_LEN - Q_LEN)),
      "sliding_window": dense(mask_lib.SlidingWindowMask(Q_LEN, K_LEN, left=12, right=4)),
      "segments": dense(mask_lib.SegmentMask(segments, segments + [1] * 30)),
      "tree": dense(mask_lib.TreeMask(tuple(int(rng.integers(-1, node)) for node in range(Q_LEN)), 30)),
      "random_per_batch_and_head": random_rows,
      "nothing": np.zeros((BATCH, HEADS, Q_LEN, K_LEN), bool),
  }


@pytest.mark.parametrize("backend", ["xla", "triton"])
@pytest.mark.parametrize("kind", sorted(_per_example_masks()))
def test_run_time_masks_match_float64_oracle(backend, kind):
  allowed = _per_example_masks()[kind]
  q, k, v, d_out = _inputs(seed=len(kind))
  results = _run_time_mask_results(q, k, v, d_out, jnp.asarray(allowed), backend)
  expected = oracle(q, k, v, allowed, SCALE, d_out)
  _assert_close(results, expected, atol=2e-5)
  empty_rows = ~allowed.any(-1)  # [B, H, Sq]
  out, dq = (np.moveaxis(np.asarray(x), 2, 1) for x in results[:2])
  assert (out[empty_rows] == 0).all() and (dq[empty_rows] == 0).all()


def test_one_compiled_kernel_serves_every_run_time_mask_of_a_shape():
  q, k, v, d_out = _inputs(seed=3)
  masks = _per_example_masks()
  _run_time_mask_results(q, k, v, d_out, jnp.asarray(masks["causal"]), "triton")
  compiled = _run_time_mask_results._cache_size()
  for kind in ("tree", "nothing"):
    _run_time_mask_results(q, k, v, d_out, jnp.asarray(masks[kind]), "triton")
  assert _run_time_mask_results._cache_size() == compiled


@pytest.mark.parametrize("mask, dtype, atol", [
    (mask_lib.CausalMask(77, 77), jnp.bfloat16, 3e-2),
    (mask_lib.PrefixLMMask(77, prefix_length=21), jnp.float32, 2e-5),
], ids=["causal_bf16", "prefix_lm_f32"])
def test_host_masks_through_triton_match_float64_oracle(mask, dtype, atol):
  q, k, v, d_out = _inputs(seed=11, shapes=((1, 77, 4, 40), (1, 77, 1, 40)), dtype=dtype)
  attention = lambda q, k, v: triton.attention(q, k, v, mask, scale=SCALE, block_sizes=SMALL_BLOCKS, interpret=True)
  results = jax.jit(lambda *a: _value_and_grads(attention, *a))(q, k, v, d_out)
  _assert_close(results, oracle(q, k, v, mask_lib.dense(mask)[None], SCALE, d_out), atol=atol)


@pytest.mark.parametrize("head_dim", [128, 256])
def test_triton_default_tiles_for_large_heads_match_float64_oracle(head_dim):
  mask = mask_lib.SlidingWindowMask(130, 130, left=70, right=0)
  q, k, v, d_out = _inputs(seed=head_dim, shapes=((1, 130, 2, head_dim), (1, 130, 1, head_dim)))
  attention = lambda q, k, v: triton.attention(q, k, v, mask, scale=SCALE, interpret=True)
  results = jax.jit(lambda *a: _value_and_grads(attention, *a))(q, k, v, d_out)
  _assert_close(results, oracle(q, k, v, mask_lib.dense(mask)[None], SCALE, d_out), atol=2e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_token_selection_through_triton_matches_float64_oracle(causal):
  q, k, v, d_out = _inputs(seed=5)
  q = q[:, :, :, :32]
  k, v = k[:, :45, :, :32], v[:, :45, :, :32]
  d_out = d_out[:, :, :, :32]

  def results(q, k, v, d_out):
    mask = sa.token_selection_mask(q, k, num_selected=13, query_block=16, causal=causal)
    attention = lambda q, k, v: triton.attention(q, k, v, mask, scale=SCALE, block_sizes=SMALL_BLOCKS, interpret=True)
    return _value_and_grads(attention, q, k, v, d_out), mask.dense()

  got, allowed = jax.jit(results)(q, k, v, d_out)
  _assert_close(got, oracle(q, k, v, np.asarray(allowed), SCALE, d_out), atol=2e-5)


TPU_BLOCKS = mosaic_tpu.BlockSizes(block_q=32, block_k=128)


def _tpu_masks():
  """Masks for q_len=45, k_len=150 (two 128-key blocks): random per batch and head with skipped blocks, causal."""
  rng = np.random.default_rng(9)
  random_rows = rng.random((BATCH, HEADS, Q_LEN, 150)) < 0.3
  random_rows[0, :2, :, 128:] = False  # skipped key blocks
  random_rows[1, 3, :32] = False  # a skipped query block
  random_rows[0, 2, 40] = False  # a fully masked row
  causal = mask_lib.dense(mask_lib.CausalMask(Q_LEN, 150, offset=150 - Q_LEN))
  return {"random_per_batch_and_head": random_rows, "causal": np.broadcast_to(causal[None], random_rows.shape)}


@jax.jit
def _tpu_results(q, k, v, d_out, mask):
  attention = lambda q, k, v: mosaic_tpu.attention(q, k, v, mask, scale=SCALE, block_sizes=TPU_BLOCKS, interpret=True)
  return _value_and_grads(attention, q, k, v, d_out)


@pytest.mark.parametrize("kind", ["random_per_batch_and_head", "causal", "token_selection"])
def test_mosaic_tpu_in_interpret_mode_matches_float64_oracle(kind):
  q, k, v, d_out = _inputs(seed=13, shapes=((BATCH, Q_LEN, HEADS, HEAD_DIM), (BATCH, 150, KV_HEADS, HEAD_DIM)))
  if kind == "token_selection":
    mask = sa.token_selection_mask(q, k, num_selected=37, query_block=32, causal=True)
    allowed = np.asarray(mask.dense())
  else:
    allowed = _tpu_masks()[kind]
    mask = jnp.asarray(allowed)
  _assert_close(_tpu_results(q, k, v, d_out, mask), oracle(q, k, v, allowed, SCALE, d_out), atol=2e-5)


def test_mosaic_tpu_rejects_blocks_it_cannot_tile():
  with pytest.raises(ValueError, match="block_k % 128"):
    mosaic_tpu.BlockSizes(block_q=32, block_k=64).validate()


def test_api_runs_the_reference_on_cpu_and_accepts_every_mask_form():
  q, k, v, _ = _inputs(seed=2)
  causal = mask_lib.CausalMask(Q_LEN, K_LEN, offset=K_LEN - Q_LEN)
  dense = mask_lib.dense(causal)
  expected = oracle(q, k, v, dense[None], SCALE, np.zeros(q.shape))[0]
  for mask in (causal, dense, dense[None], jnp.asarray(dense)):
    out = sa.sparse_attention(q, k, v, mask, scale=SCALE)
    np.testing.assert_allclose(np.asarray(out), expected, atol=2e-5, rtol=2e-5)
  default_scale = sa.sparse_attention(q, k, v, causal, implementation="xla")
  np.testing.assert_allclose(np.asarray(default_scale), oracle(q, k, v, dense[None], HEAD_DIM**-0.5,
                                                               np.zeros(q.shape))[0], atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("implementation", ["triton", "mosaic_tpu"])
def test_api_explains_backends_that_cannot_run_here(implementation):
  q, k, v, _ = _inputs(seed=2)
  with pytest.raises(NotImplementedError, match=implementation):
    sa.sparse_attention(q, k, v, mask_lib.CausalMask(Q_LEN, K_LEN), implementation=implementation)


def test_api_lists_only_backends_it_has():
  """There is no Mosaic GPU sparse attention ('triton' serves GPUs), so the name is rejected, not listed."""
  q, k, v, _ = _inputs(seed=2)
  with pytest.raises(ValueError, match=r"one of \('xla', 'triton', 'mosaic_tpu'\), got 'mosaic_gpu'"):
    sa.sparse_attention(q, k, v, mask_lib.CausalMask(Q_LEN, K_LEN), implementation="mosaic_gpu")


@pytest.mark.parametrize("change, message", [
    (dict(implementation="cuda"), "implementation"),
    (dict(mask=np.ones((HEADS, Q_LEN, K_LEN + 1), bool)), "mask must cover"),
    (dict(mask=np.ones((3, Q_LEN, K_LEN), bool)), "mask must cover"),
    (dict(mask=jnp.ones((1, HEADS, Q_LEN, K_LEN), jnp.int32)), "bool"),
    (dict(k=jnp.zeros((BATCH, K_LEN, 3, HEAD_DIM)), v=jnp.zeros((BATCH, K_LEN, 3, HEAD_DIM))), "kv heads must divide"),
    (dict(v=jnp.zeros((BATCH, K_LEN, KV_HEADS, HEAD_DIM), jnp.bfloat16)), "share one dtype"),
    (dict(q=jnp.zeros((Q_LEN, HEADS, HEAD_DIM))), r"q \[B, Sq, H, Dh\]"),
])
def test_api_rejects_malformed_input(change, message):
  q, k, v, _ = _inputs(seed=2)
  arguments = dict(q=q, k=k, v=v, mask=mask_lib.CausalMask(Q_LEN, K_LEN), implementation=None) | change
  with pytest.raises(ValueError, match=message):
    sa.sparse_attention(arguments.pop("q"), arguments.pop("k"), arguments.pop("v"), arguments.pop("mask"),
                        **arguments)


def test_density_of_sparse_masks():
  tables = block_tables.from_structured(mask_lib.SlidingWindowMask(256, 256, left=31), 32, 32)
  np.testing.assert_allclose(float(tables.density()), (8 + 7) / 64)
