"""Finite scalar quantization (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple").

By default exactly the paper's reference code (google-research/finite_scalar_quantization): each channel is bounded
by `tanh(z + shift) * half_l - offset` with `half_l = (L - 1)(1 - 1e-3) / 2`, `offset = 0.5` for even L (0 for odd)
and `shift = tan(offset / half_l)`; rounded with a straight-through gradient; divided by `L // 2`, so codes lie in
[-1, 1]. The index is mixed radix with the FIRST channel least significant.

`bound_shift='atanh'` is what the PyTorch ports do: `half_l = (L - 1)(1 + 1e-3) / 2` and
`shift = atanh(offset / half_l)`, so `bound(0)` is exactly 0 and the bounded range is centred on the grid (its ends
overshoot the outer levels by 5e-4 * (L - 1), still rounding onto them). The reference's `tan` leaves `bound(0)` off
centre: -4.3e-4 for L = 4, -1.4e-5 for L = 8, but -0.043 for L = 2. The default keeps the reference, so results
match the paper's code.
"""
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxtok.quantizers import base
from jaxtok.quantizers import codebook_state

BOUND_SHIFTS = ("tan", "atanh")
_BOUND_EPSILON = 1e-3
_MAX_INDEX = 2**31 - 1


def check_levels(levels: Sequence[int]) -> None:
  """Raises ValueError unless every level is an int >= 2 and the grid size fits an int32 index."""
  if not levels or any(int(level) != level or level < 2 for level in levels):
    raise ValueError(f"FSQ levels must be a non-empty sequence of ints >= 2, got {tuple(levels)}.")
  if math.prod(levels) > _MAX_INDEX + 1:
    raise ValueError(f"FSQ grid size prod(levels) must be <= 2^31 for int32 indices, got {math.prod(levels)}.")


def _levels_array(levels: Sequence[int]) -> jax.Array:
  return jnp.asarray(levels, jnp.float32)


def bound(z: jax.Array, levels: Sequence[int], bound_shift: str = "tan") -> jax.Array:
  """z `[..., len(levels)]` float32 -> values in (-L/2, L/2) per channel, before rounding."""
  if bound_shift not in BOUND_SHIFTS:
    raise ValueError(f"bound_shift must be one of {BOUND_SHIFTS}, got {bound_shift!r}.")
  levels_f = _levels_array(levels)
  epsilon = -_BOUND_EPSILON if bound_shift == "tan" else _BOUND_EPSILON
  half_l = (levels_f - 1) * (1 + epsilon) / 2
  offset = jnp.where(jnp.asarray(levels) % 2 == 1, 0.0, 0.5)
  shift = jnp.tan(offset / half_l) if bound_shift == "tan" else jnp.arctanh(offset / half_l)
  return jnp.tanh(z + shift) * half_l - offset


def round_ste(z: jax.Array) -> jax.Array:
  """Round to the nearest integer with a straight-through (identity) gradient."""
  return jax.lax.stop_gradient(jnp.round(z)) + (z - jax.lax.stop_gradient(z))


def fsq_quantize(z: jax.Array, levels: Sequence[int], bound_shift: str = "tan") -> jax.Array:
  """z `[..., len(levels)]` -> codes on the grid `{k / (L // 2)}` within [-1, 1], float32, straight-through."""
  half_width = jnp.asarray([level // 2 for level in levels], jnp.float32)
  return round_ste(bound(z.astype(jnp.float32), levels, bound_shift)) / half_width


def _basis(levels: Sequence[int]) -> jax.Array:
  return jnp.asarray(np.concatenate([[1], np.cumprod(levels[:-1])]), jnp.int32)


def fsq_codes_to_indices(codes: jax.Array, levels: Sequence[int]) -> jax.Array:
  """Grid codes `[..., len(levels)]` -> int32 indices `[...]`, mixed radix, first channel least significant."""
  half_width = jnp.asarray([level // 2 for level in levels], jnp.float32)
  digits = jnp.round(codes.astype(jnp.float32) * half_width + half_width).astype(jnp.int32)
  return jnp.sum(digits * _basis(levels), axis=-1, dtype=jnp.int32)


def fsq_indices_to_codes(indices: jax.Array, levels: Sequence[int]) -> jax.Array:
  """int indices `[...]` -> grid codes `[..., len(levels)]` float32 in [-1, 1]."""
  half_width = jnp.asarray([level // 2 for level in levels], jnp.float32)
  digits = (indices.astype(jnp.int32)[..., None] // _basis(levels)) % jnp.asarray(levels, jnp.int32)
  return (digits.astype(jnp.float32) - half_width) / half_width


class FSQ(nn.Module):
  """Finite scalar quantizer. `__call__(x [..., input dim], train=False)` -> QuantizerOutput, indices `[...]` int32.

  Attributes:
    levels: quantization levels per code channel, each >= 2 (e.g. (8, 5, 5, 5) for K = 1000).
    input_dim: when set and different from len(levels), dense projections map input_dim -> len(levels) -> input_dim.
    bound_shift: 'tan' (the reference code, default) or 'atanh' (exactly centred), see the module docstring.
    usage_window: steps over which "window_codebook_usage" counts a code as used (codebooks up to 2^20 codes).
  FSQ has no auxiliary loss (`loss` is 0) and no RNG. State: "quantizer"/steps_since_used `[K]` and
  usage_steps `[]` when K <= 2^20.
  """

  levels: Sequence[int]
  input_dim: int | None = None
  bound_shift: str = "tan"
  usage_window: int = 100

  @property
  def codebook_size(self) -> int:
    return math.prod(self.levels)

  @property
  def bits_per_token(self) -> float:
    return sum(math.log2(level) for level in self.levels)

  @property
  def _projects(self) -> bool:
    return self.input_dim is not None and self.input_dim != len(self.levels)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> base.QuantizerOutput:
    """x `[..., input_dim or len(levels)]` -> QuantizerOutput; `train=True` with "quantizer" mutable counts usage."""
    check_levels(self.levels)
    base.check_input(x, self.input_dim or len(self.levels), "FSQ")
    z = base.project(self, "project_in", x, len(self.levels)) if self._projects else x.astype(jnp.float32)
    codes = fsq_quantize(z, self.levels, self.bound_shift)
    indices = fsq_codes_to_indices(jax.lax.stop_gradient(codes), self.levels)
    metrics = {}
    if self.codebook_size <= codebook_state.MAX_TRACKED_CODES:
      metrics.update(base.usage_metrics(indices, self.codebook_size))
      counts = base.code_histogram(indices, self.codebook_size)
      metrics.update(codebook_state.track_usage(self, counts, window=self.usage_window,
                                                update=base.updates_state(self, train))[1])
    quantized = base.project(self, "project_out", codes, x.shape[-1]) if self._projects else codes
    return base.QuantizerOutput(quantized=quantized.astype(x.dtype), indices=indices,
                                loss=jnp.zeros((), jnp.float32), metrics=metrics)

  def indices_to_codes(self, indices: jax.Array) -> jax.Array:
    """int indices `[...]` -> quantized vectors `[..., input dim]` (grid codes, through project_out if any)."""
    base.check_integer_indices(indices, "FSQ")
    codes = fsq_indices_to_codes(indices, self.levels)
    return base.project_stored(self, "project_out", codes) if self._projects else codes

  def codes_to_indices(self, codes: jax.Array) -> jax.Array:
    """Grid codes `[..., len(levels)]` (before any projection) -> int32 indices `[...]`."""
    base.check_input(codes, len(self.levels), "FSQ.codes_to_indices")
    return fsq_codes_to_indices(codes, self.levels)
