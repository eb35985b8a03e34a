"""Mask schedules of masked generative decoders (MaskGIT, Chang et al. 2022, "MaskGIT: Masked Generative Image
Transformer", section 3.3).

A schedule maps the generation time `t` in [0, 1] to the fraction of tokens still masked: 1 at t=0 (everything
masked), 0 at t=1 (everything decoded), non-increasing in between. Training draws `t` uniformly and masks that
fraction (`mask_ratio`); the sampler of T steps leaves `num_masked_after_step(s, T, n)` of n tokens masked after step
s = 0..T-1, which fixes at least one token per step and none is left masked after the last one.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

SCHEDULES = ("cosine", "linear", "square", "sqrt")


def _check_schedule(name: str) -> None:
  if name not in SCHEDULES:
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}.")


def mask_ratio(t: float | jax.Array, name: str) -> jax.Array:
  """Fraction of tokens masked at time `t` (any shape, values in [0, 1]) under schedule `name`; float32, same shape.

  cosine: cos(pi t / 2) (MaskGIT's choice); linear: 1 - t; square: 1 - t^2; sqrt: 1 - sqrt(t).
  """
  _check_schedule(name)
  t = jnp.clip(jnp.asarray(t, jnp.float32), 0.0, 1.0)
  if name == "cosine":
    # cos(pi/2) is 6e-17 in float64 but -4e-8 in float32: clip so that t=1 gives exactly 0.
    return jnp.clip(jnp.cos(0.5 * jnp.pi * t), 0.0, 1.0)
  if name == "linear":
    return 1.0 - t
  if name == "square":
    return 1.0 - t * t
  return 1.0 - jnp.sqrt(t)


def _mask_ratio_float(t: float, name: str) -> float:
  """`mask_ratio` in float64 on the host, for the static step table."""
  return {"cosine": lambda: max(math.cos(0.5 * math.pi * t), 0.0) if t < 1.0 else 0.0,
          "linear": lambda: 1.0 - t, "square": lambda: 1.0 - t * t, "sqrt": lambda: 1.0 - math.sqrt(t)}[name]()


def masked_counts(num_steps: int, num_tokens: int, name: str) -> np.ndarray:
  """Tokens still masked after each step, `[num_steps]` int32 (see `num_masked_after_step`)."""
  _check_schedule(name)
  if not 1 <= num_steps <= num_tokens:
    raise ValueError(f"num_steps must lie in [1, num_tokens={num_tokens}] (one token fixed per step at least), "
                     f"got {num_steps}.")
  counts, previous = [], num_tokens
  for step in range(num_steps):
    scheduled = math.floor(num_tokens * _mask_ratio_float((step + 1) / num_steps, name))
    # Fix at least one token now, and leave at least one for each later step.
    previous = min(max(scheduled, num_steps - 1 - step), previous - 1)
    counts.append(previous)
  return np.asarray(counts, np.int32)


def num_masked_after_step(step: int, num_steps: int, num_tokens: int, name: str) -> int:
  """Tokens of `num_tokens` left masked after sampling step `step` (0-based) of `num_steps`.

  floor(num_tokens * mask_ratio((step + 1) / num_steps)), clipped to [num_steps - 1 - step, masked before the
  step - 1] so that every step fixes at least one token; 0 after the last step.
  """
  if not 0 <= step < num_steps:
    raise ValueError(f"step must lie in [0, num_steps={num_steps}), got {step}.")
  return int(masked_counts(num_steps, num_tokens, name)[step])
