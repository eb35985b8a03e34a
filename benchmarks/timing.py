"""What every benchmark measures the same way: median wall times, the device's ceilings, compiled memory.

Ceilings are measured in the process that runs the benchmark, so a speed figure and the ceiling it is divided by
come from one chip in one run (`../shared/gpu/baseline.py` measured the H100 ones the same way).
"""
import statistics
import time

import jax
import jax.numpy as jnp


def median_seconds(fn, argument_sets, *, trials: int, calls_per_trial: int = 1) -> float:
  """Median over trials of the mean time per call of `fn(*arguments)`, after a warm-up call per argument set.

  Calls rotate over `argument_sets` so that caches do not flatter small inputs.
  """
  for arguments in argument_sets:
    jax.block_until_ready(fn(*arguments))
  times = []
  for _ in range(trials):
    start = time.perf_counter()
    results = [fn(*argument_sets[call % len(argument_sets)]) for call in range(calls_per_trial)]
    jax.block_until_ready(results)
    times.append((time.perf_counter() - start) / calls_per_trial)
  return statistics.median(times)


def matmul_tflops(dtype, size: int, trials: int) -> float:
  """Measured `[size, size] @ [size, size]` rate in TFLOP/s on random operands of `dtype`."""
  keys = jax.random.split(jax.random.key(0), 4)
  argument_sets = [(jax.random.normal(keys[i], (size, size), dtype), jax.random.normal(keys[i + 1], (size, size),
                                                                                       dtype)) for i in (0, 2)]
  return 2 * size**3 / median_seconds(jax.jit(jnp.matmul), argument_sets, trials=trials, calls_per_trial=5) / 1e12


def copy_tbps(num_bytes: int, trials: int) -> float:
  """Measured memory bandwidth in TB/s: read and write of a float32 array of `num_bytes` (`x * 1.0001`)."""
  x = jax.random.normal(jax.random.key(1), (num_bytes // 4,), jnp.float32)
  seconds = median_seconds(jax.jit(lambda x: x * 1.0001), [(x,)], trials=trials, calls_per_trial=3)
  return 2 * x.nbytes / seconds / 1e12


def ceilings(small: bool) -> dict[str, float]:
  """bf16 and f32 matmul TFLOP/s (8192^2 operands, 1024^2 when small) and copy bandwidth (4 GiB, 64 MiB small)."""
  size, trials = (1024, 3) if small else (8192, 10)
  return dict(matmul_bf16_tflops=matmul_tflops(jnp.bfloat16, size, trials),
              matmul_f32_tflops=matmul_tflops(jnp.float32, size, trials),
              copy_tbps=copy_tbps((1 << 26) if small else (1 << 32), trials))


def compiled_memory_gib(jitted, *args) -> dict[str, float]:
  """XLA's memory plan of `jitted` on `args`: arguments, temporaries, outputs and their peak sum, in GiB.

  The peak is arguments + temporaries + outputs not aliased to (donated) arguments: what the program holds at once.
  """
  analysis = jitted.lower(*args).compile().memory_analysis()
  gib = lambda value: value / 2**30
  peak = (analysis.argument_size_in_bytes + analysis.temp_size_in_bytes + analysis.output_size_in_bytes
          - analysis.alias_size_in_bytes)
  return dict(argument_gib=gib(analysis.argument_size_in_bytes), temp_gib=gib(analysis.temp_size_in_bytes),
              output_gib=gib(analysis.output_size_in_bytes), peak_gib=gib(peak))
