"""Classifier-free guidance of masked samplers (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance"): the
weight of each decoding step and how it mixes the conditional and unconditional logits.

Step s of T (0-based); g the guidance scale. The official schedules, as 1d-tokenizer's `ImageBert.generate`
(`guidance_decay`) computes them:
- "constant": w_s = g; logits = cond + w_s (cond - uncond).
- "linear" (MUSE): w_s = g s / T, so 0 at the first step (which the official code runs on the conditional pass
  alone) and g (T - 1) / T at the last; logits = cond + w_s (cond - uncond).
- "power-cosine" (MDT, Gao et al. 2023): w_s = (g - 1) (1 - cos(pi (s / T)^p)) / 2 + 1 with p = `power`
  (`guidance_scale_pow`, 3 by default); logits = uncond + w_s (cond - uncond): w_s = 1 is the conditional model,
  so this g is the scale of the MDT convention, and g here means g - 1 of the other schedules.
jaxtok's own schedules, on r = (s + 1) / T (the fraction decoded after the step):
- "linear-inclusive": w_s = g r, reaching g at the last step (jaxtok's former "linear"; differs from the official
  "linear" by one step); logits = cond + w_s (cond - uncond).
- "cosine": w_s = g (1 - cos(pi r)) / 2 (weak guidance early, full at the end); logits as "constant".
Whenever w_s = 0 the logits are exactly the conditional ones (the official code then skips the unconditional pass).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

GUIDANCE_SCHEDULES = ("constant", "linear", "power-cosine", "linear-inclusive", "cosine")


def check_schedule(schedule: str) -> None:
  if schedule not in GUIDANCE_SCHEDULES:
    raise ValueError(f"guidance_schedule must be one of {GUIDANCE_SCHEDULES}, got {schedule!r}.")


def _step_factors(num_steps: int, schedule: str, power: float) -> np.ndarray:
  """The schedule's shape per step, `[num_steps]` float64 on the host: w_s = g * factor (power-cosine: the
  (1 - cos) / 2 term)."""
  steps = np.arange(num_steps, dtype=np.float64)
  if schedule == "constant":
    return np.ones(num_steps)
  if schedule == "linear":
    return steps / num_steps
  if schedule == "power-cosine":
    return (1.0 - np.cos(((steps / num_steps) ** power) * math.pi)) * 0.5
  if schedule == "linear-inclusive":
    return (steps + 1.0) / num_steps
  return 0.5 * (1.0 - np.cos(math.pi * (steps + 1.0) / num_steps))


def guidance_weights(num_steps: int, scale: float | jax.Array, schedule: str, power: float = 3.0) -> jax.Array:
  """The weight w_s of every step, `[num_steps]` float32 (see the module docstring); `scale` may be traced."""
  check_schedule(schedule)
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}.")
  factors = jnp.asarray(_step_factors(num_steps, schedule, float(power)), jnp.float32)
  scale = jnp.asarray(scale, jnp.float32)
  if schedule == "power-cosine":
    return (scale - 1.0) * factors + 1.0
  return scale * factors


def guided_logits(conditional: jax.Array, unconditional: jax.Array, weight: float | jax.Array,
                  schedule: str = "constant") -> jax.Array:
  """Guided logits `[..., vocab]` float32 of conditional and unconditional logits (same shape) with the step's
  weight: uncond + w (cond - uncond) for "power-cosine", cond + w (cond - uncond) otherwise; cond where w = 0."""
  check_schedule(schedule)
  conditional, unconditional = conditional.astype(jnp.float32), unconditional.astype(jnp.float32)
  base = unconditional if schedule == "power-cosine" else conditional
  guided = base + (conditional - unconditional) * weight
  return jnp.where(jnp.asarray(weight) == 0, conditional, guided)
