"""Helpers every sparse-attention backend shares: padding sequences to whole blocks and float32-accumulating dots."""
import jax
import jax.numpy as jnp


def pad_to(x: jax.Array, axis: int, size: int, value: float = 0.0) -> jax.Array:
  """Pads `x` with `value` at the end of `axis` up to `size` (no-op when already that size)."""
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, size - x.shape[axis])
  return jnp.pad(x, widths, constant_values=value)


def dot(a: jax.Array, b: jax.Array, contract_a: int, contract_b: int) -> jax.Array:
  """2-D matrix product contracting axis `contract_a` of a with `contract_b` of b, accumulated in float32."""
  return jax.lax.dot_general(a, b, (((contract_a,), (contract_b,)), ((), ())), preferred_element_type=jnp.float32)
