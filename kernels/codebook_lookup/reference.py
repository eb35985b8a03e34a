"""Chunked XLA codebook lookup: scans codebook chunks, never holding more than `[N, chunk]` scores.

This is the CPU path, the fallback of every backend and the reference the Pallas kernels are tested against.
"""
import einops
import jax
import jax.numpy as jnp
import numpy as np

from jaxtok.kernels import tiling
from jaxtok.kernels.codebook_lookup import tiles

# Scores of one chunk are capped near this many float32 elements (256 MiB), whatever N is.
_SCORE_ELEMENTS_PER_CHUNK = 1 << 26
_MIN_CHUNK = 128
_MAX_CHUNK = 8192


def default_chunk_size(num_rows: int, num_codes: int) -> int:
  """Codes per scan step: all K (rounded up to 128) when they fit, else a power of two in [128, 8192].

  The cap keeps one step's `[num_rows, chunk]` scores near 256 MiB; whole multiples of 128 keep every code on the
  same vectorised code path.
  """
  budget = tiling.next_power_of_two(max(_SCORE_ELEMENTS_PER_CHUNK // max(num_rows, 1), 1))
  chunk = min(max(budget, _MIN_CHUNK), _MAX_CHUNK)
  return tiling.round_up(num_codes, _MIN_CHUNK) if num_codes <= chunk else chunk


def nearest_code(z: jax.Array, codebook: jax.Array, codebook_sqnorm: jax.Array | None = None, *,
                 chunk_size: int | None = None) -> tuple[jax.Array, jax.Array]:
  """Index and score of the code minimising `|c|^2 - 2 z.c` for each row.

  Args:
    z: `[N, D]` float32 or bfloat16.
    codebook: `[K, D]`, same dtype as z.
    codebook_sqnorm: `[K]` float32, the `|c|^2` term (zeros for cosine lookups on normalised vectors); None
      computes it chunk by chunk from the codes.
    chunk_size: codes per scan step; by default sized so one step's scores stay near 256 MiB.

  Returns:
    indices `[N]` int32 (lowest index on ties) and scores `[N]` float32 (the minimised `|c|^2 - 2 z.c`).
  """
  num_rows, num_codes = z.shape[0], codebook.shape[0]
  chunk = chunk_size or default_chunk_size(num_rows, num_codes)
  padded_codes = tiling.round_up(num_codes, chunk)
  chunks = einops.rearrange(tiling.pad_axis(codebook, 0, padded_codes), "(c k) d -> c k d", k=chunk)
  bias = tiles.code_bias(codebook_sqnorm, num_codes, padded_codes)
  bias_chunks = einops.rearrange(bias, "(c k) -> c k", k=chunk)
  offsets = jnp.arange(chunks.shape[0], dtype=jnp.int32) * chunk
  z_times_minus_two = z * -2.0

  def step(best, chunk_inputs):
    best_score, best_index = best
    codes, bias, offset = chunk_inputs
    if codebook_sqnorm is None:
      bias = bias + tiles.tile_sqnorm(codes)
    dots = jnp.einsum("nd,kd->nk", z_times_minus_two, codes, preferred_element_type=jnp.float32)
    scores = bias[None, :] + dots
    local = jnp.argmin(scores, axis=1).astype(jnp.int32)
    score = jnp.take_along_axis(scores, local[:, None], axis=1)[:, 0]
    better = score < best_score
    return (jnp.where(better, score, best_score), jnp.where(better, local + offset, best_index)), None

  init = (jnp.full((num_rows,), np.inf, jnp.float32), jnp.zeros((num_rows,), jnp.int32))
  (scores, indices), _ = jax.lax.scan(step, init, (chunks, bias_chunks, offsets))
  return indices, scores
