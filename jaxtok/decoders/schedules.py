"""Mask schedules of masked generative decoders (MaskGIT, Chang et al. 2022, "MaskGIT: Masked Generative Image
Transformer", section 3.3).

A schedule maps the generation time `t` in [0, 1] to the fraction of tokens still masked: 1 at t=0 (everything
masked), 0 at t=1 (everything decoded), non-increasing in between. Training draws `t` uniformly and masks that
fraction (`mask_ratio`); the sampler of T steps leaves `masked_counts(T, n, name, rule)[s]` of n tokens masked after
step s = 0..T-1 (none after the last step), where the count rule is one of:

- "fix_at_least_one" (jaxtok's): floor(n * mask_ratio((s + 1) / T)), clipped to [T - 1 - s, masked before the step
  - 1], so that every step fixes at least one token and leaves at least one for each later step (T <= n).
- "maskgit" (the official rule: 1d-tokenizer's `ImageBert.generate`, which ports google-research/maskgit's
  decoding): max(1, min(masked before the step - 1, floor(n * mask_ratio((s + 1) / T)))) for s < T - 1, 0 after the
  last step. A step may then fix no token (when one is left, or T > n), and the last step decodes all the rest;
  any T >= 1 is accepted.
The two rules agree whenever the schedule's floor already fixes one token per step and leaves one per later step
(e.g. 8 steps of "cosine" or "arccos" over 32 to 256 tokens).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

SCHEDULES = ("cosine", "arccos", "linear", "square", "sqrt")
COUNT_RULES = ("fix_at_least_one", "maskgit")


def _check_schedule(name: str) -> None:
  if name not in SCHEDULES:
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}.")


def mask_ratio(t: float | jax.Array, name: str) -> jax.Array:
  """Fraction of tokens masked at time `t` (any shape, values in [0, 1]) under schedule `name`; float32, same shape.

  cosine: cos(pi t / 2) (MaskGIT's choice); arccos: arccos(t) / (pi / 2) (1d-tokenizer's MaskGIT for TiTok, at
  training and sampling); linear: 1 - t; square: 1 - t^2; sqrt: 1 - sqrt(t).
  """
  _check_schedule(name)
  t = jnp.clip(jnp.asarray(t, jnp.float32), 0.0, 1.0)
  if name == "cosine":
    # cos(pi/2) is 6e-17 in float64 but -4e-8 in float32: clip so that t=1 gives exactly 0.
    return jnp.clip(jnp.cos(0.5 * jnp.pi * t), 0.0, 1.0)
  if name == "arccos":
    return jnp.clip(jnp.arccos(t) / (0.5 * jnp.pi), 0.0, 1.0)
  if name == "linear":
    return 1.0 - t
  if name == "square":
    return 1.0 - t * t
  return 1.0 - jnp.sqrt(t)


def _mask_ratio_float(t: float, name: str) -> float:
  """`mask_ratio` in float64 on the host, for the static step table (arccos through numpy, as the official code)."""
  return {"cosine": lambda: max(math.cos(0.5 * math.pi * t), 0.0) if t < 1.0 else 0.0,
          "arccos": lambda: float(np.arccos(t) / (math.pi * 0.5)),
          "linear": lambda: 1.0 - t, "square": lambda: 1.0 - t * t, "sqrt": lambda: 1.0 - math.sqrt(t)}[name]()


def masked_counts(num_steps: int, num_tokens: int, name: str, rule: str = "fix_at_least_one") -> np.ndarray:
  """Tokens of `num_tokens` still masked after each of `num_steps` steps, `[num_steps]` int32, under schedule `name`
  and count rule `rule` (see the module docstring)."""
  _check_schedule(name)
  if rule not in COUNT_RULES:
    raise ValueError(f"count rule must be one of {COUNT_RULES}, got {rule!r}.")
  if num_tokens < 1:
    raise ValueError(f"num_tokens must be >= 1, got {num_tokens}.")
  if rule == "fix_at_least_one" and not 1 <= num_steps <= num_tokens:
    raise ValueError(f"num_steps must lie in [1, num_tokens={num_tokens}] (one token fixed per step at least), "
                     f"got {num_steps}.")
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}.")
  counts, previous = [], num_tokens
  for step in range(num_steps):
    scheduled = math.floor(num_tokens * _mask_ratio_float((step + 1) / num_steps, name))
    if rule == "maskgit":
      previous = 0 if step == num_steps - 1 else max(1, min(previous - 1, scheduled))
    else:  # Fix at least one token now, and leave at least one for each later step.
      previous = min(max(scheduled, num_steps - 1 - step), previous - 1)
    counts.append(previous)
  return np.asarray(counts, np.int32)


def num_masked_after_step(step: int, num_steps: int, num_tokens: int, name: str,
                          rule: str = "fix_at_least_one") -> int:
  """Tokens of `num_tokens` left masked after sampling step `step` (0-based) of `num_steps` (`masked_counts`)."""
  if not 0 <= step < num_steps:
    raise ValueError(f"step must lie in [0, num_steps={num_steps}), got {step}.")
  return int(masked_counts(num_steps, num_tokens, name, rule)[step])
