"""Pixel losses and the multi-resolution STFT loss against float64 NumPy oracles."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.losses import reconstruction


def test_pixel_losses_match_numpy():
  rng = np.random.default_rng(0)
  a, b = rng.standard_normal((2, 3, 5, 4, 3))
  np.testing.assert_allclose(reconstruction.reconstruction_loss(a, b, "l2"), np.mean((a - b)**2), rtol=1e-5)
  np.testing.assert_allclose(reconstruction.reconstruction_loss(a, b, "l1"), np.mean(np.abs(a - b)), rtol=1e-5)
  with pytest.raises(ValueError, match="expected one of"):
    reconstruction.reconstruction_loss(a, b, "huber")
  with pytest.raises(ValueError, match="same shape"):
    reconstruction.reconstruction_loss(a, b[:, :2], "l1")


def numpy_stft_magnitude(x, fft_size, hop):
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(fft_size) / fft_size)
  frames = [x[:, s:s + fft_size] * window for s in range(0, x.shape[1] - fft_size + 1, hop)]
  return np.abs(np.fft.rfft(np.stack(frames, axis=1), axis=-1))


def test_stft_loss_matches_numpy():
  rng = np.random.default_rng(1)
  target = rng.standard_normal((2, 300))
  predicted = target + 0.3 * rng.standard_normal((2, 300))
  resolutions = ((64, 16), (128, 32))
  np.testing.assert_allclose(reconstruction.stft_magnitude(jnp.asarray(target, jnp.float32), 64, 16),
                             numpy_stft_magnitude(target, 64, 16), rtol=1e-3, atol=1e-3)
  expected = 0.0
  for fft_size, hop in resolutions:
    s, s_hat = numpy_stft_magnitude(target, fft_size, hop), numpy_stft_magnitude(predicted, fft_size, hop)
    convergence = np.sqrt(np.sum((s - s_hat)**2, axis=(1, 2))) / np.sqrt(np.sum(s**2, axis=(1, 2)) + 1e-7)
    expected += np.mean(convergence) + np.mean(np.abs(np.log(s + 1e-7) - np.log(s_hat + 1e-7)))
  loss = reconstruction.multi_resolution_stft_loss(jnp.asarray(target, jnp.float32),
                                                   jnp.asarray(predicted, jnp.float32), resolutions)
  np.testing.assert_allclose(loss, expected / 2, rtol=1e-3)
  assert float(reconstruction.multi_resolution_stft_loss(target, target, resolutions)) == 0.0
  with pytest.raises(ValueError, match=r"samples >= 512"):
    reconstruction.stft_magnitude(jnp.zeros((2, 100)), 512, 128)
