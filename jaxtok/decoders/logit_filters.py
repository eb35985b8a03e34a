"""Temperature, top-k and top-p (nucleus) filtering of logits, shared by every sampler in `jaxtok.decoders`.

Pure functions on logits `[..., vocab]`: a filtered-out entry becomes `-inf`, so `jax.nn.softmax` gives it
probability 0 and `jax.random.categorical` never draws it. `top_k` is static (it sets a shape); `top_p` may be a
traced scalar or an array broadcastable to `logits.shape[:-1]` (per-example nucleus).
"""
import jax
import jax.numpy as jnp


def apply_temperature(logits: jax.Array, temperature: float | jax.Array) -> jax.Array:
  """logits / temperature, `[..., vocab]`; temperature a scalar or `logits.shape[:-1]` (per example). Temperature 0 is greedy: use `argmax` instead of sampling."""
  temperature = jnp.asarray(temperature, logits.dtype)
  return logits / (temperature[..., None] if temperature.ndim else temperature)


def top_k_filter(logits: jax.Array, k: int) -> jax.Array:
  """Keeps the k largest logits of the last axis (ties with the k-th all kept), `-inf` elsewhere; k=0 keeps all."""
  vocab = logits.shape[-1]
  if not 0 <= k <= vocab:
    raise ValueError(f"top_k must lie in [0, vocab={vocab}] (0 = off), got {k}.")
  if k in (0, vocab):
    return logits
  kth_largest = jax.lax.top_k(logits, k)[0][..., -1:]
  return jnp.where(logits >= kth_largest, logits, -jnp.inf)


def top_p_filter(logits: jax.Array, p: float | jax.Array) -> jax.Array:
  """Keeps the smallest set of largest-probability entries whose mass reaches p (always the most likely one).

  Args:
    logits: `[..., vocab]`.
    p: nucleus mass in (0, 1]; a scalar or an array of shape `logits.shape[:-1]`. 1 keeps all.

  Returns:
    logits `[..., vocab]` with the entries outside the nucleus set to `-inf`.
  """
  p = jnp.asarray(p, jnp.float32)
  probabilities = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
  descending = jnp.flip(jnp.sort(probabilities, axis=-1), axis=-1)
  mass_before = jnp.cumsum(descending, axis=-1) - descending
  # The smallest kept probability: the last sorted entry whose preceding mass is still below p.
  in_nucleus = mass_before < p[..., None]
  threshold = jnp.min(jnp.where(in_nucleus, descending, jnp.inf), axis=-1, keepdims=True)
  return jnp.where(probabilities >= threshold, logits, -jnp.inf)


def filter_logits(logits: jax.Array, *, temperature: float | jax.Array = 1.0, top_k: int = 0,
                  top_p: float | jax.Array = 1.0) -> jax.Array:
  """Temperature, then top-k, then top-p. `logits: [..., vocab]` -> `[..., vocab]` float32; temperature > 0."""
  logits = apply_temperature(logits.astype(jnp.float32), temperature)
  logits = top_k_filter(logits, top_k)
  if isinstance(top_p, (int, float)) and top_p >= 1.0:
    return logits
  return top_p_filter(logits, top_p)
