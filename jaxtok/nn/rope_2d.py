"""LlamaGen's 2D rotary position embedding (Su et al. 2021, RoFormer; per grid axis as in Sun et al. 2024,
"Autoregressive Model Beats Diffusion: Llama for Scalable Image Generation").

A head of dimension D rotates D/2 interleaved pairs `(x[2j], x[2j+1])`. The first D/4 pairs turn by the token's row
in the image grid, the next D/4 by its column, pair j of each half at frequency `base^(-2j / (D/2))`. The table has
one row per sequence position: first the condition positions (1 class token, or 120 caption tokens), whose cos and
sin are both 0 — LlamaGen's choice, which makes their queries and keys zero (every attention score involving them
is 0), unlike a plain RoPE at position 0 (identity) — then the image tokens in raster order, token i at position
`num_condition_positions + i`.
"""
import jax
import jax.numpy as jnp
import numpy as np


def rope_2d_table(grid_size: int, head_dim: int, base: float = 10000.0,
                  num_condition_positions: int = 1) -> np.ndarray:
  """cos and sin per position and pair: float32 `[num_condition_positions + grid_size**2, head_dim // 2, 2]`.

  `[..., 0]` is cos, `[..., 1]` sin; the condition rows are 0. Frequencies are computed in float32, as the official
  code does.
  """
  if head_dim % 4 or grid_size < 1 or num_condition_positions < 0:
    raise ValueError(f"2D RoPE needs head_dim divisible by 4, grid_size >= 1 and num_condition_positions >= 0, got "
                     f"head_dim={head_dim}, grid_size={grid_size}, num_condition_positions={num_condition_positions}.")
  half = head_dim // 2
  exponents = np.arange(0, half, 2, dtype=np.int64)[:half // 2].astype(np.float32) / np.float32(half)
  frequencies = (np.float32(1.0) / np.power(np.float32(base), exponents)).astype(np.float32)  # [D / 4]
  angles_1d = np.arange(grid_size, dtype=np.float32)[:, None] * frequencies[None]  # [grid, D / 4]
  rows = np.broadcast_to(angles_1d[:, None, :], (grid_size, grid_size, half // 2))
  columns = np.broadcast_to(angles_1d[None, :, :], (grid_size, grid_size, half // 2))
  angles = np.concatenate([rows, columns], axis=-1).reshape(grid_size * grid_size, half)
  table = np.stack([np.cos(angles), np.sin(angles)], axis=-1).astype(np.float32)
  return np.concatenate([np.zeros((num_condition_positions, half, 2), np.float32), table])


def apply_rope(x: jax.Array, cos_sin: jax.Array) -> jax.Array:
  """Rotates interleaved pairs of x, in float32, and returns x's dtype.

  Args:
    x: `[batch, length, heads, head_dim]`.
    cos_sin: `[batch or 1, length, head_dim // 2, 2]` rows of `rope_2d_table` at the tokens' positions.
  """
  pairs = x.astype(jnp.float32).reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
  cos, sin = cos_sin[:, :, None, :, 0], cos_sin[:, :, None, :, 1]
  even, odd = pairs[..., 0], pairs[..., 1]
  rotated = jnp.stack([even * cos - odd * sin, odd * cos + even * sin], axis=-1)
  return rotated.reshape(x.shape).astype(x.dtype)


def rope_at(table: np.ndarray | jax.Array, positions: jax.Array) -> jax.Array:
  """Rows of the table at integer positions `[batch, length]` -> `[batch, length, head_dim // 2, 2]`; positions past
  the end take the last row (speculative drafts beyond the image are discarded anyway)."""
  return jnp.take(jnp.asarray(table), positions, axis=0, mode="clip")
