"""Codebook statistics kept in the "quantizer" collection: EMA codebook, usage window, dead-code restart.

Every statistic is a plain jnp reduction over the whole batch of tokens. Under jit with the batch sharded over a
mesh (GSPMD), those reductions are global, so one device and eight devices produce the same codebooks: there is no
per-replica buffer that could drift apart, and no collective that only some replicas reach.
"""
import jax
import jax.numpy as jnp

from jaxtok.quantizers import base

# Codebooks up to this size keep a per-code "steps since used" counter for windowed usage (and dead-code restart).
MAX_TRACKED_CODES = 2**20


def code_sums(z: jax.Array, indices: jax.Array, codebook_size: int) -> tuple[jax.Array, jax.Array]:
  """z `[N, D]`, indices `[N]` -> (counts `[K]`, sums of the vectors assigned to each code `[K, D]`), float32."""
  counts = base.code_histogram(indices, codebook_size)
  sums = jax.ops.segment_sum(z.astype(jnp.float32), indices, num_segments=codebook_size)
  return counts, sums


def ema_codebook_update(cluster_size: jax.Array, embed_sum: jax.Array, z: jax.Array, indices: jax.Array, *,
                        decay: float, epsilon: float) -> tuple[jax.Array, jax.Array, jax.Array]:
  """One EMA step (VQ-VAE appendix; Laplace smoothing as in Sonnet).

  Args:
    cluster_size: `[K]` EMA of code counts.
    embed_sum: `[K, D]` EMA of the sum of vectors assigned to each code.
    z: `[N, D]` vectors of the batch; indices: `[N]` their codes.
    decay: EMA decay; epsilon: Laplace smoothing of the counts.

  Returns:
    (cluster_size, embed_sum, codebook) with `cluster_size = decay * cs + (1 - decay) * counts`,
    `embed_sum = decay * es + (1 - decay) * sums`, `codebook = embed_sum / ((cs + eps) / (n + K eps) * n)`,
    n = sum of cluster_size.
  """
  counts, sums = code_sums(z, indices, cluster_size.shape[0])
  cluster_size = decay * cluster_size + (1.0 - decay) * counts
  embed_sum = decay * embed_sum + (1.0 - decay) * sums
  total = jnp.sum(cluster_size)
  smoothed = (cluster_size + epsilon) / (total + cluster_size.shape[0] * epsilon) * total
  return cluster_size, embed_sum, embed_sum / smoothed[:, None]


def steps_since_used_update(steps_since_used: jax.Array, counts: jax.Array) -> jax.Array:
  """`[K]` int32 counter: 0 for codes hit in this batch, +1 for the others."""
  return jnp.where(counts > 0, 0, steps_since_used + 1).astype(jnp.int32)


def dead_codes(steps_since_used: jax.Array, window: int) -> jax.Array:
  """`[K]` bool: codes unused for at least `window` consecutive training steps."""
  return steps_since_used >= window


def restart_dead_codes(key: jax.Array, codebook: jax.Array, dead: jax.Array, z: jax.Array) -> jax.Array:
  """Replaces each dead code by a batch vector drawn uniformly (with replacement). codebook `[K, D]`, z `[N, D]`."""
  picks = jax.random.randint(key, (codebook.shape[0],), 0, z.shape[0])
  samples = jax.lax.stop_gradient(z[picks]).astype(codebook.dtype)
  return jnp.where(dead[:, None], samples, codebook)


def window_usage(steps_since_used: jax.Array, steps_tracked: jax.Array, window: int) -> jax.Array:
  """Fraction of codes hit within the last `window` steps, of the `steps_tracked` steps counted so far.

  A code never hit has `steps_since_used == steps_tracked` (the counter starts at 0 and grows by one per step), so
  `steps_since_used < min(window, steps_tracked)` holds exactly for the codes hit in the last `window` steps; early in
  training, when fewer than `window` steps have been counted, only the codes hit so far count as used.

  Args:
    steps_since_used: `[K]` int32, training steps since each code was last hit.
    steps_tracked: int32 scalar, steps counted (this batch included).
    window: steps a code counts as used after its last hit.
  """
  return jnp.mean((steps_since_used < jnp.minimum(window, steps_tracked)).astype(jnp.float32))


def track_usage(module, counts: jax.Array, *, window: int, update: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Keeps `steps_since_used` `[K]` and `usage_steps` (steps counted) in the module's "quantizer" collection.

  Args:
    module: the linen module owning the counters (call from inside its `__call__`).
    counts: `[K]` code counts of this batch.
    window: steps a code counts as used after its last hit.
    update: whether to advance the counters (training with a mutable collection).

  Returns:
    (the counter after this batch `[K]`, {"window_codebook_usage": fraction of codes hit within the last `window`
    steps, this batch included; during the first `window` steps, the fraction hit so far}).
  """
  steps = module.variable("quantizer", "steps_since_used", jnp.zeros, counts.shape, jnp.int32)
  tracked = module.variable("quantizer", "usage_steps", jnp.zeros, (), jnp.int32)
  current = steps_since_used_update(steps.value, counts)
  tracked_after = tracked.value + 1
  if update:
    steps.value = current
    tracked.value = tracked_after
  return current, {"window_codebook_usage": window_usage(current, tracked_after, window)}
