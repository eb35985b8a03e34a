"""Shape arithmetic every kernel shares: rounding sizes up to whole blocks and padding arrays to them."""
import jax
import jax.numpy as jnp


def round_up(value: int, multiple: int) -> int:
  """Smallest multiple of `multiple` that is >= value."""
  return -(-value // multiple) * multiple


def next_power_of_two(value: int) -> int:
  """Smallest power of two >= value (>= 1)."""
  return 1 << max(value - 1, 0).bit_length()


def pad_axis(x: jax.Array, axis: int, size: int, value: float = 0.0) -> jax.Array:
  """Pads `x` with `value` at the end of `axis` up to `size` (no-op when already that size)."""
  extra = size - x.shape[axis]
  if extra < 0:
    raise ValueError(f"cannot pad axis {axis} of shape {x.shape} down to {size}")
  if extra == 0:
    return x
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, extra)
  return jnp.pad(x, widths, constant_values=value)
