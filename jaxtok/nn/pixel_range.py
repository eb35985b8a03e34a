"""The pixel range a network's weights compute in, around jaxtok's [-1, 1] images.

jaxtok's tokenizers take and return images in [-1, 1]. Official weights trained on [0, 1] images (bytedance's TiTok
and MaskGIT-VQGAN) keep that API with `pixel_range=(0, 1)`: inputs are mapped affinely into the range before the
first layer and outputs mapped back after the last, so `decode` returns `2 * y_official - 1` (never clamped).
"""
from typing import Sequence

import jax

JAXTOK_RANGE = (-1.0, 1.0)


def check_pixel_range(pixel_range: Sequence[float]) -> None:
  """Raises ValueError unless `pixel_range` is (low, high) with low < high."""
  if len(pixel_range) != 2 or not pixel_range[0] < pixel_range[1]:
    raise ValueError(f"pixel_range must be (low, high) with low < high, got {tuple(pixel_range)}.")


def to_pixel_range(images: jax.Array, pixel_range: Sequence[float]) -> jax.Array:
  """images in [-1, 1] -> the same images in `pixel_range` (unchanged for jaxtok's range)."""
  if tuple(pixel_range) == JAXTOK_RANGE:
    return images
  low, high = pixel_range
  return low + (images + 1.0) * (0.5 * (high - low))


def from_pixel_range(images: jax.Array, pixel_range: Sequence[float]) -> jax.Array:
  """The inverse of `to_pixel_range`: network outputs in `pixel_range` -> [-1, 1] (not clamped)."""
  if tuple(pixel_range) == JAXTOK_RANGE:
    return images
  low, high = pixel_range
  return (images - low) * (2.0 / (high - low)) - 1.0
