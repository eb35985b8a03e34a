"""Temperature, top-k and top-p (nucleus) filtering of logits, shared by every sampler in `jaxtok.decoders`.

Pure functions on logits `[..., vocab]`: a filtered-out entry becomes `-inf`, so `jax.nn.softmax` gives it
probability 0 and `jax.random.categorical` never draws it. `top_k` is static (it sets a shape); `top_p` may be a
traced scalar or an array broadcastable to `logits.shape[:-1]` (per-example nucleus).

`llamagen_filter` is the filter of LlamaGen's `generate.py` (Hugging Face's `top_k_top_p_filtering`), which differs
from `filter_logits` in three places: temperature 0 divides by 1e-5 instead of meaning argmax; top-k is clamped to
[1, vocab] instead of rejected out of range; top-p keeps an entry while the mass *before* it is <= p (`hf_top_p_filter`)
where `top_p_filter` requires < p (they differ only when that mass equals p exactly), breaking ties at the boundary
by sorted position rather than keeping every tied entry.
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


def hf_top_p_filter(logits: jax.Array, p: float) -> jax.Array:
  """Hugging Face's (and LlamaGen's) nucleus filter on `[..., vocab]` logits.

  Sorts descending (ties by index), removes the entries whose cumulative probability exceeds p shifted one place
  to the right, so an entry is kept while the probability mass of the entries sorted before it is <= p (the first
  is always kept). Returns the logits with the removed entries at `-inf`.
  """
  logits = logits.astype(jnp.float32)
  order = jnp.argsort(-logits, axis=-1, stable=True)
  sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
  cumulative = jnp.cumsum(jax.nn.softmax(sorted_logits, axis=-1), axis=-1)
  removed_sorted = jnp.concatenate([jnp.zeros_like(cumulative[..., :1], bool), cumulative[..., :-1] > p], axis=-1)
  removed = jnp.put_along_axis(jnp.zeros_like(removed_sorted), order, removed_sorted, axis=-1, inplace=False)
  return jnp.where(removed, -jnp.inf, logits)


def llamagen_filter(logits: jax.Array, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> jax.Array:
  """LlamaGen `generate.logits_to_probs`'s logits (softmax them for its probabilities): `[..., vocab]` -> float32.

  logits / max(temperature, 1e-5); if top_k > 0, the min(top_k, vocab) largest kept (ties with the k-th kept);
  if top_p < 1, `hf_top_p_filter` on the result.
  """
  if top_k < 0 or not 0 < top_p <= 1 or temperature < 0:
    raise ValueError(f"llamagen_filter needs temperature >= 0, top_k >= 0 and top_p in (0, 1], got "
                     f"temperature={temperature}, top_k={top_k}, top_p={top_p}.")
  logits = logits.astype(jnp.float32) / max(float(temperature), 1e-5)
  if top_k > 0:
    logits = top_k_filter(logits, min(top_k, logits.shape[-1]))
  return hf_top_p_filter(logits, top_p) if top_p < 1.0 else logits
