"""Every sparse-attention backend lowered for its hardware, forward and backward, over the masks and shapes it claims.

Each program returns the attention output and the gradients with respect to q, k and v, so the module must hold
the forward, dq and dk/dv kernels: a silent fallback to XLA fails. Sequence lengths are not multiples of the blocks.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxtok.kernels as sa
from lowering import PLATFORM_OF
from lowering import assert_kernel_calls
from lowering import custom_calls
from lowering import lower

_KERNELS = ("sparse_attention_forward", "sparse_attention_dq", "sparse_attention_dkv")
Q_LEN, K_LEN = 200, 300
_BACKENDS = ("triton", "mosaic_tpu")


def _output_and_gradients(q, k, v, mask_fn, implementation):
  def loss(q, k, v):
    out = sa.sparse_attention(q, k, v, mask_fn(q, k), implementation=implementation)
    return jnp.sum(out.astype(jnp.float32) ** 2), out

  (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(q, k, v)
  return out, grads


def _shapes(batch, heads, kv_heads, head_dim, dtype, q_len=Q_LEN, k_len=K_LEN):
  q = jax.ShapeDtypeStruct((batch, q_len, heads, head_dim), dtype)
  kv = jax.ShapeDtypeStruct((batch, k_len, kv_heads, head_dim), dtype)
  return q, kv, kv


def _tree(nodes: int) -> tuple[int, ...]:
  return tuple(-1 if node < 2 else (node - 1) // 2 for node in range(nodes))


def _masks():
  """Mask builders `(q, k) -> mask` for Q_LEN x K_LEN, one per kind a user can pass."""
  rng = np.random.default_rng(0)
  block_mask = rng.random((1, -(-Q_LEN // 128), -(-K_LEN // 128))) < 0.5
  host_array = rng.random((4, Q_LEN, K_LEN)) < 0.3
  segments = [0] * 80 + [1] * 120
  return {
      "causal": lambda q, k: sa.CausalMask(Q_LEN, K_LEN, offset=K_LEN - Q_LEN),
      "sliding_window": lambda q, k: sa.SlidingWindowMask(Q_LEN, K_LEN, left=64, right=16),
      "prefix_lm": lambda q, k: sa.PrefixLMMask(K_LEN, prefix_length=40),
      "segments": lambda q, k: sa.SegmentMask(segments, segments + [2] * 100, causal=True),
      "tree": lambda q, k: sa.TreeMask(_tree(Q_LEN), context_length=K_LEN - Q_LEN),
      "block_mask": lambda q, k: sa.BlockMask(block_mask, 128, 128, Q_LEN, K_LEN),
      "host_bool_array": lambda q, k: host_array,
      "run_time_bool_array": lambda q, k: jnp.einsum("bqhd,bkhd->bhqk", q[:, :, :1], k[:, :, :1]) > 0,
      "token_selection": lambda q, k: sa.token_selection_mask(q, k, num_selected=96, query_block=64),
      "causal_token_selection": lambda q, k: sa.token_selection_mask(q, k, num_selected=96, query_block=64,
                                                                     causal=True),
  }


@pytest.mark.parametrize("implementation", _BACKENDS)
@pytest.mark.parametrize("kind", sorted(_masks()))
def test_every_mask_lowers(implementation, kind):
  """Grouped-query bfloat16 heads of 64 under every kind of mask (PrefixLM is square: q_len = k_len)."""
  q_len = K_LEN if kind == "prefix_lm" else Q_LEN
  program = functools.partial(_output_and_gradients, mask_fn=_masks()[kind], implementation=implementation)
  module = lower(program, PLATFORM_OF[implementation], *_shapes(2, 4, 2, 64, jnp.bfloat16, q_len=q_len))
  assert_kernel_calls(module, implementation, count=3, names=_KERNELS)


@pytest.mark.parametrize("implementation", _BACKENDS)
@pytest.mark.parametrize("head_dim, dtype, kv_heads", [
    (64, "float32", 4), (64, "bfloat16", 1), (128, "float32", 1), (128, "bfloat16", 4), (256, "float32", 4),
    (256, "bfloat16", 1)])  # every head size in both dtypes, with and without grouped-query heads (4 query heads)
def test_head_sizes_dtypes_and_groups_lower(implementation, head_dim, dtype, kv_heads):
  program = functools.partial(_output_and_gradients, mask_fn=_masks()["causal"], implementation=implementation)
  module = lower(program, PLATFORM_OF[implementation], *_shapes(1, 4, kv_heads, head_dim, jnp.dtype(dtype)))
  assert_kernel_calls(module, implementation, count=3, names=_KERNELS)


@pytest.mark.parametrize("platform, implementation", [("cuda", "triton"), ("tpu", "mosaic_tpu")])
def test_default_lowers_to_the_platforms_kernel(platform, implementation):
  program = functools.partial(_output_and_gradients, mask_fn=_masks()["sliding_window"], implementation=None)
  shapes = _shapes(2, 4, 2, 64, jnp.bfloat16)
  assert_kernel_calls(lower(program, platform, *shapes), implementation, count=3, names=_KERNELS)
  assert not custom_calls(lower(program, "cpu", *shapes))


def test_triton_refuses_heads_it_cannot_hold():
  program = functools.partial(_output_and_gradients, mask_fn=_masks()["causal"], implementation="triton")
  with pytest.raises(NotImplementedError, match="head_dim must be <= 256"):
    lower(program, "cuda", *_shapes(1, 2, 2, 320, jnp.bfloat16))
  default = functools.partial(_output_and_gradients, mask_fn=_masks()["causal"], implementation=None)
  assert not custom_calls(lower(default, "cuda", *_shapes(1, 2, 2, 320, jnp.bfloat16)))
