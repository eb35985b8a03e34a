"""Fixed 2D sine-cosine position embeddings (MAE, He et al. 2022; "Attention Is All You Need" per axis).

Neighbouring patches get similar embeddings, so a ViT starts out spatially smooth instead of having to learn the
grid's geometry from random learned embeddings, which speeds up small-budget training markedly.
"""
import numpy as np


def sincos_1d(positions: np.ndarray, dim: int) -> np.ndarray:
  """positions `[n]` -> `[n, dim]`: sin and cos of positions at dim/2 frequencies 1 / 10000^(2i/dim)."""
  if dim % 2:
    raise ValueError(f"A sine-cosine embedding needs an even dimension, got {dim}.")
  frequencies = 1.0 / 10000**(np.arange(dim // 2, dtype=np.float64) / (dim // 2))
  angles = np.asarray(positions, np.float64)[:, None] * frequencies[None, :]
  return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(grid_size: int, dim: int) -> np.ndarray:
  """Embeddings of a `grid_size` x `grid_size` patch grid in raster order -> float32 `[grid_size**2, dim]`.

  Half the dimensions encode the row, half the column; `dim` must be divisible by 4.
  """
  if dim % 4:
    raise ValueError(f"A 2D sine-cosine embedding needs a dimension divisible by 4, got {dim}.")
  rows, columns = np.meshgrid(np.arange(grid_size), np.arange(grid_size), indexing="ij")
  embedding = np.concatenate([sincos_1d(rows.ravel(), dim // 2), sincos_1d(columns.ravel(), dim // 2)], axis=1)
  return embedding.astype(np.float32)
