"""PatchGAN discriminator shapes, hinge losses and the adaptive generator weight against NumPy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.losses import adversarial


def test_hinge_losses_match_numpy():
  rng = np.random.default_rng(0)
  real, fake = rng.standard_normal((2, 3, 4, 4, 1)) * 2
  expected = 0.5 * (np.mean(np.maximum(1 - real, 0)) + np.mean(np.maximum(1 + fake, 0)))
  np.testing.assert_allclose(adversarial.hinge_discriminator_loss(real, fake), expected, rtol=1e-5)
  np.testing.assert_allclose(adversarial.generator_adversarial_loss(fake), -np.mean(fake), rtol=1e-5)


def test_adaptive_weight_matches_numpy_and_clips():
  rng = np.random.default_rng(1)
  nll_grad, gan_grad = rng.standard_normal((2, 5, 7))
  expected = np.linalg.norm(nll_grad) / (np.linalg.norm(gan_grad) + 1e-4)
  np.testing.assert_allclose(adversarial.adaptive_generator_weight(nll_grad, gan_grad), expected, rtol=1e-5)
  assert float(adversarial.adaptive_generator_weight(nll_grad, 0 * gan_grad)) == pytest.approx(1e4)
  gradient = jax.grad(lambda g: adversarial.adaptive_generator_weight(g, jnp.asarray(gan_grad)))(jnp.asarray(nll_grad))
  assert not np.any(gradient)
  np.testing.assert_array_equal(adversarial.started(jnp.arange(4), 2), [0, 0, 1, 1])


def test_discriminator_output_shape_and_errors():
  discriminator = adversarial.PatchDiscriminator(base_channels=8, num_layers=2)
  images = jnp.zeros((2, 32, 32, 3))
  params = discriminator.init(jax.random.PRNGKey(0), images)
  assert discriminator.apply(params, images).shape == (2, 6, 6, 1)
  with pytest.raises(ValueError, match=r"\[batch, H, W, 3\].*\(2, 32, 32\)"):
    discriminator.apply(params, images[..., 0])
