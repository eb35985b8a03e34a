"""Per-image PSNR and SSIM for images in [-1, 1], as pure jnp functions (jit/vmap-able)."""
import jax
import jax.numpy as jnp

_DATA_RANGE = 2.0  # images live in [-1, 1]


def psnr(reference: jax.Array, reconstruction: jax.Array) -> jax.Array:
  """Peak signal-to-noise ratio in dB per image. Both `[batch, height, width, channels]` in [-1, 1] -> `[batch]`.

  Identical images give +inf, as skimage.metrics.peak_signal_noise_ratio does.
  """
  _check_same_shape(reference, reconstruction)
  error = jnp.mean(jnp.square(reference.astype(jnp.float32) - reconstruction.astype(jnp.float32)), axis=(1, 2, 3))
  return 10.0 * jnp.log10(_DATA_RANGE**2 / error)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> jax.Array:
  offsets = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
  weights = jnp.exp(-0.5 * jnp.square(offsets / sigma))
  return weights / jnp.sum(weights)


def _blur(images: jax.Array, window: jax.Array) -> jax.Array:
  """Separable 'valid' Gaussian filter over height and width of `[batch, height, width, channels]`."""
  channels = images.shape[-1]
  vertical = jnp.tile(window[:, None, None, None], (1, 1, 1, channels))
  horizontal = jnp.tile(window[None, :, None, None], (1, 1, 1, channels))
  dimension_numbers = ("NHWC", "HWIO", "NHWC")
  out = jax.lax.conv_general_dilated(images, vertical, (1, 1), "VALID", dimension_numbers=dimension_numbers,
                                     feature_group_count=channels)
  return jax.lax.conv_general_dilated(out, horizontal, (1, 1), "VALID", dimension_numbers=dimension_numbers,
                                      feature_group_count=channels)


def ssim(reference: jax.Array, reconstruction: jax.Array) -> jax.Array:
  """Structural similarity per image (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03).

  Matches `skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=2, channel_axis=-1)`: the mean SSIM over valid window positions and channels.

  Args:
    reference, reconstruction: `[batch, height, width, channels]` in [-1, 1], height and width >= 11.

  Returns:
    `[batch]` float32 in [-1, 1].
  """
  _check_same_shape(reference, reconstruction)
  if min(reference.shape[1:3]) < 11:
    raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {reference.shape[1:3]}.")
  x = reference.astype(jnp.float32)
  y = reconstruction.astype(jnp.float32)
  window = _gaussian_window()
  c1 = (0.01 * _DATA_RANGE)**2
  c2 = (0.03 * _DATA_RANGE)**2
  mu_x, mu_y = _blur(x, window), _blur(y, window)
  var_x = _blur(x * x, window) - mu_x**2
  var_y = _blur(y * y, window) - mu_y**2
  cov = _blur(x * y, window) - mu_x * mu_y
  ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
  return jnp.mean(ssim_map, axis=(1, 2, 3))


def _check_same_shape(a: jax.Array, b: jax.Array) -> None:
  if a.shape != b.shape or a.ndim != 4:
    raise ValueError(f"Expected two [batch, height, width, channels] arrays of one shape, got {a.shape} and {b.shape}.")
