"""Pallas Triton (GPU) codebook lookup: each program owns a block of rows and streams every codebook tile.

Per tile the kernel computes `[block_rows, block_codes]` scores `|c|^2 - 2 z.c` with a tensor-core dot (float32
accumulation; float32 operands use TF32 like XLA's default GPU matmul) and folds them into a lane-wise running
minimum, so the only cross-lane reduction happens once per row block. Code splits add a second grid axis for problems
with too few row blocks to fill the GPU; their partial minima are merged in XLA.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from jaxtok.kernels import op
from jaxtok.kernels import tiling
from jaxtok.kernels.codebook_lookup import tiles

# Triton's dot needs every block dimension >= 16; block sizes must be powers of two.
_MIN_BLOCK = 16
# Programs per streaming multiprocessor that the default code splits aim for.
_PROGRAMS_PER_CORE = 2
# Beyond this padded D, a `[block_rows, D]` z block no longer fits the register file with useful block sizes.
MAX_DIM = 512


@dataclasses.dataclass(frozen=True)
class BlockSizes(op.BlockSizes):
  """Launch configuration: rows and codes per tile (powers of two >= 16), code splits, warps and stages."""
  block_rows: int = 128
  block_codes: int = 64
  num_splits: int = 1
  num_warps: int = 8
  num_stages: int = 3

  def validate(self) -> None:
    op.require_power_of_two(self, ("block_rows", "block_codes"), _MIN_BLOCK)
    if self.num_splits < 1:
      raise ValueError(f"num_splits must be >= 1, got {self.num_splits}")


def default_block_sizes(dim: int, num_rows: int, num_codes: int, itemsize: int) -> BlockSizes:
  """Heuristic blocks, to be retuned from `benchmarks/codebook_lookup.py --sweep` on a GPU.

  128-row z blocks while they fit in 64 KiB (they stay in registers across the code loop), else 64 rows; deeper
  pipelining for small D; enough code splits to give every streaming multiprocessor two programs.
  """
  block_rows = 128 if padded_dim(dim) * itemsize <= 512 else 64
  blocks = BlockSizes(block_rows=block_rows, block_codes=64, num_warps=8, num_stages=3 if padded_dim(dim) <= 64 else 2)
  row_blocks = -(-num_rows // blocks.block_rows)
  code_tiles = -(-num_codes // blocks.block_codes)
  splits = min(code_tiles, -(-_PROGRAMS_PER_CORE * _num_cores() // row_blocks))
  return dataclasses.replace(blocks, num_splits=max(splits, 1))


def _num_cores() -> int:
  """Streaming multiprocessors of the local GPU (an H100's 132 when lowering without one)."""
  return (jax.default_backend() == "gpu" and getattr(jax.devices()[0], "core_count", None)) or 132


def unavailable_reason(platform: str, *, dim: int, dtype) -> str | None:
  """Why this backend cannot run when lowering for `platform`, for vectors of size `dim`, or None."""
  del dtype  # float32 (as TF32) and bfloat16 both run
  if platform != "cuda":
    return f"triton needs a GPU backend, found {platform}"
  if padded_dim(dim) > MAX_DIM:
    return f"triton supports D <= {MAX_DIM}, got D={dim}"
  return None


def padded_dim(dim: int) -> int:
  """D as the kernel sees it: the next power of two, at least 16."""
  return max(tiling.next_power_of_two(dim), _MIN_BLOCK)


def _kernel(z_ref, codes_ref, bias_ref, index_ref, score_ref, *, block_codes: int, tiles_per_split: int,
            add_sqnorm: bool):
  """z_ref `[block_rows, D]`, codes_ref `[codes_per_split, D]`, bias_ref `[codes_per_split]` -> `[block_rows]`."""
  z_times_minus_two = z_ref[...] * -2.0
  split_offset = pl.program_id(1) * tiles_per_split

  def fold(tile, best):
    start = pl.multiple_of(tile * block_codes, block_codes)
    codes = codes_ref[pl.ds(start, block_codes), :]
    bias = bias_ref[pl.ds(start, block_codes)]
    if add_sqnorm:
      bias = bias + tiles.tile_sqnorm(codes)
    scores = bias[None, :] + plgpu.dot(z_times_minus_two, codes, trans_b=True)
    return tiles.fold_tile(*best, scores, tile + split_offset)

  shape = (z_times_minus_two.shape[0], block_codes)
  init = (jnp.full(shape, np.inf, jnp.float32), jnp.zeros(shape, jnp.int32))
  best = jax.lax.fori_loop(0, tiles_per_split, fold, init)
  score, index = tiles.reduce_lanes(*best, block_codes, keepdims=False)
  index_ref[...] = index
  score_ref[...] = score


def nearest_code(z: jax.Array, codebook: jax.Array, codebook_sqnorm: jax.Array | None = None, *,
                 block_sizes: BlockSizes | None = None, interpret: bool = False) -> tuple[jax.Array, jax.Array]:
  """Same contract as `reference.nearest_code`: z `[N, D]`, codebook `[K, D]`, optional sqnorm `[K]`.

  Returns indices and scores `[N]`. Without `block_sizes`, `default_block_sizes` picks them (code splits included).
  """
  (num_rows, dim), num_codes = z.shape, codebook.shape[0]
  blocks = block_sizes or default_block_sizes(dim, num_rows, num_codes, jnp.dtype(z.dtype).itemsize)
  blocks.validate()
  dim_padded = padded_dim(dim)
  rows_padded = tiling.round_up(num_rows, blocks.block_rows)
  tiles_per_split = -(-num_codes // (blocks.block_codes * blocks.num_splits))
  codes_per_split = tiles_per_split * blocks.block_codes
  codes_padded = codes_per_split * blocks.num_splits
  z = tiling.pad_axis(tiling.pad_axis(z, 1, dim_padded), 0, rows_padded)
  codebook = tiling.pad_axis(tiling.pad_axis(codebook, 1, dim_padded), 0, codes_padded)
  bias = tiles.code_bias(codebook_sqnorm, num_codes, codes_padded)
  grid = (rows_padded // blocks.block_rows, blocks.num_splits)
  row_block = pl.BlockSpec((None, blocks.block_rows), lambda i, s: (s, i))
  indices, scores = pl.pallas_call(
      functools.partial(_kernel, block_codes=blocks.block_codes, tiles_per_split=tiles_per_split,
                        add_sqnorm=codebook_sqnorm is None),
      grid=grid,
      in_specs=[
          pl.BlockSpec((blocks.block_rows, dim_padded), lambda i, s: (i, 0)),
          pl.BlockSpec((codes_per_split, dim_padded), lambda i, s: (s, 0)),
          pl.BlockSpec((codes_per_split,), lambda i, s: (s,)),
      ],
      out_specs=[row_block, row_block],
      out_shape=[jax.ShapeDtypeStruct((blocks.num_splits, rows_padded), jnp.int32),
                 jax.ShapeDtypeStruct((blocks.num_splits, rows_padded), jnp.float32)],
      compiler_params=plgpu.CompilerParams(num_warps=blocks.num_warps, num_stages=blocks.num_stages),
      interpret=interpret,
      name="codebook_lookup_triton",
  )(z, codebook, bias)
  indices, scores = tiles.merge_partials(scores, indices)
  return indices[:num_rows], scores[:num_rows]


BACKEND = op.Backend("triton", ("cuda",), nearest_code, BlockSizes, unavailable_reason)
