"""The float32-accumulating matrix product every sparse-attention backend builds its tiles from."""
import jax
import jax.numpy as jnp


def dot(a: jax.Array, b: jax.Array, contract_a: int, contract_b: int) -> jax.Array:
  """2-D matrix product contracting axis `contract_a` of a with `contract_b` of b, accumulated in float32."""
  return jax.lax.dot_general(a, b, (((contract_a,), (contract_b,)), ((), ())), preferred_element_type=jnp.float32)
