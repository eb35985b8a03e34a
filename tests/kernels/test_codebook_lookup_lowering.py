"""Every codebook-lookup backend lowered for its hardware over the shapes and options it claims, lookup and gradient.

`codebook_lookup` is differentiable through the returned distances (the lookup itself is not); each program below
returns the indices and the gradients of the summed distances with respect to z and the codebook, so it holds the
kernel and its backward context. The kernel's custom call must be in the module: a silent fallback to XLA fails.
"""
import functools

import jax
import jax.numpy as jnp
import pytest

from jaxtok.kernels import codebook_lookup
from lowering import PLATFORM_OF
from lowering import assert_kernel_calls
from lowering import custom_calls
from lowering import lower


def _lookup_and_gradient(z, codebook, sqnorm, *, distance, implementation):
  def total_distance(z, codebook):
    indices, distances = codebook_lookup(z, codebook, distance=distance, codebook_sqnorm=sqnorm,
                                         return_distance=True, implementation=implementation)
    return jnp.sum(distances), indices

  (_, indices), grads = jax.value_and_grad(total_distance, argnums=(0, 1), has_aux=True)(z, codebook)
  return indices, grads


def _shapes(num_rows, dim, num_codes, dtype, given_sqnorm):
  return (jax.ShapeDtypeStruct((num_rows, dim), dtype), jax.ShapeDtypeStruct((num_codes, dim), dtype),
          jax.ShapeDtypeStruct((num_codes,), jnp.float32) if given_sqnorm else None)


# (D, K, distance, codebook_sqnorm given): D from 8 to each backend's maximum, non powers of two included, K never
# a power of two, both distances, norms computed in the kernel or given.
_PROBLEMS = [(8, 1000, "l2", False), (12, 4097, "cosine", False), (32, 3000, "l2", True), (100, 777, "l2", False),
             (256, 1500, "cosine", False), (500, 333, "l2", True), (512, 1001, "l2", False)]
_MAX_DIM = {"triton": 512, "mosaic_gpu": 256, "mosaic_tpu": 512}
_DTYPES = {"triton": ("float32", "bfloat16"), "mosaic_gpu": ("bfloat16",), "mosaic_tpu": ("float32", "bfloat16")}
_CASES = [pytest.param(implementation, dtype, *problem, id=f"{implementation}-{dtype}-D{problem[0]}-K{problem[1]}")
          for implementation in _MAX_DIM for dtype in _DTYPES[implementation] for problem in _PROBLEMS
          if problem[0] <= _MAX_DIM[implementation]]


@pytest.mark.parametrize("implementation, dtype, dim, num_codes, distance, given_sqnorm", _CASES)
def test_backend_lowers_for_its_hardware(implementation, dtype, dim, num_codes, distance, given_sqnorm):
  program = functools.partial(_lookup_and_gradient, distance=distance, implementation=implementation)
  module = lower(program, PLATFORM_OF[implementation], *_shapes(1000, dim, num_codes, jnp.dtype(dtype), given_sqnorm))
  assert_kernel_calls(module, implementation, count=1)


@pytest.mark.parametrize("platform, implementation", [("cuda", "triton"), ("tpu", "mosaic_tpu")])
def test_default_lowers_to_the_platforms_kernel(platform, implementation):
  """One traced program: implementation=None is the platform's kernel when lowered for it, the reference on cpu."""
  program = functools.partial(_lookup_and_gradient, distance="cosine", implementation=None)
  shapes = _shapes(4096, 12, 4096, jnp.float32, False)
  assert_kernel_calls(lower(program, platform, *shapes), implementation, count=1)
  assert not custom_calls(lower(program, "cpu", *shapes))


@pytest.mark.parametrize("platform, dim", [("cuda", 1024), ("tpu", 4096)])
def test_default_falls_back_to_xla_beyond_the_kernels_reach(platform, dim):
  program = functools.partial(_lookup_and_gradient, distance="l2", implementation=None)
  assert not custom_calls(lower(program, platform, *_shapes(256, dim, 300, jnp.float32, False)))


@pytest.mark.parametrize("implementation, dim, dtype, message", [
    ("triton", 1024, "float32", "triton supports D <= 512"),
    ("mosaic_gpu", 320, "bfloat16", "mosaic_gpu supports D <= 256"),
    ("mosaic_gpu", 64, "float32", "bfloat16 only"),
    ("mosaic_tpu", 4096, "float32", "mosaic_tpu supports D <= 2048"),
])
def test_explicit_backend_refuses_what_it_cannot_run(implementation, dim, dtype, message):
  program = functools.partial(_lookup_and_gradient, distance="l2", implementation=implementation)
  with pytest.raises(NotImplementedError, match=message):
    lower(program, PLATFORM_OF[implementation], *_shapes(256, dim, 300, jnp.dtype(dtype), False))


@pytest.mark.parametrize("implementation, platform", [("triton", "tpu"), ("mosaic_tpu", "cuda"), ("triton", "cpu")])
def test_explicit_backend_refuses_other_platforms_when_lowered(implementation, platform):
  program = functools.partial(_lookup_and_gradient, distance="l2", implementation=implementation)
  with pytest.raises(NotImplementedError, match=f"cannot run when lowering for {platform}"):
    lower(program, platform, *_shapes(256, 16, 300, jnp.float32, False))
