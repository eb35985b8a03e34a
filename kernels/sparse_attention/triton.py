"""Pallas Triton (GPU) block-sparse flash attention: forward, dq and dk/dv kernels driven by `BlockTables`.

Each program owns one query block (forward, dq) or one key block (dk/dv) of one head and loops over the blocks its
table lists, with trip counts read from the table: skipped blocks cost nothing, and one compiled kernel serves every
mask of a shape. A list's full blocks come first and run unmasked; its partial blocks follow with their element masks.
Softmax runs in base 2; the forward saves the log2-sum-exp per row (+inf for rows with nothing to attend, so their
probabilities and gradients are exactly zero). Grouped-query attention: the dk/dv program of a kv head loops over the
query heads of its group, so no per-query-head copies of dk, dv are ever written.
"""
import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from jaxtok.kernels import op
from jaxtok.kernels import tiling
from jaxtok.kernels.sparse_attention import block_tables
from jaxtok.kernels.sparse_attention import tiles
from jaxtok.kernels.sparse_attention import token_selection

LOG2E = math.log2(math.e)
# Beyond this (padded) head size the q, k, v tiles and accumulators no longer fit on-chip.
MAX_HEAD_DIM = 256


@dataclasses.dataclass(frozen=True)
class BlockSizes(op.BlockSizes):
  """Tiles (powers of two >= 16) of the forward kernel and of the two backward kernels, and launch parameters.

  The forward defaults are those of jax's Pallas Triton flash attention (measured at 402 TFLOP/s, S=16k, Dh=128 on
  an H100); the backward ones keep dk, dv (or dq) accumulators plus their operands within registers.
  """
  forward_q: int = 128
  forward_k: int = 128
  backward_q: int = 64
  backward_k: int = 64
  num_warps: int = 4
  num_stages: int = 2

  def validate(self) -> None:
    op.require_power_of_two(self, ("forward_q", "forward_k", "backward_q", "backward_k"), 16)  # tl.dot's minimum

  @classmethod
  def for_head_dim(cls, head_dim: int) -> "BlockSizes":
    if head_dim <= 64:
      return cls(num_warps=4, num_stages=3)
    if head_dim <= 128:
      return cls(num_warps=8, num_stages=2)
    return cls(forward_q=64, forward_k=64, backward_q=32, backward_k=32, num_warps=8, num_stages=2)


def unavailable_reason(platform: str, *, head_dim: int, dtype, selection_block: int | None) -> str | None:
  """Why the Triton kernels cannot run when lowering for `platform`, or None (any token selection block works)."""
  del dtype, selection_block  # float32 and bfloat16 both run
  if platform != "cuda":
    return f"Pallas Triton needs a GPU, lowering for {platform!r}"
  if head_dim > MAX_HEAD_DIM:
    return f"head_dim must be <= {MAX_HEAD_DIM} to fit on-chip, got {head_dim}"
  return None


def _mask_logits(logits, partial_ref, partial, q_start, k_start, causal: bool):
  """Applies element mask number `partial` of `partial_ref` to logits `[block_q, block_k]` of a partial block."""
  allowed = partial_ref[partial] != 0
  if causal:
    rows = q_start + jax.lax.broadcasted_iota(jnp.int32, logits.shape, 0)
    columns = k_start + jax.lax.broadcasted_iota(jnp.int32, logits.shape, 1)
    allowed = allowed & (columns <= rows)
  return jnp.where(allowed, logits, -jnp.inf)


def _walk(count_ref, full_count_ref, visit, init, list_index):
  """Runs `visit(masked)` over the full entries of list `list_index`, then (masked) over its partial ones."""
  full_count = full_count_ref[list_index]
  carry = jax.lax.fori_loop(0, full_count, visit(masked=False), init)
  return jax.lax.fori_loop(full_count, count_ref[list_index], visit(masked=True), carry)


def _forward_kernel(count_ref, full_count_ref, block_ref, partial_index_ref, partial_ref, q_ref, k_ref, v_ref,
                    out_ref, lse_ref, *, layout, scale):
  i, h, b = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  mb, mh = layout.mask_group(b, h)
  q = q_ref[...]
  block_q, block_k = q.shape[0], layout.block_k

  def visit(masked):
    def step(n, carry):
      acc, row_max, row_sum = carry
      j = block_ref[mb, mh, i, n]
      keys = pl.ds(j * block_k, block_k)
      logits = tiles.dot(q, k_ref[keys, :], 1, 1) * (scale * LOG2E)
      if masked:
        logits = _mask_logits(logits, partial_ref, partial_index_ref[mb, mh, i, n], i * block_q, j * block_k,
                              layout.causal)
      new_max = jnp.maximum(row_max, jnp.max(logits, axis=1))
      safe_max = jnp.where(new_max == -jnp.inf, 0.0, new_max)
      weights = jnp.exp2(logits - safe_max[:, None])
      correction = jnp.exp2(row_max - safe_max)
      v = v_ref[keys, :]
      acc = acc * correction[:, None] + tiles.dot(weights.astype(v.dtype), v, 1, 0)
      return acc, new_max, row_sum * correction + jnp.sum(weights, axis=1)
    return step

  init = (jnp.zeros(q.shape, jnp.float32), jnp.full((block_q,), -jnp.inf, jnp.float32),
          jnp.zeros((block_q,), jnp.float32))
  acc, row_max, row_sum = _walk(count_ref, full_count_ref, visit, init, (mb, mh, i))
  empty = row_sum == 0.0
  out_ref[...] = (acc / jnp.where(empty, 1.0, row_sum)[:, None]).astype(out_ref.dtype)
  lse_ref[...] = jnp.where(empty, jnp.inf, row_max + jnp.log2(jnp.where(empty, 1.0, row_sum)))


def _dq_kernel(count_ref, full_count_ref, block_ref, partial_index_ref, partial_ref, q_ref, k_ref, v_ref, do_ref,
               lse_ref, delta_ref, dq_ref, *, layout, scale):
  i, h, b = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  mb, mh = layout.mask_group(b, h)
  q, do, lse, delta = q_ref[...], do_ref[...], lse_ref[...], delta_ref[...]
  block_q, block_k = q.shape[0], layout.block_k

  def visit(masked):
    def step(n, dq):
      j = block_ref[mb, mh, i, n]
      keys = pl.ds(j * block_k, block_k)
      k, v = k_ref[keys, :], v_ref[keys, :]
      logits = tiles.dot(q, k, 1, 1) * (scale * LOG2E)
      if masked:
        logits = _mask_logits(logits, partial_ref, partial_index_ref[mb, mh, i, n], i * block_q, j * block_k,
                              layout.causal)
      probs = jnp.exp2(logits - lse[:, None])
      dlogits = probs * (tiles.dot(do, v, 1, 1) - delta[:, None])
      return dq + tiles.dot(dlogits.astype(k.dtype), k, 1, 0)
    return step

  dq = _walk(count_ref, full_count_ref, visit, jnp.zeros(q.shape, jnp.float32), (mb, mh, i))
  dq_ref[...] = (dq * scale).astype(dq_ref.dtype)


def _dkv_kernel(count_ref, full_count_ref, block_ref, partial_index_ref, partial_ref, q_ref, k_ref, v_ref, do_ref,
                lse_ref, delta_ref, dk_ref, dv_ref, *, layout, scale, group):
  j, kv_head, b = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  k, v = k_ref[...], v_ref[...]
  block_q, block_k = layout.block_q, k.shape[0]

  def head(g, carry):
    mb, mh = layout.mask_group(b, kv_head * group + g)

    def visit(masked):
      def step(n, carry):
        dk, dv = carry
        i = block_ref[mb, mh, j, n]
        rows = pl.ds(i * block_q, block_q)
        q, do = q_ref[rows, g, :], do_ref[rows, g, :]
        lse, delta = lse_ref[g, rows], delta_ref[g, rows]
        logits = tiles.dot(q, k, 1, 1) * (scale * LOG2E)
        if masked:
          logits = _mask_logits(logits, partial_ref, partial_index_ref[mb, mh, j, n], i * block_q, j * block_k,
                                layout.causal)
        probs = jnp.exp2(logits - lse[:, None])
        dv = dv + tiles.dot(probs.astype(do.dtype), do, 0, 0)
        dlogits = probs * (tiles.dot(do, v, 1, 1) - delta[:, None])
        return dk + tiles.dot(dlogits.astype(q.dtype), q, 0, 0), dv
      return step

    return _walk(count_ref, full_count_ref, visit, carry, (mb, mh, j))

  zeros = jnp.zeros(k.shape, jnp.float32)
  dk, dv = jax.lax.fori_loop(0, group, head, (zeros, zeros))
  dk_ref[...] = (dk * scale).astype(dk_ref.dtype)
  dv_ref[...] = dv.astype(dv_ref.dtype)


def _whole(array: jax.Array) -> pl.BlockSpec:
  """The whole array in every program (tables, read element by element)."""
  return pl.BlockSpec(array.shape, lambda *_: (0,) * array.ndim)


def _schedule(tables: block_tables.BlockTables, by_query: bool) -> list[jax.Array]:
  if by_query:
    return [tables.kv_count, tables.kv_full_count, tables.kv_block, tables.kv_partial, tables.partial_blocks]
  return [tables.q_count, tables.q_full_count, tables.q_block, tables.q_partial, tables.partial_blocks]


def _forward(q, k, v, tables, scale, sizes, interpret):
  """Returns out `[B, Sq, H, D]` and the log2-sum-exp `[B, H, Sq]` (+inf for rows with nothing to attend)."""
  batch, q_len, heads, head_dim = q.shape
  (num_q, num_k), group = tables.num_blocks, heads // k.shape[2]
  q = tiling.pad_axis(q, 1, num_q * tables.block_q)
  k, v = (tiling.pad_axis(x, 1, num_k * tables.block_k) for x in (k, v))
  schedule = _schedule(tables, by_query=True)
  query_block = pl.BlockSpec((None, tables.block_q, None, head_dim), lambda i, h, b: (b, i, h, 0))
  keys = pl.BlockSpec((None, k.shape[1], None, head_dim), lambda i, h, b: (b, 0, h // group, 0))
  out, lse = pl.pallas_call(
      functools.partial(_forward_kernel, layout=tables.layout, scale=scale),
      grid=(num_q, heads, batch),
      in_specs=[*map(_whole, schedule), query_block, keys, keys],
      out_specs=[query_block, pl.BlockSpec((None, None, tables.block_q), lambda i, h, b: (b, h, i))],
      out_shape=[jax.ShapeDtypeStruct(q.shape, q.dtype),
                 jax.ShapeDtypeStruct((batch, heads, q.shape[1]), jnp.float32)],
      compiler_params=plgpu.CompilerParams(num_warps=sizes.num_warps, num_stages=sizes.num_stages),
      interpret=interpret,
      name="sparse_attention_forward",
  )(*schedule, q, k, v)
  return out[:, :q_len], lse[:, :, :q_len]


def _backward(q, k, v, out, lse, do, tables, scale, sizes, interpret):
  """Returns dq, dk, dv for the output cotangent `do` `[B, Sq, H, D]`."""
  batch, q_len, heads, head_dim = q.shape
  k_len, kv_heads = k.shape[1:3]
  (num_q, num_k), group = tables.num_blocks, heads // kv_heads
  delta = jnp.einsum("bqhd,bqhd->bhq", out.astype(jnp.float32), do.astype(jnp.float32))
  q, do = (tiling.pad_axis(x, 1, num_q * tables.block_q) for x in (q, do))
  lse = tiling.pad_axis(lse, 2, num_q * tables.block_q, value=jnp.inf)  # padded queries get probability zero
  delta = tiling.pad_axis(delta, 2, num_q * tables.block_q)
  k, v = (tiling.pad_axis(x, 1, num_k * tables.block_k) for x in (k, v))
  params = plgpu.CompilerParams(num_warps=sizes.num_warps, num_stages=sizes.num_stages)

  schedule = _schedule(tables, by_query=True)
  query_block = pl.BlockSpec((None, tables.block_q, None, head_dim), lambda i, h, b: (b, i, h, 0))
  row_stats = pl.BlockSpec((None, None, tables.block_q), lambda i, h, b: (b, h, i))
  all_keys = pl.BlockSpec((None, k.shape[1], None, head_dim), lambda i, h, b: (b, 0, h // group, 0))
  dq = pl.pallas_call(
      functools.partial(_dq_kernel, layout=tables.layout, scale=scale),
      grid=(num_q, heads, batch),
      in_specs=[*map(_whole, schedule), query_block, all_keys, all_keys, query_block, row_stats, row_stats],
      out_specs=query_block,
      out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
      compiler_params=params, interpret=interpret, name="sparse_attention_dq",
  )(*schedule, q, k, v, do, lse, delta)

  schedule = _schedule(tables, by_query=False)
  group_queries = pl.BlockSpec((None, q.shape[1], group, head_dim), lambda j, g, b: (b, 0, g, 0))
  group_stats = pl.BlockSpec((None, group, q.shape[1]), lambda j, g, b: (b, g, 0))
  key_block = pl.BlockSpec((None, tables.block_k, None, head_dim), lambda j, g, b: (b, j, g, 0))
  dk, dv = pl.pallas_call(
      functools.partial(_dkv_kernel, layout=tables.layout, scale=scale, group=group),
      grid=(num_k, kv_heads, batch),
      in_specs=[*map(_whole, schedule), group_queries, key_block, key_block, group_queries, group_stats,
                group_stats],
      out_specs=[key_block, key_block],
      out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype)] * 2,
      compiler_params=params, interpret=interpret, name="sparse_attention_dkv",
  )(*schedule, q, k, v, do, lse, delta)
  return dq[:, :q_len], dk[:, :k_len], dv[:, :k_len]


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def _attend(q, k, v, forward_tables, backward_tables, scale, sizes, interpret):
  del backward_tables
  return _forward(q, k, v, forward_tables, scale, sizes, interpret)[0]


def _attend_forward(q, k, v, forward_tables, backward_tables, scale, sizes, interpret):
  out, lse = _forward(q, k, v, forward_tables, scale, sizes, interpret)
  return out, (q, k, v, out, lse, backward_tables)


def _attend_backward(scale, sizes, interpret, residuals, do):
  q, k, v, out, lse, tables = residuals
  dq, dk, dv = _backward(q, k, v, out, lse, do, tables, scale, sizes, interpret)
  return dq, dk, dv, None, None


_attend.defvjp(_attend_forward, _attend_backward)


def _sizes_for_mask(sizes: BlockSizes, mask) -> BlockSizes:
  """Query tiles must divide a token selection's query block."""
  if not isinstance(mask, token_selection.TokenSelectionMask):
    return sizes
  return dataclasses.replace(sizes, forward_q=min(sizes.forward_q, mask.query_block),
                             backward_q=min(sizes.backward_q, mask.query_block))


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask, *, scale: float,
              block_sizes: BlockSizes | None = None, interpret: bool = False) -> jax.Array:
  """Block-sparse attention `[B, Sq, H, D]` for q `[B, Sq, H, D]`, k/v `[B, Sk, Hkv, D]` and any supported mask.

  Without `block_sizes`, `BlockSizes.for_head_dim` picks them; query tiles shrink to divide a token selection's
  query block.
  """
  head_dim = q.shape[-1]
  padded_dim = max(16, tiling.next_power_of_two(head_dim))
  sizes = _sizes_for_mask(block_sizes or BlockSizes.for_head_dim(padded_dim), mask)
  sizes.validate()
  forward_tables = block_tables.build(mask, sizes.forward_q, sizes.forward_k)
  same_blocks = (sizes.forward_q, sizes.forward_k) == (sizes.backward_q, sizes.backward_k)
  backward_tables = forward_tables if same_blocks else block_tables.build(mask, sizes.backward_q, sizes.backward_k)
  q, k, v = (tiling.pad_axis(x, 3, padded_dim) for x in (q, k, v))
  out = _attend(q, k, v, forward_tables, backward_tables, scale, sizes, interpret)
  return out[..., :head_dim]


BACKEND = op.Backend("triton", ("cuda",), attention, BlockSizes, unavailable_reason)
