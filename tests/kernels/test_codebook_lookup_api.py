"""codebook_lookup through the chunked XLA path (the CPU default) against a float64 NumPy oracle."""
import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from codebook_lookup_oracle import check_lookup
from codebook_lookup_oracle import random_problem
from codebook_lookup_oracle import tied_problem
from jaxtok.kernels.codebook_lookup import codebook_lookup
from jaxtok.kernels.codebook_lookup import reference

_SEEDS = st.integers(0, 2**32 - 1)
_FEW = hypothesis.settings(max_examples=3, deadline=None)


@pytest.mark.parametrize("shape", [(1, 1, 1), (37, 5, 3), (200, 16, 1000), (64, 33, 517)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("distance", ["l2", "cosine"])
@hypothesis.given(seed=_SEEDS)
@_FEW
def test_matches_float64_oracle(shape, dtype, distance, seed):
  z, codebook = random_problem(np.random.default_rng(seed), *shape)
  z, codebook = jnp.asarray(z, dtype), jnp.asarray(codebook, dtype)
  indices, distances = codebook_lookup(z, codebook, distance=distance, return_distance=True)
  check_lookup(z, codebook, indices, distances, distance=distance)


@hypothesis.given(seed=_SEEDS, offset=st.sampled_from([0.0, 30.0]), given_sqnorm=st.booleans())
@_FEW
def test_reference_over_many_chunks(seed, offset, given_sqnorm):
  """Chunks of 16 over K=100: six full chunks and a padded last one, with norms given or computed per chunk."""
  z, codebook = random_problem(np.random.default_rng(seed), 50, 6, 100, offset=offset)
  sqnorm = np.sum(codebook * codebook, axis=1) if given_sqnorm else None
  indices, scores = reference.nearest_code(z, codebook, sqnorm, chunk_size=16)
  check_lookup(z, codebook, indices)
  expected_scores = np.sum(codebook * codebook, 1)[indices] - 2 * np.sum(z * codebook[indices], 1)
  np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-3 * (1 + offset**2))


@pytest.mark.parametrize("chunk_size", [16, None])
def test_ties_go_to_lowest_index(chunk_size):
  copies = [21, 33, 40, 99]
  z, codebook = tied_problem(np.random.default_rng(0), 20, 6, 100, copies)
  indices, _ = reference.nearest_code(z, codebook, chunk_size=chunk_size)
  np.testing.assert_array_equal(indices, np.full(20, min(copies)))
  np.testing.assert_array_equal(codebook_lookup(z, codebook), np.full(20, min(copies)))


def test_padding_codes_never_win():
  """Queries at the origin, codes far from it: a zero padding code would be nearest if it could be chosen."""
  rng = np.random.default_rng(1)
  codebook = (rng.normal(size=(100, 6)) + 50.0).astype(np.float32)
  z = (1e-3 * rng.normal(size=(30, 6))).astype(np.float32)
  for sqnorm in (None, np.sum(codebook * codebook, axis=1)):
    indices, _ = reference.nearest_code(z, codebook, sqnorm, chunk_size=64)
    check_lookup(z, codebook, indices)


def test_given_sqnorm_is_used():
  """Zero squared norms turn the l2 lookup into a maximum inner product search."""
  z, codebook = random_problem(np.random.default_rng(2), 40, 8, 300)
  np.testing.assert_array_equal(
      codebook_lookup(z, codebook, codebook_sqnorm=jnp.zeros(300)), np.argmax(z @ codebook.T, axis=1))
  np.testing.assert_array_equal(
      codebook_lookup(z, codebook, codebook_sqnorm=jnp.sum(codebook * codebook, 1)), codebook_lookup(z, codebook))


def test_distance_gradient_flows_through_chosen_code():
  z, codebook = random_problem(np.random.default_rng(3), 40, 8, 300)
  indices = codebook_lookup(z, codebook)
  total = lambda z, codebook: jnp.sum(codebook_lookup(z, codebook, return_distance=True)[1])
  grad_z, grad_codebook = jax.grad(total, argnums=(0, 1))(z, codebook)
  np.testing.assert_allclose(grad_z, 2 * (z - codebook[indices]), rtol=1e-5, atol=1e-5)
  expected = np.zeros_like(codebook)
  np.add.at(expected, np.asarray(indices), -2 * (z - codebook[indices]))
  np.testing.assert_allclose(grad_codebook, expected, rtol=1e-5, atol=1e-5)


def test_no_rows():
  indices, distances = codebook_lookup(jnp.zeros((0, 4)), jnp.ones((3, 4)), return_distance=True)
  assert indices.shape == (0,) and indices.dtype == jnp.int32 and distances.shape == (0,)


def test_memory_stays_bounded_for_huge_codebooks():
  """65,536 x 2^20 float32 distances would need 256 GiB; the compiled chunked path must need well under 2 GiB."""
  z = jax.ShapeDtypeStruct((65536, 32), jnp.float32)
  codebook = jax.ShapeDtypeStruct((1 << 20, 32), jnp.float32)
  compiled = jax.jit(functools.partial(codebook_lookup, implementation="xla")).lower(z, codebook).compile()
  assert compiled.memory_analysis().temp_size_in_bytes < (1 << 31)


@pytest.mark.parametrize("z_shape, codebook_shape, dtype, kwargs, message", [
    ((4, 3, 2), (5, 2), "float32", {}, "z must be"),
    ((4, 2), (5,), "float32", {}, "codebook must be"),
    ((4, 2), (0, 2), "float32", {}, "codebook must be"),
    ((4, 2), (5, 3), "float32", {}, "same D"),
    ((4, 2), (5, 2), "int32", {}, "float32 or bfloat16"),
    ((4, 2), (5, 2), "float16", {}, "float32 or bfloat16"),
    ((4, 2), (5, 2), "float32", {"distance": "dot"}, "distance must be"),
    ((4, 2), (5, 2), "float32", {"codebook_sqnorm": jnp.ones(5), "distance": "cosine"}, "only to distance='l2'"),
    ((4, 2), (5, 2), "float32", {"codebook_sqnorm": jnp.ones(4)}, r"codebook_sqnorm must be \[K\]"),
    ((4, 2), (5, 2), "float32", {"implementation": "cuda"}, "implementation must be"),
])
def test_bad_arguments_raise(z_shape, codebook_shape, dtype, kwargs, message):
  with pytest.raises(ValueError, match=message):
    codebook_lookup(jnp.ones(z_shape, dtype), jnp.ones(codebook_shape, dtype), **kwargs)


@pytest.mark.parametrize("implementation, message", [
    ("triton", "triton needs a GPU backend, found cpu"),
    ("mosaic_gpu", "mosaic_gpu needs a GPU backend, found cpu"),
    ("mosaic_tpu", "mosaic_tpu needs a TPU backend, found cpu"),
])
def test_kernel_implementations_refuse_cpu(implementation, message):
  with pytest.raises(NotImplementedError, match=message):  # bfloat16, which every kernel takes
    codebook_lookup(jnp.ones((4, 2), jnp.bfloat16), jnp.ones((5, 2), jnp.bfloat16), implementation=implementation)


def test_mosaic_gpu_refuses_float32_before_lowering():
  with pytest.raises(NotImplementedError, match="bfloat16 only, got float32"):
    jax.jit(functools.partial(codebook_lookup, implementation="mosaic_gpu")).trace(jnp.ones((4, 2)), jnp.ones((5, 2)))


def test_default_implementation_on_cpu_is_xla():
  """Lowered for the CPU, the default is the XLA reference: no kernel call, and the reference's result."""
  z, codebook = random_problem(np.random.default_rng(6), 40, 8, 300)
  assert "custom_call" not in jax.jit(codebook_lookup).lower(z, codebook).as_text()
  np.testing.assert_array_equal(codebook_lookup(z, codebook), reference.nearest_code(z, codebook)[0])
