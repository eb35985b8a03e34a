"""Reconstruction losses: pixel L1 / L2 for images, and the multi-resolution STFT loss for waveforms."""
import jax
import jax.numpy as jnp

RECONSTRUCTION_LOSSES = ("l2", "l1")


def reconstruction_loss(images: jax.Array, reconstructions: jax.Array, kind: str) -> jax.Array:
  """Mean squared ("l2") or absolute ("l1") error over all entries (e.g. `[batch, height, width, 3]`), float32."""
  if images.shape != reconstructions.shape:
    raise ValueError(f"images and reconstructions must have the same shape, got {images.shape} and "
                     f"{reconstructions.shape}.")
  difference = reconstructions.astype(jnp.float32) - images.astype(jnp.float32)
  if kind == "l2":
    return jnp.mean(jnp.square(difference))
  if kind == "l1":
    return jnp.mean(jnp.abs(difference))
  raise ValueError(f"Unknown reconstruction loss {kind!r}; expected one of {RECONSTRUCTION_LOSSES}.")


def stft_magnitude(waveforms: jax.Array, fft_size: int, hop_size: int) -> jax.Array:
  """|STFT| with a periodic Hann window, frames fully inside the signal (no padding).

  Args:
    waveforms: `[batch, samples]` with samples >= fft_size.
    fft_size: window and FFT length; hop_size: stride between frames.

  Returns:
    `[batch, frames, fft_size // 2 + 1]` float32, frames = 1 + (samples - fft_size) // hop_size.
  """
  if waveforms.ndim != 2 or waveforms.shape[1] < fft_size:
    raise ValueError(f"Expected waveforms [batch, samples >= {fft_size}], got shape {waveforms.shape}.")
  num_frames = 1 + (waveforms.shape[1] - fft_size) // hop_size
  starts = jnp.arange(num_frames)[:, None] * hop_size + jnp.arange(fft_size)[None, :]
  window = 0.5 - 0.5 * jnp.cos(2.0 * jnp.pi * jnp.arange(fft_size) / fft_size)
  frames = waveforms.astype(jnp.float32)[:, starts] * window
  return jnp.abs(jnp.fft.rfft(frames, axis=-1))


def multi_resolution_stft_loss(waveforms: jax.Array, reconstructions: jax.Array,
                               resolutions: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (256, 64)),
                               epsilon: float = 1e-7) -> jax.Array:
  """Mean over resolutions of spectral convergence + log-magnitude L1 (Yamamoto et al., Parallel WaveGAN).

  Spectral convergence: `||S - S_hat||_F / ||S||_F` per example, averaged; log-magnitude: mean `|log S - log S_hat|`.
  Args:
    waveforms, reconstructions: `[batch, samples]`.
    resolutions: (fft_size, hop_size) pairs.
  """
  total = jnp.zeros((), jnp.float32)
  for fft_size, hop_size in resolutions:
    target = stft_magnitude(waveforms, fft_size, hop_size)
    predicted = stft_magnitude(reconstructions, fft_size, hop_size)
    convergence = jnp.sqrt(jnp.sum(jnp.square(target - predicted), axis=(1, 2))) / jnp.sqrt(
        jnp.sum(jnp.square(target), axis=(1, 2)) + epsilon)
    log_magnitude = jnp.mean(jnp.abs(jnp.log(target + epsilon) - jnp.log(predicted + epsilon)))
    total += jnp.mean(convergence) + log_magnitude
  return total / len(resolutions)
