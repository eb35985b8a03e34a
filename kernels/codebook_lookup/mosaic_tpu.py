"""Pallas Mosaic TPU codebook lookup: a (row block, code tile) grid with the code axis as the sequential reduction.

Each step multiplies a `[block_rows, D]` z block by a `[block_codes, D]` codebook tile on the MXU (float32
accumulation) and folds the scores into a lane-wise running (min, tile) held in VMEM scratch; the last code tile
reduces across lanes and writes the row block's index and score. Blocks obey the TPU (8, 128) tiling: D is padded to
a multiple of 128, block_rows is a multiple of 16 (bfloat16 packs 16 rows per tile) and block_codes of 128.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from jaxtok.kernels import op
from jaxtok.kernels import tiling
from jaxtok.kernels.codebook_lookup import tiles

_LANES = 128
# Beyond this padded D, double-buffered z and codebook blocks of the default sizes crowd the 16 MiB of scoped VMEM.
MAX_DIM = 2048


@dataclasses.dataclass(frozen=True)
class BlockSizes(op.BlockSizes):
  """Rows per z block (multiple of 16) and codes per codebook tile (multiple of 128)."""
  block_rows: int = 256
  block_codes: int = 512

  def validate(self) -> None:
    op.require_multiple(self, ("block_rows",), 16)
    op.require_multiple(self, ("block_codes",), _LANES)


def unavailable_reason(platform: str, *, dim: int, dtype) -> str | None:
  """Why this backend cannot run when lowering for `platform`, for vectors of size `dim`, or None."""
  del dtype  # float32 and bfloat16 both run
  if platform != "tpu":
    return f"mosaic_tpu needs a TPU backend, found {platform}"
  if tiling.round_up(dim, _LANES) > MAX_DIM:
    return f"mosaic_tpu supports D <= {MAX_DIM}, got D={dim}"
  return None


def _dot_nt(a: jax.Array, b: jax.Array, precision=None) -> jax.Array:
  """a `[m, D]`, b `[n, D]` -> `[m, n]` float32 on the MXU."""
  return jax.lax.dot_general(a, b, (((1,), (1,)), ((), ())), precision=precision, preferred_element_type=jnp.float32)


def _lane_sqnorm(codes: jax.Array) -> jax.Array:
  """`|c|^2` of a `[block_codes, D]` tile laid out along lanes, `[1, block_codes]`, as a full-precision MXU product."""
  codes = codes.astype(jnp.float32)
  ones = jnp.ones((1, codes.shape[1]), jnp.float32)
  return _dot_nt(ones, codes * codes, precision=jax.lax.Precision.HIGHEST)


def _kernel(z_ref, codes_ref, bias_ref, index_ref, score_ref, best_score_ref, best_tile_ref, *, block_codes: int,
            add_sqnorm: bool):
  """z_ref `[block_rows, D]`, codes_ref `[block_codes, D]`, bias_ref `[1, block_codes]` -> `[block_rows, 1]`."""
  tile = pl.program_id(1)

  @pl.when(tile == 0)
  def _init():
    best_score_ref[...] = jnp.full(best_score_ref.shape, np.inf, jnp.float32)
    best_tile_ref[...] = jnp.zeros(best_tile_ref.shape, jnp.int32)

  codes = codes_ref[...]
  bias = bias_ref[...]
  if add_sqnorm:
    bias = bias + _lane_sqnorm(codes)
  scores = bias + _dot_nt(z_ref[...] * -2.0, codes)
  best_score_ref[...], best_tile_ref[...] = tiles.fold_tile(best_score_ref[...], best_tile_ref[...], scores, tile)

  @pl.when(tile == pl.num_programs(1) - 1)
  def _write():
    score_ref[...], index_ref[...] = tiles.reduce_lanes(best_score_ref[...], best_tile_ref[...], block_codes)


def nearest_code(z: jax.Array, codebook: jax.Array, codebook_sqnorm: jax.Array | None = None, *,
                 block_sizes: BlockSizes | None = None,
                 interpret: bool | pltpu.InterpretParams = False) -> tuple[jax.Array, jax.Array]:
  """Same contract as `reference.nearest_code`: z `[N, D]`, codebook `[K, D]`, optional sqnorm `[K]`.

  Returns indices and scores `[N]`. Block sizes shrink to the padded problem when it is smaller than one block.
  `interpret` takes `pltpu.InterpretParams()` to run the kernel on CPU in TPU interpret mode.
  """
  (num_rows, dim), num_codes = z.shape, codebook.shape[0]
  requested = block_sizes or BlockSizes()
  requested.validate()
  block_rows = min(requested.block_rows, tiling.round_up(num_rows, 16))
  block_codes = min(requested.block_codes, tiling.round_up(num_codes, _LANES))
  dim_padded = tiling.round_up(dim, _LANES)
  rows_padded = tiling.round_up(num_rows, block_rows)
  codes_padded = tiling.round_up(num_codes, block_codes)
  z = tiling.pad_axis(tiling.pad_axis(z, 1, dim_padded), 0, rows_padded)
  codebook = tiling.pad_axis(tiling.pad_axis(codebook, 1, dim_padded), 0, codes_padded)
  bias = tiles.code_bias(codebook_sqnorm, num_codes, codes_padded)[None, :]
  row_block = pl.BlockSpec((block_rows, 1), lambda i, j: (i, 0))
  indices, scores = pl.pallas_call(
      functools.partial(_kernel, block_codes=block_codes, add_sqnorm=codebook_sqnorm is None),
      grid=(rows_padded // block_rows, codes_padded // block_codes),
      in_specs=[
          pl.BlockSpec((block_rows, dim_padded), lambda i, j: (i, 0)),
          pl.BlockSpec((block_codes, dim_padded), lambda i, j: (j, 0)),
          pl.BlockSpec((1, block_codes), lambda i, j: (0, j)),
      ],
      out_specs=[row_block, row_block],
      out_shape=[jax.ShapeDtypeStruct((rows_padded, 1), jnp.int32),
                 jax.ShapeDtypeStruct((rows_padded, 1), jnp.float32)],
      scratch_shapes=[pltpu.VMEM((block_rows, block_codes), jnp.float32),
                      pltpu.VMEM((block_rows, block_codes), jnp.int32)],
      compiler_params=pltpu.CompilerParams(dimension_semantics=("parallel", "arbitrary")),
      interpret=interpret,
      name="codebook_lookup_mosaic_tpu",
  )(z, codebook, bias)
  return indices[:num_rows, 0], scores[:num_rows, 0]


BACKEND = op.Backend("mosaic_tpu", ("tpu",), nearest_code, BlockSizes, unavailable_reason)
