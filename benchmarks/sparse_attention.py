"""Block-sparse attention vs dense cuDNN and masked XLA attention: time and effective TFLOP/s, forward and backward.

  python benchmarks/sparse_attention.py [--output results.json]

On a GPU: sequences 4k/16k/32k (32k tokens per batch, 16 heads, bf16), head dims 64/128, random block masks of
density 100/50/25/12.5% on 128x128 tiles (each query tile keeps its diagonal tile), plus a causal mask. On CPU: one
tiny configuration with the Triton kernel in interpret mode, which checks the script, not the speed.

Effective TFLOP/s counts only the work the mask leaves (dense flops x block density); speed-ups are dense cuDNN time
over sparse time. Targets (from the issue): at density d <= 25% a speed-up >= 0.7 / d, at 100% >= 0.7 (70% of
cuDNN's throughput), forward and backward each. Backward time = (forward + backward) - forward.
"""
import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np

import timing
from jaxtok.kernels import sparse_attention
from jaxtok.kernels.sparse_attention import block_tables
from jaxtok.kernels.sparse_attention import mask as mask_lib
from jaxtok.kernels.sparse_attention import triton

TILE = 128
HEADS = 16
TOKENS_PER_BATCH = 32768


def time_ms(function, *args, repeats: int) -> float:
  """Median wall time of `function(*args)` in milliseconds, after a warm-up call."""
  return 1e3 * timing.median_seconds(function, [args], trials=repeats)


def random_block_mask(seq_len: int, density: float, rng: np.random.Generator) -> mask_lib.BlockMask:
  """Each query tile attends its diagonal tile and random others, `density` of all tiles in total."""
  tiles = seq_len // TILE
  per_row = max(1, round(density * tiles))
  blocks = np.zeros((1, tiles, tiles), bool)
  for row in range(tiles):
    others = rng.permutation(np.delete(np.arange(tiles), row))[:per_row - 1]
    blocks[0, row, [row, *others]] = True
  return mask_lib.BlockMask(blocks, TILE, TILE, seq_len, seq_len)


def forward_and_gradient(attention):
  """Jitted forward and jitted forward+backward of `attention(q, k, v)`."""
  loss = lambda q, k, v: jnp.sum(attention(q, k, v).astype(jnp.float32))
  return jax.jit(attention), jax.jit(jax.grad(loss, argnums=(0, 1, 2)))


def measure(attention, inputs, repeats: int) -> tuple[float, float]:
  """(forward ms, backward ms) of `attention`."""
  forward, gradient = forward_and_gradient(attention)
  forward_ms = time_ms(forward, *inputs, repeats=repeats)
  return forward_ms, time_ms(gradient, *inputs, repeats=repeats) - forward_ms


def sparse_attention_fn(mask, interpret: bool):
  """The device's kernel, named explicitly so that a kernel that cannot run fails instead of timing XLA; the Triton
  kernel in interpret mode off-device."""
  if interpret:
    return lambda q, k, v: triton.attention(q, k, v, mask, scale=q.shape[-1] ** -0.5, interpret=True)
  kernel = {"gpu": "triton", "tpu": "mosaic_tpu"}[jax.default_backend()]
  return lambda q, k, v: sparse_attention(q, k, v, mask, implementation=kernel)


def xla_masked_fn(mask):
  allowed = jnp.asarray(mask_lib.dense(mask))[None]
  return lambda q, k, v: jax.nn.dot_product_attention(q, k, v, mask=allowed, implementation="xla")


def target(density: float) -> float | None:
  """The issue's minimum speed-up over dense cuDNN at this block density."""
  if density >= 0.999:
    return 0.7
  return 0.7 / density if density <= 0.25 + 1e-9 else None


def run_configuration(seq_len, head_dim, masks, args, rng):
  """Yields a row of results per mask for one (sequence, head dim), after timing the dense baselines."""
  batch = max(1, args.tokens // seq_len)
  shape = (batch, seq_len, args.heads, head_dim)
  inputs = [jnp.asarray(rng.normal(size=shape), jnp.bfloat16) for _ in range(3)]
  dense_flops = 4.0 * batch * args.heads * seq_len * seq_len * head_dim
  dense_impl = "cudnn" if jax.default_backend() == "gpu" else "xla"
  dense = lambda causal: measure(lambda q, k, v: jax.nn.dot_product_attention(
      q, k, v, is_causal=causal, implementation=dense_impl), inputs, args.repeats)
  cudnn = {False: dense(False)}
  if any(name == "causal" for name, _ in masks):
    cudnn[True] = dense(True)
  for name, mask in masks:
    density = float(block_tables.from_structured(mask, TILE, TILE).density())
    sparse = measure(sparse_attention_fn(mask, not args.accelerator), inputs, args.repeats)
    xla = (measure(xla_masked_fn(mask), inputs, args.repeats) if seq_len <= args.max_xla_seq_len
           else (float("nan"),) * 2)
    baseline = cudnn[name == "causal"]
    tflops = lambda times, work: [work * factor / (ms * 1e9) for factor, ms in zip((1, 2.5), times)]
    print(f"done S={seq_len} Dh={head_dim} {name}", flush=True)
    yield dict(seq_len=seq_len, head_dim=head_dim, batch=batch, mask=name, density=density,
               sparse_ms=sparse, cudnn_ms=baseline, xla_ms=xla,
               sparse_tflops=tflops(sparse, dense_flops * density),
               cudnn_tflops=tflops(cudnn[False], dense_flops),
               speedup=[b / s for b, s in zip(baseline, sparse)],
               target=None if name == "causal" else target(density))


def print_table(rows, device: str) -> None:
  print(f"\nsparse_attention on {device}; bf16; ms and effective TFLOP/s; speed-up over dense (cuDNN on GPU, XLA on "
        "CPU; causal rows: over dense causal)")
  header = (f"{'S':>6} {'Dh':>4} {'mask':>10} {'dens':>5} | {'fwd ms':>8} {'TF/s':>6} {'dense':>8} {'xla':>8} "
            f"{'speedup':>7} {'target':>6} | {'bwd ms':>8} {'TF/s':>6} {'dense':>8} {'xla':>8} {'speedup':>7}")
  print(header)
  print("-" * len(header))
  for r in rows:
    goal = "-" if r["target"] is None else f"{r['target']:.2f}"
    cells = [f"{r['sparse_ms'][p]:8.3f} {r['sparse_tflops'][p]:6.0f} {r['cudnn_ms'][p]:8.3f} {r['xla_ms'][p]:8.3f} "
             f"{r['speedup'][p]:7.2f}" for p in (0, 1)]
    print(f"{r['seq_len']:>6} {r['head_dim']:>4} {r['mask']:>10} {r['density']:5.3f} | {cells[0]} {goal:>6} | "
          f"{cells[1]}")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--output", help="also write the rows as JSON here")
  parser.add_argument("--repeats", type=int, default=None, help="timed calls per measurement")
  args = parser.parse_args()
  args.accelerator = jax.default_backend() in ("gpu", "tpu")
  args.heads = HEADS if args.accelerator else 2
  args.tokens = TOKENS_PER_BATCH if args.accelerator else 256
  args.repeats = args.repeats or (20 if args.accelerator else 2)
  args.max_xla_seq_len = 16384
  full = ((4096, 16384, 32768), (64, 128), (1.0, 0.5, 0.25, 0.125))
  seq_lens, head_dims, densities = full if args.accelerator else ((256,), (64,), (1.0, 0.25))
  rng = np.random.default_rng(0)
  rows = []
  for seq_len in seq_lens:
    masks = [(f"{d:.1%}", random_block_mask(seq_len, d, rng)) for d in densities]
    masks.append(("causal", mask_lib.CausalMask(seq_len, seq_len)))
    for head_dim in head_dims:
      rows += run_configuration(seq_len, head_dim, masks, args, rng)
  if args.output:
    with open(args.output, "w") as f:
      json.dump(dict(device=str(jax.devices()[0]), jax=jax.__version__, rows=rows), f, indent=1)
  print_table(rows, str(jax.devices()[0].device_kind))


if __name__ == "__main__":
  main()
