"""Decoding encoded image bytes to RGB uint8 arrays."""
import io

import numpy as np
from PIL import Image


def decode_rgb(encoded: bytes) -> np.ndarray:
  """Decodes PNG/JPEG/WebP/... bytes -> uint8 `[height, width, 3]`. Raises on corrupt or truncated data."""
  with Image.open(io.BytesIO(encoded)) as image:
    image.load()
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
