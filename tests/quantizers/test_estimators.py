"""Straight-through and rotation-trick gradients against their closed forms (float64 NumPy)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.quantizers import estimators


def _rotation_jacobian(z: np.ndarray, q: np.ndarray) -> np.ndarray:
  """lambda * R for one pair of vectors, R = I - 2 r r^T + 2 q_hat z_hat^T."""
  z_hat, q_hat = z / np.linalg.norm(z), q / np.linalg.norm(q)
  r = (z_hat + q_hat) / np.linalg.norm(z_hat + q_hat)
  rotation = np.eye(z.size) - 2 * np.outer(r, r) + 2 * np.outer(q_hat, z_hat)
  return np.linalg.norm(q) / np.linalg.norm(z) * rotation


@pytest.mark.parametrize("name", estimators.ESTIMATORS)
def test_forward_returns_the_codes(name):
  z, codes = np.random.default_rng(0).normal(size=(2, 7, 5)).astype(np.float32)
  out = estimators.apply_estimator(name, jnp.asarray(z), jnp.asarray(codes))
  np.testing.assert_allclose(np.asarray(out), codes, rtol=0, atol=1e-6)


def test_straight_through_gradient_is_identity():
  rng = np.random.default_rng(1)
  z, codes, cotangent = rng.normal(size=(3, 4, 6)).astype(np.float32)
  _, vjp = jax.vjp(lambda v: estimators.straight_through(v, jnp.asarray(codes)), jnp.asarray(z))
  np.testing.assert_array_equal(np.asarray(vjp(jnp.asarray(cotangent))[0]), cotangent)


def test_rotation_trick_gradient_matches_closed_form_and_differs_from_ste():
  rng = np.random.default_rng(2)
  z, codes, cotangent = rng.normal(size=(3, 4, 6))
  _, vjp = jax.vjp(lambda v: estimators.rotation_trick(v, jnp.asarray(codes, jnp.float32)),
                   jnp.asarray(z, jnp.float32))
  grad = np.asarray(vjp(jnp.asarray(cotangent, jnp.float32))[0])
  expected = np.stack([_rotation_jacobian(z[i], codes[i]).T @ cotangent[i] for i in range(4)])
  np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-5)
  assert np.max(np.abs(grad - cotangent)) > 0.1


def test_rotation_maps_z_onto_its_code():
  rng = np.random.default_rng(3)
  z, codes = rng.normal(size=(2, 5))
  np.testing.assert_allclose(_rotation_jacobian(z, codes) @ z, codes, rtol=1e-10, atol=1e-12)


def test_unknown_estimator_is_rejected():
  with pytest.raises(ValueError, match="one of \\('ste', 'rotation'\\), got 'gumbel'"):
    estimators.apply_estimator("gumbel", jnp.zeros((2, 3)), jnp.zeros((2, 3)))
