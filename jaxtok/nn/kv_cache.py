"""Static-shape key/value cache of a causal transformer, with per-example lengths (for batched speculative decoding).

Keys and values of every layer live in one array `[layers, batch, max_length, kv_heads, head_dim]`; `lengths [batch]`
counts the positions of each example that are valid. A decode step writes its n new positions at each example's own
length (`write_layer`), attends under `attention_mask` (a query at position `lengths + i` sees the keys at positions
`<= lengths + i`), then `advance`s the lengths. Speculative decoding undoes rejected positions with `rollback`,
which only lowers the lengths: entries beyond a length are stale but masked, and the next write overwrites them.
(Leviathan et al. 2023, "Fast Inference from Transformers via Speculative Decoding", verify drafts with such a cache.)
"""
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class KVCache:
  """keys, values: `[layers, batch, max_length, kv_heads, head_dim]`; lengths: `[batch]` int32 valid positions."""
  keys: jax.Array
  values: jax.Array
  lengths: jax.Array

  @property
  def max_length(self) -> int:
    return self.keys.shape[2]


def create(layers: int, batch: int, max_length: int, kv_heads: int, head_dim: int, dtype: Any = jnp.float32) -> KVCache:
  """An empty cache (all lengths 0) of the given static shape."""
  shape = (layers, batch, max_length, kv_heads, head_dim)
  return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype), jnp.zeros((batch,), jnp.int32))


def write_layer(cache: KVCache, layer: int, keys: jax.Array, values: jax.Array) -> KVCache:
  """Writes n new positions of one layer at each example's current length (lengths are not advanced).

  Args:
    cache: the cache; each example needs `lengths + n <= max_length` (beyond that XLA clamps the write position).
    layer: static layer index.
    keys, values: `[batch, n, kv_heads, head_dim]`.
  """
  write = jax.vmap(lambda buffer, update, start: jax.lax.dynamic_update_slice(buffer, update, (start, 0, 0)))
  new_keys = write(cache.keys[layer], keys.astype(cache.keys.dtype), cache.lengths)
  new_values = write(cache.values[layer], values.astype(cache.values.dtype), cache.lengths)
  return cache.replace(keys=cache.keys.at[layer].set(new_keys), values=cache.values.at[layer].set(new_values))


def attention_mask(cache: KVCache, num_queries: int) -> jax.Array:
  """`[batch, 1, num_queries, max_length]` bool: query i (at position `lengths + i`) sees keys `<= lengths + i`."""
  key_positions = jnp.arange(cache.max_length)[None, None, :]
  query_positions = cache.lengths[:, None, None] + jnp.arange(num_queries)[None, :, None]
  return (key_positions <= query_positions)[:, None]


def advance(cache: KVCache, num_positions: int) -> KVCache:
  """Lengths + num_positions, after every layer has written its new positions."""
  return cache.replace(lengths=cache.lengths + num_positions)


def keep_positions(cache: KVCache, start: jax.Array, sources: jax.Array, count: jax.Array) -> KVCache:
  """Copies positions `start + sources[:, i]` to `start + i` (i < count) and sets lengths to `start + count`: keeps
  one root-to-leaf path of a verified token tree. start, count: `[batch]` int32; sources: `[batch, n]` int32."""
  index = jnp.arange(sources.shape[1])[None]
  targets = jnp.where(index < count[:, None], start[:, None] + index, cache.max_length)  # out of range: dropped
  per_example = lambda rows, source, target: rows.at[target].set(rows[source], mode="drop")
  per_layer = jax.vmap(per_example)
  move = lambda data: jax.vmap(per_layer, (0, None, None))(data, start[:, None] + sources, targets)
  return cache.replace(keys=move(cache.keys), values=move(cache.values), lengths=start + count)


def rollback(cache: KVCache, new_lengths: jax.Array) -> KVCache:
  """Keeps the first `new_lengths [batch]` positions of each example (never more than it has); O(1), no data moves."""
  new_lengths = jnp.asarray(new_lengths, jnp.int32)
  if new_lengths.shape != cache.lengths.shape:
    raise ValueError(f"new_lengths must have shape {cache.lengths.shape} (batch,), got {new_lengths.shape}.")
  return cache.replace(lengths=jnp.minimum(new_lengths, cache.lengths))
