"""Masks computed at run time: the top-k keys each query block of each head selects (TidalDecode-style selection).

Selection happens per query block rather than per query, so the mask is a key vector per (batch, head, query block)
and costs `[batch, heads, q_len / query_block, k_len]` booleans instead of a `[q_len, k_len]` matrix per head.
"""
import dataclasses
import math

import einops
import jax
import jax.numpy as jnp


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TokenSelectionMask:
  """Query i of head h attends key j when its query block selected j (and, if causal, j <= i).

  Attributes:
    selected: `[batch or 1, heads or 1, ceil(q_len / query_block), k_len]` bool, the keys each query block selected.
    q_len: number of queries.
    query_block: queries per selection block; a power of two >= 16 so kernel blocks tile it.
    causal: also require j <= i, queries and keys starting at the same position (training or prefill of an
      autoregressive decoder). Decoding against a cache needs no causal part: every cached key is in the past.
  """
  selected: jax.Array
  q_len: int = dataclasses.field(metadata=dict(static=True))
  query_block: int = dataclasses.field(metadata=dict(static=True))
  causal: bool = dataclasses.field(default=False, metadata=dict(static=True))

  def __post_init__(self):
    if self.query_block < 16 or self.query_block & (self.query_block - 1):
      raise ValueError(f"query_block must be a power of two >= 16, got {self.query_block}")

  def validate(self) -> None:
    """Raises ValueError unless `selected` is bool `[batch or 1, heads or 1, ceil(q_len / query_block), k_len]`."""
    expected_blocks = -(-self.q_len // self.query_block)
    if self.selected.ndim != 4 or self.selected.shape[2] != expected_blocks or self.selected.dtype != jnp.bool_:
      raise ValueError(f"selected must be bool [batch or 1, heads or 1, {expected_blocks}, k_len] for q_len="
                       f"{self.q_len}, query_block={self.query_block}; got {self.selected.dtype} "
                       f"{self.selected.shape}")

  @property
  def shape(self) -> tuple[int, int, int]:
    return (self.selected.shape[1], self.q_len, self.selected.shape[3])

  def dense(self) -> jax.Array:
    """The mask `[batch or 1, heads or 1, q_len, k_len]` bool, materialised (for references)."""
    allowed = jnp.repeat(self.selected, self.query_block, axis=2)[:, :, :self.q_len]
    if self.causal:
      allowed &= jnp.tril(jnp.ones(allowed.shape[2:], bool))
    return allowed


def query_block_scores(q: jax.Array, k: jax.Array, query_block: int, causal: bool = False) -> jax.Array:
  """How much each query block wants each key: its mean query dotted with the key (GQA-aware).

  Args:
    q: `[batch, q_len, heads, head_dim]`.
    k: `[batch, k_len, kv_heads, head_dim]`, kv_heads dividing heads.
    query_block: queries per selection block.
    causal: score -inf for keys after the block's last query, so they are never selected.

  Returns:
    `[batch, heads, ceil(q_len / query_block), k_len]` float32 scores.
  """
  q_len, heads, kv_heads = q.shape[1], q.shape[2], k.shape[2]
  num_blocks = -(-q_len // query_block)
  padded = jnp.pad(q.astype(jnp.float32), ((0, 0), (0, num_blocks * query_block - q_len), (0, 0), (0, 0)))
  block_sums = einops.reduce(padded, "b (n r) h d -> b n h d", "sum", r=query_block)
  rows_per_block = jnp.minimum(q_len - jnp.arange(num_blocks) * query_block, query_block)
  block_means = block_sums / rows_per_block[None, :, None, None]
  grouped = einops.rearrange(block_means, "b n (g m) d -> b g m n d", g=kv_heads)
  scores = jnp.einsum("bgmnd,bkgd->bgmnk", grouped, k.astype(jnp.float32)) / math.sqrt(q.shape[-1])
  scores = einops.rearrange(scores, "b g m n k -> b (g m) n k", m=heads // kv_heads)
  if causal:
    last_query = jnp.minimum((jnp.arange(num_blocks) + 1) * query_block, q_len) - 1
    scores = jnp.where(jnp.arange(k.shape[1])[None, :] <= last_query[:, None], scores, -jnp.inf)
  return scores


def select_top_k(scores: jax.Array, num_selected: int) -> jax.Array:
  """The `num_selected` highest-scoring keys per row (keys scored -inf are never selected).

  Args:
    scores: `[..., k_len]` float scores.
    num_selected: keys to keep per row, 1 <= num_selected <= k_len.

  Returns:
    `[..., k_len]` bool with at most `num_selected` True per row.
  """
  if not 1 <= num_selected <= scores.shape[-1]:
    raise ValueError(f"num_selected must be in [1, {scores.shape[-1]}], got {num_selected}")
  top_scores, top_keys = jax.lax.top_k(scores, num_selected)
  chosen = jnp.zeros(scores.shape, bool)
  return jnp.put_along_axis(chosen, top_keys, jnp.isfinite(top_scores), axis=-1, inplace=False)


def token_selection_mask(q: jax.Array, k: jax.Array, num_selected: int, query_block: int = 128,
                         causal: bool = False) -> TokenSelectionMask:
  """Each query block of each head keeps its `num_selected` best keys by `query_block_scores`."""
  scores = query_block_scores(jax.lax.stop_gradient(q), jax.lax.stop_gradient(k), query_block, causal)
  return TokenSelectionMask(select_top_k(scores, num_selected), q.shape[1], query_block, causal)
