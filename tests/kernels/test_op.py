"""The kernel-op pattern (`jaxtok.kernels.op`) on a toy op whose "kernels" are plain XLA, so any platform lowers them.

The reference computes 3x, the cuda kernel 2x and the tpu kernel 5x: the lowered module shows which one a platform
got. Pallas kernels are covered by the lowering tests of each op.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok import kernels
from jaxtok.kernels import codebook_lookup
from jaxtok.kernels import op
from jaxtok.kernels import sparse_attention
from jaxtok.kernels.codebook_lookup import api as lookup_api
from jaxtok.kernels.sparse_attention import mask as mask_module


@dataclasses.dataclass(frozen=True)
class ToyBlocks(op.BlockSizes):
  block: int = 16

  def validate(self) -> None:
    op.require_power_of_two(self, ("block",), 8)


def _scaled(factor):
  def kernel(x, *, block_sizes=None):
    return x * (factor + (0 if block_sizes is None else block_sizes.block))
  return kernel


def _reason(platform, *, dim):
  if platform != "cuda":
    return f"needs cuda, lowering for {platform}"
  return f"dim {dim} > 64" if dim > 64 else None


TOY = op.Op("toy", lambda x: x * 3, backends=(
    op.Backend("fast", ("cuda",), _scaled(2), ToyBlocks, _reason),
    op.Backend("tiled", ("tpu",), _scaled(5), ToyBlocks, lambda platform, *, dim: None if platform == "tpu" else "tpu"),
), preferred={"cuda": ("fast",), "tpu": ("tiled",)})


def _module(fn, platform):
  return jax.jit(fn).trace(jax.ShapeDtypeStruct((4,), jnp.float32)).lower(lowering_platforms=(platform,)).as_text()


@pytest.mark.parametrize("platform, factor", [("cuda", 2), ("tpu", 5), ("cpu", 3), ("rocm", 3)])
def test_default_is_chosen_for_the_platform_lowered_for(platform, factor):
  module = _module(TOY.resolve(None, dim=8), platform)
  assert {f for f in (2, 3, 5) if f"{f}.000000e+00" in module} == {factor}


def test_default_runs_the_reference_on_this_cpu():
  np.testing.assert_array_equal(jax.jit(TOY.resolve(None, dim=8))(jnp.ones(4)), np.full(4, 3.0))


def test_default_skips_a_backend_that_cannot_take_the_problem():
  assert "3.000000e+00" in _module(TOY.resolve(None, dim=100), "cuda")


def test_without_any_usable_kernel_the_reference_is_returned_itself():
  only_cuda = op.Op("toy", TOY.reference, backends=TOY.backends[:1], preferred={"cuda": ("fast",)})
  assert only_cuda.resolve(None, dim=100) is TOY.reference


def test_explicit_backend_raises_when_lowered_where_it_cannot_run():
  fast = TOY.resolve("fast", dim=8)
  assert "2.000000e+00" in _module(fast, "cuda")
  with pytest.raises(NotImplementedError, match="toy implementation='fast' cannot run when lowering for cpu: needs "
                                                "cuda, lowering for cpu"):
    jax.jit(fast)(jnp.ones(4))
  with pytest.raises(NotImplementedError, match="lowering for tpu"):
    _module(fast, "tpu")


def test_explicit_backend_that_cannot_run_anywhere_raises_at_once():
  with pytest.raises(NotImplementedError, match="toy implementation='fast' cannot run: dim 100 > 64"):
    TOY.resolve("fast", dim=100)


def test_block_sizes_are_checked_and_used():
  assert "1.800000e+01" in _module(TOY.resolve("fast", ToyBlocks(block=16), dim=8), "cuda")  # 2 + 16
  with pytest.raises(ValueError, match="block must be a power of two >= 8, got 12"):
    TOY.resolve("fast", ToyBlocks(block=12), dim=8)
  with pytest.raises(ValueError, match="takes block_sizes of type"):
    TOY.resolve("fast", object(), dim=8)
  with pytest.raises(ValueError, match="needs an explicit implementation"):
    TOY.resolve(None, ToyBlocks(), dim=8)


def test_unknown_implementation_is_named():
  with pytest.raises(ValueError, match=r"one of \('xla', 'fast', 'tiled'\), got 'slow'"):
    TOY.resolve("slow", dim=8)
  assert TOY.unavailable_reason("xla", "cpu", dim=8) is None
  assert TOY.unavailable_reason("tiled", "cpu", dim=8) == "tpu"


def test_a_kernel_branch_keeps_none_of_the_references_residuals():
  """Differentiating through `platform_dependent` joins the branches' residuals; when lowered for a platform with a
  kernel, the reference's `[n, n]` residual must not be materialised (XLA drops the unused branch's outputs)."""
  @jax.custom_vjp
  def kernel(x):
    return jnp.sum(jnp.sin(x), axis=-1)

  kernel.defvjp(lambda x: (kernel(x), x), lambda x, g: (g[:, None] * jnp.cos(x),))
  reference = lambda x: jnp.sum(jnp.tanh(x @ x.T), axis=-1)  # keeps [n, n] for its backward
  toy = op.Op("toy", reference, backends=(op.Backend("cpu_kernel", ("cpu",), lambda x: kernel(x), ToyBlocks,
                                                     lambda platform: None),), preferred={"cpu": ("cpu_kernel",)})
  gradient = jax.jit(jax.grad(lambda x: jnp.sum(toy.resolve(None)(x))))
  n = 4096
  temp_bytes = gradient.lower(jax.ShapeDtypeStruct((n, 16), jnp.float32)).compile().memory_analysis().temp_size_in_bytes
  assert temp_bytes < n * n * 4 // 8


def test_public_names_are_the_functions():
  """`from jaxtok.kernels import codebook_lookup` is the function, not its subpackage (both kernels)."""
  assert codebook_lookup is lookup_api.codebook_lookup
  z = jnp.asarray(np.random.default_rng(0).normal(size=(8, 4)), jnp.float32)
  np.testing.assert_array_equal(codebook_lookup(z, z[:5]), np.argmin(((z[:, None] - z[None, :5])**2).sum(-1), 1))
  q = z.reshape(1, 8, 1, 4)
  assert sparse_attention(q, q, q, kernels.CausalMask(8, 8)).shape == q.shape
  for name in kernels.__all__:
    assert getattr(kernels, name) is not None
  assert mask_module.CausalMask is kernels.CausalMask  # the subpackages stay reachable by from-imports
