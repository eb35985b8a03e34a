"""Block schedules (in the spirit of splash attention's MaskInfo): which (query block, key block) pairs to visit.

Per mask group (batch or 1, heads or 1) and block pair the kind is 0 = skip, 1 = partial (an element mask applies),
2 = full. Kernels never see the kinds directly: they read compacted lists, per query block the key blocks to visit
(forward and dq) and per key block the query blocks to visit (dk, dv), full blocks first and then partial ones, each
entry with the index of its element mask in `partial_blocks` or -1 when the block is full. Kernels can so walk the
full entries unmasked and the partial ones masked without branching per block. The lists are data, so one compiled
kernel serves every mask of a shape. Host masks are classified band by band with identical partial blocks stored
once; run-time masks (`TokenSelectionMask`, traced boolean arrays) are classified with jnp, one element mask per
partial block.
"""
import dataclasses

import einops
import jax
import jax.numpy as jnp
import numpy as np

from jaxtok.kernels.sparse_attention import mask as mask_lib
from jaxtok.kernels.sparse_attention import token_selection

SKIP, PARTIAL, FULL = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class Layout:
  """The static facts about a set of tables that kernels compile against (hashable, unlike the tables)."""
  num_batch_masks: int
  num_head_masks: int
  num_q: int
  num_k: int
  block_q: int
  block_k: int
  causal: bool

  @property
  def num_blocks(self) -> tuple[int, int]:
    return self.num_q, self.num_k

  def mask_group(self, batch, head):
    """(batch, head) indices into the tables, 0 along an axis the mask shares."""
    return (batch if self.num_batch_masks > 1 else 0), (head if self.num_head_masks > 1 else 0)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BlockTables:
  """Schedules for one block size; Bm/Hm are 1 when the mask is shared across batch/heads.

  Attributes:
    kind: `[Bm, Hm, nq, nk]` int32, SKIP / PARTIAL / FULL per block pair.
    kv_count: `[Bm, Hm, nq]` int32, key blocks to visit per query block.
    kv_full_count: `[Bm, Hm, nq]` int32, how many of those are full (they come first).
    kv_block: `[Bm, Hm, nq, nk]` int32, those key blocks, full ones first, each kind in ascending order (entries
      past the count repeat the last one).
    kv_partial: `[Bm, Hm, nq, nk]` int32, the matching index into `partial_blocks`, -1 for a full block.
    q_count, q_full_count, q_block, q_partial: the same per key block over query blocks.
    partial_blocks: `[P, rows, block_k]` int8 element masks (1 = attend); rows is block_q, or 1 when one key
      vector holds for every row of the block.
    block_q, block_k: block sizes.
    causal: the element masks additionally require key position <= query position.
  """
  kind: jax.Array
  kv_count: jax.Array
  kv_full_count: jax.Array
  kv_block: jax.Array
  kv_partial: jax.Array
  q_count: jax.Array
  q_full_count: jax.Array
  q_block: jax.Array
  q_partial: jax.Array
  partial_blocks: jax.Array
  block_q: int = dataclasses.field(metadata=dict(static=True))
  block_k: int = dataclasses.field(metadata=dict(static=True))
  causal: bool = dataclasses.field(default=False, metadata=dict(static=True))

  @property
  def num_blocks(self) -> tuple[int, int]:
    """(query blocks, key blocks)."""
    return self.kind.shape[2], self.kind.shape[3]

  @property
  def layout(self) -> Layout:
    return Layout(*self.kind.shape, self.block_q, self.block_k, self.causal)

  def density(self) -> jax.Array:
    """Fraction of block pairs visited."""
    return jnp.mean((self.kind != SKIP).astype(jnp.float32))


def _compact(kind, partial_index, xp):
  """Lists the visited blocks along the last axis, full before partial: (count `[...]`, full count `[...]`,
  blocks `[..., n]`, partial indices `[..., n]`).

  Entries past the count repeat the last visited block, so a pipeline that prefetches them fetches nothing new.
  """
  visiting_order = xp.where(kind == FULL, 0, xp.where(kind == PARTIAL, 1, 2)).astype(xp.int32)
  order = xp.argsort(visiting_order, axis=-1, stable=True).astype(xp.int32)
  count = xp.sum(kind != SKIP, axis=-1).astype(xp.int32)
  full_count = xp.sum(kind == FULL, axis=-1).astype(xp.int32)
  last_visited = xp.take_along_axis(order, xp.maximum(count - 1, 0)[..., None], axis=-1)
  order = xp.where(xp.arange(kind.shape[-1]) < count[..., None], order, last_visited)
  return count, full_count, order, xp.take_along_axis(partial_index, order, axis=-1).astype(xp.int32)


def _tables(kind, partial_index, partial_blocks, block_q, block_k, causal, xp) -> BlockTables:
  """Assembles `BlockTables` from kinds `[Bm, Hm, nq, nk]` and partial indices of the same shape."""
  rows = _compact(kind, partial_index, xp)
  columns = _compact(xp.swapaxes(kind, -1, -2), xp.swapaxes(partial_index, -1, -2), xp)
  arrays = [jnp.asarray(a) for a in (kind.astype(xp.int32), *rows, *columns, partial_blocks)]
  return BlockTables(*arrays, block_q=block_q, block_k=block_k, causal=causal)


def _kind_from_counts(allowed_count, block_size, xp):
  return xp.where(allowed_count == block_size, FULL, xp.where(allowed_count > 0, PARTIAL, SKIP))


def _padded_band(mask, start: int, block_q: int, k_padded: int) -> np.ndarray:
  """Rows [start, start + block_q) of `mask` as `[heads, block_q, k_padded]`, padding with False (never attend)."""
  heads, q_len, k_len = mask.shape
  band = np.zeros((heads, block_q, k_padded), dtype=bool)
  stop = min(start + block_q, q_len)
  band[:, :stop - start, :k_len] = mask.rows(start, stop)
  return band


def from_structured(mask, block_q: int, block_k: int) -> BlockTables:
  """Tables for a host mask (`mask.py`), one band of query rows at a time, storing identical partial blocks once.

  The number of stored partial blocks is padded to a power of two so that masks of one shape rarely recompile.
  """
  heads, q_len, k_len = mask.shape
  num_q, num_k = -(-q_len // block_q), -(-k_len // block_k)
  kind = np.zeros((1, heads, num_q, num_k), np.int32)
  partial_index = np.full((1, heads, num_q, num_k), -1, np.int32)
  unique_blocks: dict[bytes, int] = {}
  for i in range(num_q):
    band = _padded_band(mask, i * block_q, block_q, num_k * block_k)
    blocks = einops.rearrange(band, "h r (j c) -> h j r c", c=block_k)
    counts = blocks.sum(axis=(2, 3))
    kind[0, :, i] = _kind_from_counts(counts, block_q * block_k, np)
    for h, j in zip(*np.nonzero(kind[0, :, i] == PARTIAL)):
      partial_index[0, h, i, j] = unique_blocks.setdefault(blocks[h, j].tobytes(), len(unique_blocks))
  stored = np.zeros((1 << max(len(unique_blocks) - 1, 0).bit_length(), block_q, block_k), np.int8)
  for content, index in unique_blocks.items():
    stored[index] = np.frombuffer(content, dtype=bool).reshape(block_q, block_k)
  return _tables(kind, partial_index, stored, block_q, block_k, False, np)


def from_dense(allowed: jax.Array, block_q: int, block_k: int) -> BlockTables:
  """Tables for a run-time boolean mask `[Bm, Hm, q_len, k_len]`; every block keeps its own element mask."""
  q_len, k_len = allowed.shape[2:]
  num_q, num_k = -(-q_len // block_q), -(-k_len // block_k)
  padded = jnp.pad(allowed, ((0, 0), (0, 0), (0, num_q * block_q - q_len), (0, num_k * block_k - k_len)))
  blocks = einops.rearrange(padded, "b h (i r) (j c) -> b h i j r c", r=block_q, c=block_k)
  kind = _kind_from_counts(jnp.sum(blocks, axis=(4, 5)), block_q * block_k, jnp)
  partial_index = jnp.where(kind == PARTIAL, jnp.arange(kind.size).reshape(kind.shape), -1)
  stored = einops.rearrange(blocks, "b h i j r c -> (b h i j) r c").astype(jnp.int8)
  return _tables(kind, partial_index, stored, block_q, block_k, False, jnp)


def from_token_selection(mask: token_selection.TokenSelectionMask, block_q: int, block_k: int) -> BlockTables:
  """Tables for a run-time key selection; `block_q` must divide `mask.query_block`."""
  if mask.query_block % block_q:
    raise ValueError(f"block_q={block_q} must divide the selection's query_block={mask.query_block}")
  heads, q_len, k_len = mask.shape
  num_q, num_k = -(-q_len // block_q), -(-k_len // block_k)
  selected = jnp.repeat(mask.selected, mask.query_block // block_q, axis=2)[:, :, :num_q]
  selected = jnp.pad(selected, ((0, 0), (0, 0), (0, 0), (0, num_k * block_k - k_len)))
  key_blocks = einops.rearrange(selected, "b h i (j c) -> b h i j c", c=block_k)
  kind = _kind_from_counts(jnp.sum(key_blocks, axis=-1), block_k, jnp)
  if mask.causal:
    first_query = jnp.arange(num_q)[:, None] * block_q
    first_key = jnp.arange(num_k)[None, :] * block_k
    future = first_key > first_query + block_q - 1
    straddles = first_key + block_k - 1 > first_query
    kind = jnp.where(future, SKIP, jnp.where(straddles & (kind == FULL), PARTIAL, kind))
  partial_index = jnp.where(kind == PARTIAL, jnp.arange(kind.size).reshape(kind.shape), -1)
  stored = einops.rearrange(key_blocks, "b h i j c -> (b h i j) 1 c").astype(jnp.int8)
  return _tables(kind, partial_index, stored, block_q, block_k, mask.causal, jnp)


def build(mask, block_q: int, block_k: int) -> BlockTables:
  """Tables for any supported mask: a `mask.py` mask, a `TokenSelectionMask`, or a traced boolean array."""
  if isinstance(mask, token_selection.TokenSelectionMask):
    return from_token_selection(mask, block_q, block_k)
  if isinstance(mask, jax.Array):
    return from_dense(mask, block_q, block_k)
  return from_structured(mask, block_q, block_k)


def dense(mask) -> jax.Array:
  """Any supported mask materialised as `[Bm, Hm, q_len, k_len]` bool."""
  if isinstance(mask, token_selection.TokenSelectionMask):
    return mask.dense()
  if isinstance(mask, jax.Array):
    return mask
  return mask_lib.dense(mask, xp=jnp)[None]
