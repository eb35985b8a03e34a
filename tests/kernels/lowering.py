"""Lowering for hardware this machine lacks: `jax.export` for 'cuda' or 'tpu' on a CPU host, and what the module calls.

Lowering runs every Pallas check short of compiling the kernel (Triton's power-of-two tensors, Mosaic's tilings and
layouts, a lowering for every operation), in well under a second per kernel and without XLA compilation.
"""
import collections
import re

import jax
from jax import export

# The custom call each backend lowers to, by implementation name.
KERNEL_CALLS = {"triton": "__gpu$xla.gpu.triton", "mosaic_gpu": "mosaic_gpu_v2", "mosaic_tpu": "tpu_custom_call"}
PLATFORM_OF = {"triton": "cuda", "mosaic_gpu": "cuda", "mosaic_tpu": "tpu"}
_DISABLED_CHECKS = [export.DisabledSafetyCheck.custom_call(target) for target in KERNEL_CALLS.values()]


def lower(fn, platform: str, *args) -> str:
  """The StableHLO text of `jax.jit(fn)` exported for `platform` with argument shapes `args`."""
  return export.export(jax.jit(fn), platforms=[platform], disabled_checks=_DISABLED_CHECKS)(*args).mlir_module()


def lower_each(fn, platforms, *args) -> dict[str, str]:
  """The StableHLO text of `fn` (jitted unless it is) traced once and lowered for each of `platforms`."""
  traced = (fn if hasattr(fn, "trace") else jax.jit(fn)).trace(*args)
  return {platform: traced.lower(lowering_platforms=(platform,)).as_text() for platform in platforms}


def custom_calls(module: str) -> collections.Counter:
  """How often each custom-call target appears in a lowered module."""
  return collections.Counter(re.findall(r"custom_call @([\w$.]+)", module))


def assert_kernel_calls(module: str, implementation: str, count: int | None = None, names: tuple[str, ...] = ()):
  """The module calls `implementation`'s kernel (exactly `count` times if given), under each of `names`."""
  calls = custom_calls(module)
  found = calls[KERNEL_CALLS[implementation]]
  assert found and (count is None or found == count), f"{implementation}: expected {count or '>= 1'} kernel calls, " \
                                                      f"module has {dict(calls)}"
  missing = [name for name in names if name not in module]
  assert not missing, f"kernels {missing} missing from the {implementation} module"
