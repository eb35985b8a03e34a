"""Pallas codebook-lookup kernels on CPU: Triton and TPU in interpret mode against a float64 NumPy oracle, and every
kernel (Mosaic GPU too, which has no usable interpret mode) lowered for its hardware.

Block sizes are kept small so that a few hundred codes already span several row blocks, code tiles and splits.
"""
import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental.pallas import tpu as pltpu

from codebook_lookup_oracle import check_lookup
from codebook_lookup_oracle import random_problem
from codebook_lookup_oracle import tied_problem
from jaxtok.kernels.codebook_lookup import api
from jaxtok.kernels.codebook_lookup import mosaic_gpu
from jaxtok.kernels.codebook_lookup import mosaic_tpu
from jaxtok.kernels.codebook_lookup import triton

_TRITON_BLOCKS = triton.BlockSizes(block_rows=32, block_codes=16, num_splits=2)
_TPU_BLOCKS = mosaic_tpu.BlockSizes(block_rows=32, block_codes=128)
_KERNELS = {
    "triton": functools.partial(triton.nearest_code, block_sizes=_TRITON_BLOCKS, interpret=True),
    "mosaic_tpu": functools.partial(mosaic_tpu.nearest_code, block_sizes=_TPU_BLOCKS,
                                    interpret=pltpu.InterpretParams()),
}
_SEEDS = st.integers(0, 2**32 - 1)


@functools.cache
def _lookup(kernel: str, distance: str):
  return jax.jit(functools.partial(api.lookup_with, _KERNELS[kernel], distance=distance, return_distance=True))


@pytest.mark.parametrize("kernel", list(_KERNELS))
@pytest.mark.parametrize("shape, dtype, distance", [
    ((37, 5, 3), "float32", "l2"),
    ((70, 20, 333), "float32", "l2"),
    ((70, 20, 333), "bfloat16", "l2"),
    ((70, 20, 333), "float32", "cosine"),
    ((16, 130, 129), "bfloat16", "cosine"),
])
@hypothesis.given(seed=_SEEDS)
@hypothesis.settings(max_examples=2, deadline=None)
def test_matches_float64_oracle(kernel, shape, dtype, distance, seed):
  z, codebook = random_problem(np.random.default_rng(seed), *shape)
  z, codebook = jnp.asarray(z, dtype), jnp.asarray(codebook, dtype)
  indices, distances = _lookup(kernel, distance)(z, codebook)
  check_lookup(z, codebook, indices, distances, distance=distance)


@pytest.mark.parametrize("kernel", list(_KERNELS))
def test_given_sqnorm_is_used(kernel):
  """Zero squared norms turn the l2 lookup into a maximum inner product search."""
  z, codebook = random_problem(np.random.default_rng(5), 70, 20, 333)
  indices, _ = _KERNELS[kernel](z, codebook, jnp.zeros(333))
  np.testing.assert_array_equal(indices, np.argmax(z @ codebook.T, axis=1))


@pytest.mark.parametrize("kernel, copies", [
    ("triton", [21, 33, 37, 40, 70, 99]),  # lane 5 of tile 1 beats lane 1 and lane 5 of tile 2, and split 2
    ("mosaic_tpu", [130, 257, 258, 140, 299]),  # lane 2 of tile 1 beats lanes 1 and 2 of tile 2, lane 12 of tile 1
])
def test_ties_go_to_lowest_index(kernel, copies):
  num_codes = max(copies) + 1
  z, codebook = tied_problem(np.random.default_rng(0), 40, 6, num_codes, copies)
  indices, _ = _KERNELS[kernel](z, codebook)
  np.testing.assert_array_equal(indices, np.full(40, min(copies)))


@pytest.mark.parametrize("kernel", list(_KERNELS))
def test_padding_codes_never_win(kernel):
  """Queries at the origin, codes far from it: a zero padding code (rows or D) would be nearest if it could win."""
  rng = np.random.default_rng(1)
  codebook = (rng.normal(size=(131, 6)) + 50.0).astype(np.float32)
  z = (1e-3 * rng.normal(size=(40, 6))).astype(np.float32)
  for sqnorm in (None, np.sum(codebook * codebook, axis=1)):
    indices, scores = _KERNELS[kernel](z, codebook, sqnorm)
    check_lookup(z, codebook, indices)
    assert np.all(np.isfinite(scores))


@pytest.mark.parametrize("kernel, platform, custom_call, dtypes", [
    (triton.nearest_code, "cuda", "xla.gpu.triton", (jnp.float32, jnp.bfloat16)),
    (mosaic_gpu.nearest_code, "cuda", "mosaic_gpu", (jnp.bfloat16,)),
    (mosaic_tpu.nearest_code, "tpu", "tpu_custom_call", (jnp.float32, jnp.bfloat16)),
], ids=["triton", "mosaic_gpu", "mosaic_tpu"])
def test_kernels_lower_for_their_hardware(kernel, platform, custom_call, dtypes):
  """Lowering needs no device: it checks Triton's power-of-two tensors, Mosaic GPU's register layouts and wgmma
  operands, Mosaic TPU's (8, 128) tiling, and that every operation has a lowering, with squared norms given or not."""
  for dtype in dtypes:
    z = jax.ShapeDtypeStruct((1000, 40), dtype)
    codebook = jax.ShapeDtypeStruct((3000, 40), dtype)
    for sqnorm in (jax.ShapeDtypeStruct((3000,), jnp.float32), None):
      lowered = jax.jit(kernel).trace(z, codebook, sqnorm).lower(lowering_platforms=(platform,))
      assert custom_call in lowered.as_text()


def test_mosaic_gpu_refuses_float32():
  with pytest.raises(NotImplementedError, match="bfloat16 only"):
    mosaic_gpu.nearest_code(jnp.ones((8, 4)), jnp.ones((8, 4)))


@pytest.mark.parametrize("blocks, message", [
    (triton.BlockSizes(block_rows=24), "block_rows must be a power of two"),
    (triton.BlockSizes(block_codes=8), "block_codes must be a power of two"),
    (triton.BlockSizes(num_splits=0), "num_splits must be"),
    (mosaic_tpu.BlockSizes(block_rows=40), "block_rows must be a positive multiple of 16"),
    (mosaic_tpu.BlockSizes(block_codes=100), "block_codes must be a positive multiple of 128"),
    (mosaic_gpu.BlockSizes(block_rows=96), "block_rows must be a positive multiple of 64"),
    (mosaic_gpu.BlockSizes(max_concurrent_steps=1), "max_concurrent_steps must be >= 2"),
])
def test_bad_block_sizes_raise(blocks, message):
  with pytest.raises(ValueError, match=message):
    blocks.validate()


def test_triton_default_blocks_split_codes_for_small_batches():
  """One row block cannot fill a GPU: the default configuration splits the codes, and the merged result is exact."""
  z, codebook = random_problem(np.random.default_rng(4), 100, 32, 333)
  blocks = triton.default_block_sizes(32, 100, 333, itemsize=4)
  assert blocks.num_splits == 6  # all ceil(333 / 64) code tiles, each its own program
  indices, _ = triton.nearest_code(z, codebook, interpret=True)
  check_lookup(z, codebook, indices)
