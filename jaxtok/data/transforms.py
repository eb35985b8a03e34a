"""Per-example image transforms: random resized crops, flips, and uint8 -> float in [-1, 1]."""
import numpy as np
from PIL import Image


def crop_window(height: int, width: int, rng: np.random.Generator, min_fraction: float,
                max_fraction: float) -> tuple[int, int, int]:
  """A random square window (top, left, side) whose side is a uniform fraction of the image's short side."""
  if not 0.0 < min_fraction <= max_fraction <= 1.0:
    raise ValueError(f"Expected 0 < min_fraction <= max_fraction <= 1, got {min_fraction}, {max_fraction}.")
  short_side = min(height, width)
  side = max(1, int(round(short_side * rng.uniform(min_fraction, max_fraction))))
  top = int(rng.integers(0, height - side + 1))
  left = int(rng.integers(0, width - side + 1))
  return top, left, side


def random_resized_crop(image: np.ndarray, size: int, rng: np.random.Generator, min_fraction: float,
                        max_fraction: float) -> np.ndarray:
  """Crops a random square window and resizes it (antialiased bicubic) to `size`. uint8 [h, w, 3] -> [size, size, 3]."""
  return _resize_window(image, *crop_window(image.shape[0], image.shape[1], rng, min_fraction, max_fraction), size)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
  """The centred square of the full short side, resized (antialiased bicubic) to `size`: the standard ImageNet
  evaluation crop for tokenizers (rFID at 256). uint8 [h, w, 3] -> [size, size, 3]."""
  side = min(image.shape[:2])
  return _resize_window(image, (image.shape[0] - side) // 2, (image.shape[1] - side) // 2, side, size)


def _resize_window(image: np.ndarray, top: int, left: int, side: int, size: int) -> np.ndarray:
  window = image[top:top + side, left:left + side]
  if side == size:
    return np.ascontiguousarray(window)
  resized = Image.fromarray(window).resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
  return np.asarray(resized, dtype=np.uint8)


def random_flip(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Mirrors `image` [h, w, c] left-right with probability 1/2."""
  return image[:, ::-1] if rng.uniform() < 0.5 else image


def to_float(image: np.ndarray) -> np.ndarray:
  """uint8 [..., c] in [0, 255] -> float32 in [-1, 1]."""
  return image.astype(np.float32) / 127.5 - 1.0


def to_uint8(image: np.ndarray) -> np.ndarray:
  """float in [-1, 1] (clipped) -> uint8 in [0, 255]; inverse of `to_float` up to rounding."""
  return np.clip(np.round((np.asarray(image, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
