"""Gradient estimators through the nearest-code choice: straight-through and the rotation trick.

Both return exactly `codes` in the forward pass (written `sg(codes) + (v - sg(v))`, which is bit-exact, rather
than `v + sg(codes - v)`, which rounds). `straight_through` passes the gradient to z unchanged;
`rotation_trick` (Fifty et al. 2024, "Restructuring Vector Quantization with the Rotation Trick") passes it through
the fixed rotation-and-rescaling `lambda * R` that maps z onto its code, so `grad_z = lambda * R^T grad_out` with
`R = I - 2 r r^T + 2 q_hat z_hat^T`, `r = (z_hat + q_hat) / |z_hat + q_hat|`, `lambda = |q| / |z|`.
"""
import jax
import jax.numpy as jnp

ESTIMATORS = ("ste", "rotation")
_EPSILON = 1e-6


def straight_through(z: jax.Array, codes: jax.Array) -> jax.Array:
  """z, codes: `[..., dim]` -> codes, with d(out)/dz = identity."""
  return jax.lax.stop_gradient(codes) + (z - jax.lax.stop_gradient(z))


def _unit(v: jax.Array) -> tuple[jax.Array, jax.Array]:
  norm = jnp.sqrt(jnp.sum(v * v, axis=-1, keepdims=True))
  return v / jnp.maximum(norm, _EPSILON), norm


def rotation_trick(z: jax.Array, codes: jax.Array) -> jax.Array:
  """z, codes: `[..., dim]` -> codes, with d(out)/dz = lambda * R (constant in z), see the module docstring."""
  fixed_z, fixed_codes = jax.lax.stop_gradient((z, codes))
  z_hat, z_norm = _unit(fixed_z)
  q_hat, q_norm = _unit(fixed_codes)
  r, _ = _unit(z_hat + q_hat)
  scale = q_norm / jnp.maximum(z_norm, _EPSILON)
  dot = lambda a, b: jnp.sum(a * b, axis=-1, keepdims=True)
  rotated = scale * (z - 2.0 * r * dot(r, z) + 2.0 * q_hat * dot(z_hat, z))
  return fixed_codes + (rotated - jax.lax.stop_gradient(rotated))


def apply_estimator(name: str, z: jax.Array, codes: jax.Array) -> jax.Array:
  """Dispatch by name, one of ESTIMATORS."""
  if name == "ste":
    return straight_through(z, codes)
  if name == "rotation":
    return rotation_trick(z, codes)
  raise ValueError(f"estimator must be one of {ESTIMATORS}, got {name!r}.")
