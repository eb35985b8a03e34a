"""Benchmark of the fused codebook lookup against naive and chunked XLA.

Full size on a GPU (N=65,536; the issue's (D, K) grid in float32 and bfloat16, plus K=2^20 for the memory bound),
a few seconds' worth of small shapes elsewhere (`--small` forces that). For each (dtype, D, K) and implementation it
reports the median time, TFLOP/s (2NDK / time), the fraction of the bf16 matmul ceiling measured in this same run,
the extra device memory the compiled lookup needs (temporaries + outputs, from XLA's memory analysis), and a check
that the chosen codes are nearest to within float32 tolerance on a sample of rows.

Run from the repository root after `pip install -e . --no-deps`:
  python benchmarks/codebook_lookup.py            # full on GPU, small on CPU
  python benchmarks/codebook_lookup.py --small
  python benchmarks/codebook_lookup.py --sweep    # plus Triton block-size variants, to retune the defaults
  python benchmarks/codebook_lookup.py --skip=mosaic_gpu,naive_xla
"""
import argparse
import functools

import jax
import jax.numpy as jnp

import timing
from jaxtok.kernels import codebook_lookup
from jaxtok.kernels.codebook_lookup import api
from jaxtok.kernels.codebook_lookup import triton

_FULL_ROWS = 65536
_FULL_SHAPES = ((8, 4096), (16, 16384), (32, 65536), (64, 262144), (256, 65536), (256, 262144), (32, 1 << 20))
_SMALL_ROWS = 1024
_SMALL_SHAPES = ((8, 256), (32, 2048), (256, 1024))
# The headline rows, (dtype, D, K): the 12x-naive row, the 70%-of-bf16-ceiling row and the memory rows.
HEADLINE = ((jnp.float32, 32, 65536), (jnp.bfloat16, 256, 65536), (jnp.float32, 32, 1 << 18),
            (jnp.float32, 32, 1 << 20))
SMALL_HEADLINE = ((jnp.float32, 32, 2048), (jnp.bfloat16, 64, 1024), (jnp.float32, 32, 4096),
                  (jnp.float32, 32, 8192))
_CHECK_ROWS = 512
# Triton launch configurations tried by --sweep: (block_rows, block_codes, num_warps, num_stages).
_TRITON_SWEEP = ((64, 64, 4, 3), (128, 32, 4, 3), (128, 64, 4, 3), (128, 64, 8, 2), (128, 64, 8, 3),
                 (128, 128, 8, 2), (256, 64, 8, 2), (64, 128, 4, 2))


def naive_lookup(z: jax.Array, codebook: jax.Array) -> jax.Array:
  """The `[N, K]` distance matrix then argmin, with float32 accumulation."""
  dots = jnp.einsum("nd,kd->nk", z, codebook, preferred_element_type=jnp.float32)
  sqnorm = jnp.sum(jnp.square(codebook.astype(jnp.float32)), axis=1)
  return jnp.argmin(sqnorm[None, :] - 2.0 * dots, axis=1).astype(jnp.int32)


def nearest_check(indices: jax.Array, z: jax.Array, codebook: jax.Array) -> float:
  """Worst excess of the chosen code's distance over the true minimum, relative to |z|^2 + max|c|^2, on sample rows."""
  sample = z[:_CHECK_ROWS].astype(jnp.float32)
  codebook = codebook.astype(jnp.float32)
  sqnorm = jnp.sum(codebook * codebook, axis=1)
  dots = jnp.einsum("nd,kd->nk", sample, codebook, precision=jax.lax.Precision.HIGHEST)
  distances = jnp.sum(sample * sample, axis=1, keepdims=True) - 2 * dots + sqnorm[None, :]
  chosen = jnp.take_along_axis(distances, indices[:_CHECK_ROWS, None], axis=1)[:, 0]
  scale = jnp.sum(sample * sample, axis=1) + jnp.max(sqnorm)
  return float(jnp.max((chosen - jnp.min(distances, axis=1)) / scale))


def local_platform() -> str:
  """The lowering platform of the default device ('cuda' for an NVIDIA GPU)."""
  return "cuda" if jax.default_backend() == "gpu" else jax.default_backend()


def implementations(sweep: bool, skip: tuple[str, ...], dim: int, dtype) -> dict[str, object]:
  """Lookups to time: naive XLA, chunked XLA, every Pallas backend that runs here (and Triton block variants)."""
  runnable = {"naive_xla": naive_lookup, "xla": functools.partial(codebook_lookup, implementation="xla")}
  for name in api.IMPLEMENTATIONS:
    if name != "xla" and api.unavailable_reason(name, local_platform(), dim, dtype) is None:
      runnable[name] = functools.partial(codebook_lookup, implementation=name)
  for name in skip:
    runnable.pop(name, None)
  if sweep and "triton" in runnable:
    for rows, codes, warps, stages in _TRITON_SWEEP:
      blocks = triton.BlockSizes(block_rows=rows, block_codes=codes, num_warps=warps, num_stages=stages)
      kernel = functools.partial(triton.nearest_code, block_sizes=blocks)
      runnable[f"t{rows}x{codes}w{warps}s{stages}"] = functools.partial(api.lookup_with, kernel)
  return runnable


def benchmark_shape(num_rows, dim, num_codes, dtype, ceiling, *, trials, device_bytes, sweep, skip):
  """Yields one row per implementation at this (N, D, K, dtype); each compiles once (its memory plan is read there)."""
  keys = jax.random.split(jax.random.key(dim * num_codes), 4)
  input_sets = [(jax.random.normal(keys[i], (num_rows, dim), dtype),
                 jax.random.normal(keys[i + 1], (num_codes, dim), dtype)) for i in (0, 2)]
  flops = 2 * num_rows * dim * num_codes
  for name, fn in implementations(sweep, skip, dim, dtype).items():
    row = dict(dtype=jnp.dtype(dtype).name, D=dim, K=num_codes, impl=name)
    if name == "naive_xla" and num_rows * num_codes * 4 > 0.8 * device_bytes:
      yield dict(row, note=f"skipped: N x K float32 = {num_rows * num_codes * 4 / 2**30:.0f} GiB")
      continue
    try:
      compiled = jax.jit(fn).lower(*input_sets[0]).compile()
      memory = compiled.memory_analysis()
      seconds = timing.median_seconds(compiled, input_sets, trials=trials, calls_per_trial=5)
      row.update(ms=seconds * 1e3, tflops=flops / seconds / 1e12, ceiling=flops / seconds / 1e12 / ceiling,
                 mib=(memory.temp_size_in_bytes + memory.output_size_in_bytes) / 2**20,
                 check=nearest_check(compiled(*input_sets[0]), *input_sets[0]))
    except Exception as error:  # a backend failing at one shape (e.g. out of memory) must not hide the others
      row["note"] = f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"
    print(row, flush=True)
    yield row


def format_table(rows, ceiling) -> str:
  naive = {(r["dtype"], r["D"], r["K"]): r.get("ms") for r in rows if r["impl"] == "naive_xla"}
  lines = [f"bf16 matmul ceiling measured in this run: {ceiling:.4g} TFLOP/s",
           f"{'dtype':9} {'D':>4} {'K':>8} {'impl':16} {'ms':>9} {'TFLOP/s':>8} {'ceil%':>6} {'vs naive':>8} "
           f"{'extra MiB':>10} {'check':>8}"]
  for r in rows:
    head = f"{r['dtype']:9} {r['D']:>4} {r['K']:>8} {r['impl']:16}"
    if "ms" not in r:
      lines.append(f"{head} {r['note']}")
      continue
    base = naive.get((r["dtype"], r["D"], r["K"]))
    speedup = f"{base / r['ms']:7.1f}x" if base else "      - "
    lines.append(f"{head} {r['ms']:9.3f} {r['tflops']:8.3g} {100 * r['ceiling']:5.1f}% {speedup} "
                 f"{r['mib']:10.1f} {r['check']:8.1e}")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--small", action="store_true", help="small shapes (the default off GPU)")
  parser.add_argument("--sweep", action="store_true", help="also time Triton block-size variants (GPU)")
  parser.add_argument("--skip", default="", help="comma-separated implementations not to run, e.g. mosaic_gpu")
  args = parser.parse_args()
  small = args.small or jax.default_backend() != "gpu"
  num_rows, shapes = (_SMALL_ROWS, _SMALL_SHAPES) if small else (_FULL_ROWS, _FULL_SHAPES)
  trials = 3 if small else 10
  device_bytes = jax.devices()[0].memory_stats().get("bytes_limit", 1 << 40) if not small else 1 << 40
  print(f"devices: {jax.devices()}  jax {jax.__version__}", flush=True)
  ceiling = timing.matmul_tflops(jnp.bfloat16, 1024 if small else 8192, trials)
  rows = []
  for dtype in (jnp.float32, jnp.bfloat16):
    for dim, num_codes in shapes:
      rows += benchmark_shape(num_rows, dim, num_codes, dtype, ceiling, trials=trials, device_bytes=device_bytes,
                              sweep=args.sweep, skip=tuple(filter(None, args.skip.split(","))))
  print(format_table(rows, ceiling))


if __name__ == "__main__":
  main()
