"""Entropy regularisers (MAGVIT-v2 style), always in float32: per-sample entropy and codebook (batch) entropy.

For logits over codes `l[n, k]` with `p[n] = softmax(l[n])`: per-sample entropy `mean_n H(p[n])` (low = confident
assignments) and codebook entropy `H(mean_n p[n])` (high = codes used evenly). The loss is
`per_sample - diversity_gamma * codebook`, so it is not bounded below by zero; each entropy is >= 0 and finite.

Binary codes (LFQ, BSQ) have logits linear in the bits, so `p[n]` is a product of per-bit Bernoullis with logits
`bit_logits[n, i]` (`p(bit_i = 1) = sigmoid(bit_logits[n, i])`). The per-sample entropy is then the sum of
per-bit entropies, exactly. The codebook entropy is computed exactly over groups of at most `max_group_bits` bits
(a `[N, 2^group_bits]` table per group, never `[N, 2^d]` for large d) and summed over groups: exact when one group
holds every bit, otherwise the sum of the groups' marginal entropies, an upper bound on the joint entropy.
"""
import jax
import jax.numpy as jnp


def _entropy(probs: jax.Array) -> jax.Array:
  """Entropy (nats) over the last axis; >= 0, finite, and with a finite gradient even where probabilities are 0."""
  tiny = jnp.finfo(probs.dtype).tiny
  return jnp.maximum(-jnp.sum(probs * jnp.log(jnp.maximum(probs, tiny)), axis=-1), 0.0)


def entropy_terms(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
  """logits: `[N, K]` -> (per-sample entropy, codebook entropy), float32 scalars."""
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  probs = jnp.exp(log_probs)
  per_sample = jnp.mean(jnp.maximum(-jnp.sum(probs * log_probs, axis=-1), 0.0))
  return per_sample, _entropy(jnp.mean(probs, axis=0))


def group_sizes(dim: int, max_group_bits: int) -> tuple[int, ...]:
  """Splits `dim` bits into the fewest groups of at most `max_group_bits`, sizes as even as possible."""
  if max_group_bits < 1:
    raise ValueError(f"max_group_bits must be >= 1, got {max_group_bits}.")
  groups = -(-dim // max_group_bits)
  base, extra = divmod(dim, groups)
  return tuple(base + 1 if g < extra else base for g in range(groups))


def all_bit_patterns(bits: int) -> jax.Array:
  """`[2^bits, bits]` float32 0/1 rows, row k = k in binary with the first column the most significant bit."""
  shifts = jnp.arange(bits - 1, -1, -1)
  return (jnp.right_shift(jnp.arange(2**bits)[:, None], shifts) & 1).astype(jnp.float32)


def _group_code_log_probs(bit_logits: jax.Array) -> jax.Array:
  """bit_logits `[N, g]` -> log-probabilities `[N, 2^g]` of every code of the group."""
  patterns = all_bit_patterns(bit_logits.shape[-1])
  log_one, log_zero = jax.nn.log_sigmoid(bit_logits), jax.nn.log_sigmoid(-bit_logits)
  return log_one @ patterns.T + log_zero @ (1.0 - patterns).T


def binary_entropy_terms(bit_logits: jax.Array, max_group_bits: int) -> tuple[jax.Array, jax.Array]:
  """bit_logits: `[N, d]` -> (per-sample entropy, codebook entropy over groups), float32 scalars."""
  bit_logits = bit_logits.astype(jnp.float32)
  p_one = jax.nn.sigmoid(bit_logits)
  bit_entropy = -(p_one * jax.nn.log_sigmoid(bit_logits) + (1.0 - p_one) * jax.nn.log_sigmoid(-bit_logits))
  per_sample = jnp.mean(jnp.sum(jnp.maximum(bit_entropy, 0.0), axis=-1))
  codebook, start = jnp.zeros((), jnp.float32), 0
  for size in group_sizes(bit_logits.shape[-1], max_group_bits):
    probs = jnp.exp(_group_code_log_probs(bit_logits[:, start:start + size]))
    codebook += _entropy(jnp.mean(probs, axis=0))
    start += size
  return per_sample, codebook
