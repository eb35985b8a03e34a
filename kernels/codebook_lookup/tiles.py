"""Per-code bias and the running (min score, argmin) bookkeeping shared by every codebook-lookup backend.

Every backend minimises the score `|c_k|^2 - 2 z.c_k` over codes k (the row constant `|z|^2` does not change the
argmin), computed as `bias_k + (-2 z).c_k`: scaling by -2 is exact, and adding the bias to a finished dot leaves
nothing to contract into an FMA, so identical codes get bit-identical scores and ties really are ties.

Backends keep, per row and per lane of a code tile, the best score seen so far and the tile it came from; one
cross-lane reduction at the very end turns that into (min score, lowest index reaching it). Strict `<` between tiles
keeps the earliest tile, and the final reduction picks the lowest global index among equal scores, so ties resolve
to the lowest index exactly like `jnp.argmin`.
"""
import jax
import jax.numpy as jnp
import numpy as np

from jaxtok.kernels import tiling

# Larger than any code index, so `min` over masked indices never picks it while a real index is present.
NO_INDEX = np.iinfo(np.int32).max


def code_bias(codebook_sqnorm: jax.Array | None, num_codes: int, num_codes_padded: int) -> jax.Array:
  """Per-code term added to `-2 z.c`, `[num_codes_padded]` float32, +inf on padding codes so they never win.

  Given squared norms are used as they are; None gives zeros, and the kernel adds `|c|^2` computed from the very
  tile it multiplies (`tile_sqnorm`), the same way for every code, so identical codes get identical scores.
  """
  if codebook_sqnorm is None:
    codebook_sqnorm = jnp.zeros((num_codes,), jnp.float32)
  return tiling.pad_axis(codebook_sqnorm.astype(jnp.float32), 0, num_codes_padded, value=np.inf)


def tile_sqnorm(codes: jax.Array) -> jax.Array:
  """`|c|^2` in float32 of each code of a tile: `[block_codes, D]` -> `[block_codes]`."""
  codes = codes.astype(jnp.float32)
  return jnp.sum(codes * codes, axis=1)


def fold_tile(best_score: jax.Array, best_tile: jax.Array, scores: jax.Array, tile: jax.Array):
  """Folds one tile of scores into the lane-wise running minimum.

  Args:
    best_score: `[rows, block_codes]` float32, best score per (row, lane) over earlier tiles.
    best_tile: `[rows, block_codes]` int32, the tile each best score came from.
    scores: `[rows, block_codes]` float32 scores of this tile.
    tile: scalar int32 number of this tile.

  Returns:
    The updated (best_score, best_tile); an equal score keeps the earlier (lower-index) tile.
  """
  better = scores < best_score
  return jnp.where(better, scores, best_score), jnp.where(better, tile, best_tile)


def reduce_lanes(best_score: jax.Array, best_tile: jax.Array, block_codes: int, keepdims: bool = True):
  """Cross-lane reduction of the running minimum.

  Args:
    best_score: `[rows, block_codes]` float32.
    best_tile: `[rows, block_codes]` int32.
    block_codes: codes per tile.
    keepdims: keep the reduced axis (`[rows, 1]` results, for TPU layouts) or drop it (`[rows]`).

  Returns:
    (score, index): the minimum score per row and the lowest code index reaching it.
  """
  lane = jax.lax.broadcasted_iota(jnp.int32, best_score.shape, 1)
  index = best_tile * block_codes + lane
  row_min = jnp.min(best_score, axis=1, keepdims=True)
  index = jnp.min(jnp.where(best_score == row_min, index, NO_INDEX), axis=1, keepdims=keepdims)
  return (row_min if keepdims else jnp.min(best_score, axis=1)), index


def merge_partials(scores: jax.Array, indices: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Merges per-part minima of disjoint, ascending code ranges.

  Args:
    scores: `[parts, N]` float32 best score of each part (parts cover increasing code indices).
    indices: `[parts, N]` int32 global index of each part's best code.

  Returns:
    (indices, scores), each `[N]`: the best over parts; equal scores keep the earliest part, i.e. the lowest index.
  """
  part = jnp.argmin(scores, axis=0)
  take = lambda x: jnp.take_along_axis(x, part[None, :], axis=0)[0]
  return take(indices), take(scores)
