"""Pallas Mosaic GPU (Hopper) codebook lookup: TMA-fed, warp-specialised wgmma with a fused running argmin.

Modelled on FlashAttention 3: per CTA one memory warpgroup streams `[block_codes, D]` codebook tiles (and their
bias) into shared memory while two compute warpgroups each multiply their own `[block_rows, D]` z block against every
tile with wgmma and fold the `[block_rows, block_codes]` scores into a lane-wise running (min, tile) held in
registers. bfloat16 only; D is padded to a multiple of 64 (one 128-byte swizzle row).

Tested on CPU by lowering only (the Mosaic GPU interpreter cannot run it), hence opt-in: the benchmark's nearest-code
check is its first numerical test on a GPU.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

from jaxtok.kernels import op
from jaxtok.kernels import tiling
from jaxtok.kernels.codebook_lookup import tiles

_COMPUTE_WARPGROUPS = 2
_SWIZZLE_ELEMENTS = 64  # 128-byte swizzle over bfloat16
MAX_DIM = 256


@dataclasses.dataclass(frozen=True)
class BlockSizes(op.BlockSizes):
  """Rows per compute warpgroup (multiple of 64), codes per tile (multiple of 64) and tiles in flight."""
  block_rows: int = 64
  block_codes: int = 64  # [64, 64] float32 scores, running minima and tiles: 96 registers a thread
  max_concurrent_steps: int = 2

  def validate(self) -> None:
    op.require_multiple(self, ("block_rows", "block_codes"), 64)
    if self.max_concurrent_steps < 2:
      raise ValueError(f"max_concurrent_steps must be >= 2, got {self.max_concurrent_steps}")


def unavailable_reason(platform: str, *, dim: int, dtype) -> str | None:
  """Why this backend cannot run when lowering for `platform`, for `dtype` vectors of size `dim`, or None.

  The GPU generation is checked only when a GPU is attached (lowering elsewhere assumes Hopper or newer).
  """
  if platform != "cuda":
    return f"mosaic_gpu needs a GPU backend, found {platform}"
  if jnp.dtype(dtype) != jnp.bfloat16:
    return f"mosaic_gpu handles bfloat16 only, got {jnp.dtype(dtype).name}"
  capability = getattr(jax.devices()[0], "compute_capability", "9.0") if jax.default_backend() == "gpu" else "9.0"
  if float(capability) < 9.0:
    return f"mosaic_gpu needs a Hopper GPU (compute capability >= 9.0), found {capability}"
  if tiling.round_up(dim, _SWIZZLE_ELEMENTS) > MAX_DIM:
    return f"mosaic_gpu supports D <= {MAX_DIM}, got D={dim}"
  return None


def _reduce_lanes(best_score, best_tile, block_codes: int):
  """`tiles.reduce_lanes` in WGMMA register layouts: `[rows, block_codes]` -> `[rows]` score and index."""
  shape = best_score.shape
  lane = plgpu.broadcasted_iota(jnp.int32, shape, 1, layout=plgpu.Layout.WGMMA)
  row_min = best_score.min(axis=1)
  is_min = best_score == lax.broadcast_in_dim(row_min, shape, [0])
  index = jnp.where(is_min, best_tile.astype(jnp.int32) * block_codes + lane, tiles.NO_INDEX).min(axis=1)
  return row_min, index


def _lookup_kernel(z_ref, codes_ref, bias_ref, index_ref, score_ref, scratch, z_barriers, *, blocks: BlockSizes,
                   num_tiles: int):
  """z_ref `[N, D]` (already times -2), codes_ref `[K, D]`, bias_ref `[K]` in GMEM -> index_ref, score_ref `[N]`."""
  z_smem_by_warpgroup, index_smem_by_warpgroup, score_smem_by_warpgroup = scratch
  warpgroup = lax.axis_index("wg")
  row_base = (lax.axis_index("rows") * _COMPUTE_WARPGROUPS + warpgroup) * blocks.block_rows
  rows = pl.ds(row_base, blocks.block_rows)
  shape = (blocks.block_rows, blocks.block_codes)

  def compute_thread(pipeline_callback):
    plgpu.copy_gmem_to_smem(z_ref.at[rows], z_smem_by_warpgroup.at[warpgroup], z_barriers.at[warpgroup])
    plgpu.barrier_wait(z_barriers.at[warpgroup])
    init = (plgpu.layout_cast(jnp.full(shape, np.inf, jnp.float32), plgpu.Layout.WGMMA),
            plgpu.layout_cast(jnp.full(shape, 0, jnp.float32), plgpu.Layout.WGMMA), jnp.float32(0))
    best_score, best_tile, _ = pipeline_callback(init)
    score, index = _reduce_lanes(best_score, best_tile, blocks.block_codes)
    index_smem_by_warpgroup.at[warpgroup][...] = index
    score_smem_by_warpgroup.at[warpgroup][...] = score
    plgpu.commit_smem()
    plgpu.copy_smem_to_gmem(index_smem_by_warpgroup.at[warpgroup], index_ref.at[rows])
    plgpu.copy_smem_to_gmem(score_smem_by_warpgroup.at[warpgroup], score_ref.at[rows])
    plgpu.wait_smem_to_gmem(0)

  def tile_step(_, codes_smem, bias_smem, carry):
    # Tile numbers travel as (exact) float32: integer selects lose their signedness in this lowering.
    best_score, best_tile, tile = carry
    z_smem = z_smem_by_warpgroup.at[warpgroup]

    def multiply(acc_ref):
      plgpu.wgmma(acc_ref, z_smem, plgpu.transpose_ref(codes_smem, (1, 0)))
      return acc_ref[...]

    dots = pl.run_scoped(multiply, plgpu.ACC(shape, jnp.float32))
    bias = plgpu.load(bias_smem, (), layout=plgpu.Layout.WGMMA.reduce(0))
    scores = lax.broadcast_in_dim(bias, shape, [1]) + dots
    return (*tiles.fold_tile(best_score, best_tile, scores, tile), tile + 1)

  pipeline = plgpu.emit_pipeline_warp_specialized(
      tile_step,
      grid=(num_tiles,),
      max_concurrent_steps=min(blocks.max_concurrent_steps, num_tiles),
      num_compute_wgs=_COMPUTE_WARPGROUPS,
      memory_registers=40,
      wg_axis="wg",
      compute_context=compute_thread,
      in_specs=[
          plgpu.BlockSpec(block_shape=(blocks.block_codes, z_ref.shape[1]), index_map=lambda t: (t, 0),
                          transforms=_transforms()),
          plgpu.BlockSpec(block_shape=(blocks.block_codes,), index_map=lambda t: (t,)),
      ],
  )
  pipeline(codes_ref, bias_ref)


def _transforms():
  """Shared-memory layout of bfloat16 `[rows, D]` wgmma operands: 8 x 64 tiles, 128-byte swizzle."""
  return (plgpu.TilingTransform((8, _SWIZZLE_ELEMENTS)), plgpu.SwizzleTransform(128))


def nearest_code(z: jax.Array, codebook: jax.Array, codebook_sqnorm: jax.Array | None = None, *,
                 block_sizes: BlockSizes | None = None) -> tuple[jax.Array, jax.Array]:
  """Same contract as `reference.nearest_code` for bfloat16 z `[N, D]` and codebook `[K, D]`.

  Without given norms, `|c|^2` is computed once in XLA rather than per tile as in the other kernels. There is no
  interpret mode: jax's Mosaic GPU interpreter lacks `layout_cast` and layout-taking loads.
  """
  if z.dtype != jnp.bfloat16 or codebook.dtype != jnp.bfloat16:
    raise NotImplementedError(f"mosaic_gpu handles bfloat16 only, got {z.dtype} and {codebook.dtype}")
  (num_rows, dim), num_codes = z.shape, codebook.shape[0]
  blocks = block_sizes or BlockSizes()
  blocks.validate()
  rows_per_cta = _COMPUTE_WARPGROUPS * blocks.block_rows
  dim_padded = tiling.round_up(dim, _SWIZZLE_ELEMENTS)
  rows_padded = tiling.round_up(num_rows, rows_per_cta)
  codes_padded = tiling.round_up(num_codes, blocks.block_codes)
  z = tiling.pad_axis(tiling.pad_axis(z * -2.0, 1, dim_padded), 0, rows_padded)
  codebook = tiling.pad_axis(tiling.pad_axis(codebook, 1, dim_padded), 0, codes_padded)
  if codebook_sqnorm is None:
    codebook_sqnorm = tiles.tile_sqnorm(codebook[:num_codes])
  bias = tiles.code_bias(codebook_sqnorm, num_codes, codes_padded)
  kernel = functools.partial(_lookup_kernel, blocks=blocks, num_tiles=codes_padded // blocks.block_codes)
  scratch = (plgpu.SMEM((_COMPUTE_WARPGROUPS, blocks.block_rows, dim_padded), jnp.bfloat16, transforms=_transforms()),
             plgpu.SMEM((_COMPUTE_WARPGROUPS, blocks.block_rows), jnp.int32),
             plgpu.SMEM((_COMPUTE_WARPGROUPS, blocks.block_rows), jnp.float32))

  def entry(z_ref, codes_ref, bias_ref, index_ref, score_ref):
    pl.run_scoped(lambda *refs: kernel(z_ref, codes_ref, bias_ref, index_ref, score_ref, *refs), scratch,
                  plgpu.Barrier(num_barriers=_COMPUTE_WARPGROUPS), collective_axes="wg")

  indices, scores = plgpu.kernel(
      entry,
      out_type=(jax.ShapeDtypeStruct((rows_padded,), jnp.int32), jax.ShapeDtypeStruct((rows_padded,), jnp.float32)),
      grid=(rows_padded // rows_per_cta,),
      grid_names=("rows",),
      num_threads=_COMPUTE_WARPGROUPS + 1,
      thread_name="wg",
  )(z, codebook, bias)
  return indices[:num_rows], scores[:num_rows]


BACKEND = op.Backend("mosaic_gpu", ("cuda",), nearest_code, BlockSizes, unavailable_reason)
