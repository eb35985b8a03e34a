"""Pallas Mosaic TPU block-sparse flash attention: the schedule is scalar-prefetched into SMEM and drives the DMAs.

The innermost grid axis walks the entries of a block list; index maps read the table to fetch the listed key (or,
for dk/dv, query) block and its element mask. Entries past a list's count repeat its last block, so the pipeline
fetches nothing new and the body is skipped (`pl.when`). Arrays are laid out heads-major (`[B, H, S, D]`) because
TPU blocks must tile the last two dimensions. Softmax runs in natural log; the log-sum-exp of rows with nothing to
attend is +inf so their probabilities and gradients are exactly zero.
"""
import dataclasses
import functools

import einops
import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from jaxtok.kernels import op
from jaxtok.kernels import tiling
from jaxtok.kernels.sparse_attention import block_tables
from jaxtok.kernels.sparse_attention import tiles
from jaxtok.kernels.sparse_attention import token_selection


_MIN_BLOCK_Q = 32  # int8 element masks tile 32 rows
# Batch, head and outer tile are independent; the innermost axis walks a list and accumulates.
_COMPILER_PARAMS = pltpu.CompilerParams(dimension_semantics=("parallel", "parallel", "parallel", "arbitrary"))


@dataclasses.dataclass(frozen=True)
class BlockSizes(op.BlockSizes):
  """Query and key tiles: block_q a multiple of 32 (int8 mask rows), block_k of 128 (lanes)."""
  block_q: int = 128
  block_k: int = 128

  def validate(self) -> None:
    op.require_multiple(self, ("block_q",), _MIN_BLOCK_Q)
    op.require_multiple(self, ("block_k",), 128)


def unavailable_reason(platform: str, *, head_dim: int, dtype, selection_block: int | None) -> str | None:
  """Why the Mosaic TPU kernels cannot run when lowering for `platform`, or None."""
  del head_dim, dtype
  if platform != "tpu":
    return f"Pallas Mosaic TPU needs a TPU, lowering for {platform!r}"
  if selection_block is not None and selection_block % _MIN_BLOCK_Q:
    return f"a token selection's query_block must be a multiple of {_MIN_BLOCK_Q} on TPU, got {selection_block}"
  return None


def _group_index(layout: block_tables.Layout, b, h, outer, num_outer: int):
  """Flat index of list `outer` of mask group (b, h) in a table flattened from `[Bm, Hm, num_outer]`."""
  mb, mh = layout.mask_group(b, h)
  return (mb * layout.num_head_masks + mh) * num_outer + outer


def _query_program(layout: block_tables.Layout):
  """This (batch, head, query block i, list entry n) program of a query-major grid: (i, n, key blocks num_k, the
  flat index of its key-block list)."""
  b, h, i, n = (pl.program_id(axis) for axis in range(4))
  num_q, num_k = layout.num_blocks
  return i, n, num_k, _group_index(layout, b, h, i, num_q)


def _masked_logits(q, k, partial_ref, partial, q_start, k_start, scale, causal):
  logits = tiles.dot(q, k, 1, 1) * scale
  allowed = (partial_ref[...].astype(jnp.int32) != 0) | (partial < 0)
  if causal:
    rows = q_start + jax.lax.broadcasted_iota(jnp.int32, logits.shape, 0)
    columns = k_start + jax.lax.broadcasted_iota(jnp.int32, logits.shape, 1)
    allowed = allowed & ((columns <= rows) | (partial < 0))
  return jnp.where(allowed, logits, -jnp.inf)


def _forward_kernel(count_ref, block_ref, partial_index_ref, q_ref, k_ref, v_ref, partial_ref, out_ref, lse_ref,
                    acc_ref, max_ref, sum_ref, *, layout, scale):
  i, n, num_k, row = _query_program(layout)

  @pl.when(n == 0)
  def _():
    acc_ref[...] = jnp.zeros(acc_ref.shape, jnp.float32)
    max_ref[...] = jnp.full(max_ref.shape, -jnp.inf, jnp.float32)
    sum_ref[...] = jnp.zeros(sum_ref.shape, jnp.float32)

  @pl.when(n < count_ref[row])
  def _():
    j, partial = block_ref[row * num_k + n], partial_index_ref[row * num_k + n]
    logits = _masked_logits(q_ref[...], k_ref[...], partial_ref, partial, i * layout.block_q, j * layout.block_k,
                            scale, layout.causal)
    row_max = max_ref[...]
    new_max = jnp.maximum(row_max, jnp.max(logits, axis=1, keepdims=True))
    safe_max = jnp.where(new_max == -jnp.inf, 0.0, new_max)
    weights = jnp.exp(logits - safe_max)
    correction = jnp.exp(row_max - safe_max)
    acc_ref[...] = acc_ref[...] * correction + tiles.dot(weights.astype(v_ref.dtype), v_ref[...], 1, 0)
    sum_ref[...] = sum_ref[...] * correction + jnp.sum(weights, axis=1, keepdims=True)
    max_ref[...] = new_max

  @pl.when(n == num_k - 1)
  def _():
    row_sum = sum_ref[...]
    empty = row_sum == 0.0
    out_ref[...] = (acc_ref[...] / jnp.where(empty, 1.0, row_sum)).astype(out_ref.dtype)
    lse_ref[...] = jnp.where(empty, jnp.inf, max_ref[...] + jnp.log(jnp.where(empty, 1.0, row_sum)))


def _dq_kernel(count_ref, block_ref, partial_index_ref, q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref, partial_ref,
               dq_ref, dq_acc_ref, *, layout, scale):
  i, n, num_k, row = _query_program(layout)

  @pl.when(n == 0)
  def _():
    dq_acc_ref[...] = jnp.zeros(dq_acc_ref.shape, jnp.float32)

  @pl.when(n < count_ref[row])
  def _():
    j, partial = block_ref[row * num_k + n], partial_index_ref[row * num_k + n]
    k = k_ref[...]
    logits = _masked_logits(q_ref[...], k, partial_ref, partial, i * layout.block_q, j * layout.block_k, scale,
                            layout.causal)
    probs = jnp.exp(logits - lse_ref[...])
    dlogits = probs * (tiles.dot(do_ref[...], v_ref[...], 1, 1) - delta_ref[...])
    dq_acc_ref[...] += tiles.dot(dlogits.astype(k.dtype), k, 1, 0)

  @pl.when(n == num_k - 1)
  def _():
    dq_ref[...] = (dq_acc_ref[...] * scale).astype(dq_ref.dtype)


def _dkv_kernel(count_ref, block_ref, partial_index_ref, q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref,
                partial_ref, dk_ref, dv_ref, dk_acc_ref, dv_acc_ref, *, layout, scale, group):
  b, kv_head, j, t = (pl.program_id(axis) for axis in range(4))
  num_q, num_k = layout.num_blocks
  column = _group_index(layout, b, kv_head * group + jax.lax.div(t, num_q), j, num_k)
  n = jax.lax.rem(t, num_q)

  @pl.when(t == 0)
  def _():
    dk_acc_ref[...] = jnp.zeros(dk_acc_ref.shape, jnp.float32)
    dv_acc_ref[...] = jnp.zeros(dv_acc_ref.shape, jnp.float32)

  @pl.when(n < count_ref[column])
  def _():
    i, partial = block_ref[column * num_q + n], partial_index_ref[column * num_q + n]
    q, do = q_ref[...], do_ref[...]
    logits = _masked_logits(q, k_ref[...], partial_ref, partial, i * layout.block_q, j * layout.block_k, scale,
                            layout.causal)
    probs = jnp.exp(logits - lse_ref[...])
    dv_acc_ref[...] += tiles.dot(probs.astype(do.dtype), do, 0, 0)
    dlogits = probs * (tiles.dot(do, v_ref[...], 1, 1) - delta_ref[...])
    dk_acc_ref[...] += tiles.dot(dlogits.astype(q.dtype), q, 0, 0)

  @pl.when(t == group * num_q - 1)
  def _():
    dk_ref[...] = (dk_acc_ref[...] * scale).astype(dk_ref.dtype)
    dv_ref[...] = dv_acc_ref[...].astype(dv_ref.dtype)


def _schedule(tables: block_tables.BlockTables, by_query: bool) -> list[jax.Array]:
  """The three lists of one direction, flattened for SMEM (multi-dimensional SMEM arrays are padded)."""
  lists = (tables.kv_count, tables.kv_block, tables.kv_partial) if by_query else (
      tables.q_count, tables.q_block, tables.q_partial)
  return [jnp.ravel(a) for a in lists]


def _partial_spec(tables, lookup):
  """Element mask block of the listed entry (block 0 for full blocks; its contents are then ignored)."""
  rows = tables.partial_blocks.shape[1]
  return pl.BlockSpec((None, rows, tables.block_k),
                      lambda *grid_and_tables: (jnp.maximum(lookup(*grid_and_tables), 0), 0, 0))


def _row_walk_specs(tables, group: int, head_dim: int):
  """Block specs of the forward and dq walks, grid (b, h, i, n): query tile i, its row statistics, the n-th listed
  key tile of i (of kv head h // group) and that tile's element mask."""
  layout = tables.layout
  num_q, num_k = tables.num_blocks
  entry = lambda b, h, i, n: _group_index(layout, b, h, i, num_q) * num_k + n
  listed_key = lambda b, h, i, n, count, block, partial: (b, jax.lax.div(h, group), block[entry(b, h, i, n)], 0)
  return dict(
      query=pl.BlockSpec((None, None, tables.block_q, head_dim), lambda b, h, i, n, *_: (b, h, i, 0)),
      stats=pl.BlockSpec((None, None, tables.block_q, 1), lambda b, h, i, n, *_: (b, h, i, 0)),
      key=pl.BlockSpec((None, None, tables.block_k, head_dim), listed_key),
      partial=_partial_spec(tables, lambda b, h, i, n, count, block, partial: partial[entry(b, h, i, n)]))


def _column_walk_specs(tables, group: int, head_dim: int):
  """Block specs of the dk/dv walk, grid (b, g, j, t): key tile j of kv head g, and at step t the listed query tile
  (with its row statistics and element mask) of the group's query heads in turn, each over its whole list."""
  layout = tables.layout
  num_q, num_k = tables.num_blocks

  def walked(b, g, j, t, table):
    head = g * group + jax.lax.div(t, num_q)
    return head, table[_group_index(layout, b, head, j, num_k) * num_q + jax.lax.rem(t, num_q)]

  listed_query = lambda b, g, j, t, count, block, partial: (b, *walked(b, g, j, t, block), 0)
  return dict(
      query=pl.BlockSpec((None, None, tables.block_q, head_dim), listed_query),
      stats=pl.BlockSpec((None, None, tables.block_q, 1), listed_query),
      key=pl.BlockSpec((None, None, tables.block_k, head_dim), lambda b, g, j, t, *_: (b, g, j, 0)),
      partial=_partial_spec(tables, lambda b, g, j, t, count, block, partial: walked(b, g, j, t, partial)[1]))


def _forward(q, k, v, tables, scale, interpret):
  """q `[B, H, Sq, D]`, k/v `[B, Hkv, Sk, D]` (heads-major) -> out `[B, H, Sq, D]`, lse `[B, H, Sq, 1]`."""
  batch, heads, q_len, head_dim = q.shape
  (num_q, num_k), group, bq, bk = tables.num_blocks, heads // k.shape[1], tables.block_q, tables.block_k
  q = tiling.pad_axis(q, 2, num_q * bq)
  k, v = (tiling.pad_axis(x, 2, num_k * bk) for x in (k, v))
  specs = _row_walk_specs(tables, group, head_dim)
  out, lse = pl.pallas_call(
      functools.partial(_forward_kernel, layout=tables.layout, scale=scale),
      grid_spec=pltpu.PrefetchScalarGridSpec(
          num_scalar_prefetch=3, grid=(batch, heads, num_q, num_k),
          in_specs=[specs["query"], specs["key"], specs["key"], specs["partial"]],
          out_specs=[specs["query"], specs["stats"]],
          scratch_shapes=[pltpu.VMEM((bq, head_dim), jnp.float32), pltpu.VMEM((bq, 1), jnp.float32),
                          pltpu.VMEM((bq, 1), jnp.float32)]),
      out_shape=[jax.ShapeDtypeStruct(q.shape, q.dtype), jax.ShapeDtypeStruct((*q.shape[:3], 1), jnp.float32)],
      compiler_params=_COMPILER_PARAMS, interpret=pltpu.InterpretParams() if interpret else False,
      name="sparse_attention_forward",
  )(*_schedule(tables, by_query=True), q, k, v, tables.partial_blocks)
  return out[:, :, :q_len], lse[:, :, :q_len]


def _backward(q, k, v, out, lse, do, tables, scale, interpret):
  """Heads-major dq `[B, H, Sq, D]`, dk, dv `[B, Hkv, Sk, D]`."""
  batch, heads, q_len, head_dim = q.shape
  kv_heads, k_len = k.shape[1:3]
  (num_q, num_k), group, bq, bk = tables.num_blocks, heads // kv_heads, tables.block_q, tables.block_k
  delta = jnp.sum(out.astype(jnp.float32) * do.astype(jnp.float32), axis=-1, keepdims=True)
  q, do, delta = (tiling.pad_axis(x, 2, num_q * bq) for x in (q, do, delta))
  lse = tiling.pad_axis(lse, 2, num_q * bq, value=jnp.inf)
  k, v = (tiling.pad_axis(x, 2, num_k * bk) for x in (k, v))
  interpret = pltpu.InterpretParams() if interpret else False

  specs = _row_walk_specs(tables, group, head_dim)
  dq = pl.pallas_call(
      functools.partial(_dq_kernel, layout=tables.layout, scale=scale),
      grid_spec=pltpu.PrefetchScalarGridSpec(
          num_scalar_prefetch=3, grid=(batch, heads, num_q, num_k),
          in_specs=[specs["query"], specs["key"], specs["key"], specs["query"], specs["stats"], specs["stats"],
                    specs["partial"]],
          out_specs=specs["query"], scratch_shapes=[pltpu.VMEM((bq, head_dim), jnp.float32)]),
      out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
      compiler_params=_COMPILER_PARAMS, interpret=interpret, name="sparse_attention_dq",
  )(*_schedule(tables, by_query=True), q, k, v, do, lse, delta, tables.partial_blocks)

  specs = _column_walk_specs(tables, group, head_dim)
  dk, dv = pl.pallas_call(
      functools.partial(_dkv_kernel, layout=tables.layout, scale=scale, group=group),
      grid_spec=pltpu.PrefetchScalarGridSpec(
          num_scalar_prefetch=3, grid=(batch, kv_heads, num_k, group * num_q),
          in_specs=[specs["query"], specs["key"], specs["key"], specs["query"], specs["stats"], specs["stats"],
                    specs["partial"]],
          out_specs=[specs["key"], specs["key"]],
          scratch_shapes=[pltpu.VMEM((bk, head_dim), jnp.float32)] * 2),
      out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype)] * 2,
      compiler_params=_COMPILER_PARAMS, interpret=interpret, name="sparse_attention_dkv",
  )(*_schedule(tables, by_query=False), q, k, v, do, lse, delta, tables.partial_blocks)
  return dq[:, :, :q_len], dk[:, :, :k_len], dv[:, :, :k_len]


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _attend(q, k, v, tables, scale, interpret):
  return _forward(q, k, v, tables, scale, interpret)[0]


def _attend_forward(q, k, v, tables, scale, interpret):
  out, lse = _forward(q, k, v, tables, scale, interpret)
  return out, (q, k, v, out, lse, tables)


def _attend_backward(scale, interpret, residuals, do):
  q, k, v, out, lse, tables = residuals
  return (*_backward(q, k, v, out, lse, do, tables, scale, interpret), None)


_attend.defvjp(_attend_forward, _attend_backward)


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask, *, scale: float,
              block_sizes: BlockSizes | None = None, interpret: bool = False) -> jax.Array:
  """Block-sparse attention `[B, Sq, H, D]` for q `[B, Sq, H, D]`, k/v `[B, Sk, Hkv, D]` and any supported mask.

  Query tiles shrink to divide a token selection's query block.
  """
  sizes = block_sizes or BlockSizes()
  if isinstance(mask, token_selection.TokenSelectionMask):
    sizes = dataclasses.replace(sizes, block_q=min(sizes.block_q, mask.query_block))
  sizes.validate()
  tables = block_tables.build(mask, sizes.block_q, sizes.block_k)
  heads_major = lambda x: einops.rearrange(x, "b s h d -> b h s d")
  out = _attend(*map(heads_major, (q, k, v)), tables, scale, interpret)
  return einops.rearrange(out, "b h s d -> b s h d")


BACKEND = op.Backend("mosaic_tpu", ("tpu",), attention, BlockSizes, unavailable_reason)
