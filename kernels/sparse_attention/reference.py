"""XLA reference: dense masked attention with the mask materialised, differentiable by plain autodiff.

Fully masked rows give zero output and zero gradient (no NaN): the running maximum is taken over allowed logits only
and rows without any allowed key divide by one instead of zero.
"""
import einops
import jax
import jax.numpy as jnp

from jaxtok.kernels.sparse_attention import block_tables


def masked_attention(q: jax.Array, k: jax.Array, v: jax.Array, allowed: jax.Array, scale: float) -> jax.Array:
  """Softmax attention restricted to `allowed`, in float32.

  Args:
    q: `[batch, q_len, heads, head_dim]`.
    k, v: `[batch, k_len, kv_heads, head_dim]`, kv_heads dividing heads (grouped-query attention).
    allowed: `[batch or 1, heads or 1, q_len, k_len]` bool, True = attend.
    scale: logit scale.

  Returns:
    `[batch, q_len, heads, head_dim]` in q's dtype.
  """
  group = q.shape[2] // k.shape[2]
  grouped_q = einops.rearrange(q, "b q (g m) d -> b g m q d", m=group)
  logits = jnp.einsum("bgmqd,bkgd->bgmqk", grouped_q, k, preferred_element_type=jnp.float32) * scale
  allowed = einops.rearrange(jnp.broadcast_to(allowed, (allowed.shape[0], q.shape[2], *allowed.shape[2:])),
                             "b (g m) q k -> b g m q k", m=group)
  logits = jnp.where(allowed, logits, -jnp.inf)
  row_max = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
  weights = jnp.exp(logits - jnp.where(jnp.isfinite(row_max), row_max, 0.0))
  total = jnp.sum(weights, axis=-1, keepdims=True)
  probabilities = weights / jnp.where(total > 0, total, 1.0)
  out = jnp.einsum("bgmqk,bkgd->bqgmd", probabilities, v.astype(jnp.float32))
  return einops.rearrange(out, "b q g m d -> b q (g m) d").astype(q.dtype)


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask, *, scale: float) -> jax.Array:
  """`masked_attention` for any supported mask (see `block_tables.dense`)."""
  return masked_attention(q, k, v, block_tables.dense(mask), scale)
