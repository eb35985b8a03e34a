"""Forward + backward time of every quantizer at tokenizer-realistic shapes.

One training step of the quantizer alone: `apply(train=True, mutable=["quantizer"])`, a stand-in decoder loss
`mean(quantized^2)` plus the quantizer's own loss, gradients to the input and the parameters, jitted. Full size on a
GPU (256 images x 32 tokens = 8,192 tokens; dims 12..256; K = 4,096..262,144 and 2^128), small on CPU (`--small`
forces that). For each quantizer it reports the median step time, tokens per second and, for the VQ family, the
nearest-code search rate (2 N D K flops per codebook) as TFLOP/s and as a fraction of the bf16 matmul ceiling
measured in this same run.

Run from the repository root after `pip install -e . --no-deps`:
  python benchmarks/quantizers.py            # full on GPU, small on CPU
  python benchmarks/quantizers.py --small --only=vq_l2,fsq

Rows are named by setting (the keys of `_FULL`, what `--only` takes) and the size run: `vq_large_256k` on a GPU is
`vq_large_1k` on CPU, `lfq_18bit` is `lfq_10bit`. K is the codes per codebook (2^bits for LFQ/BSQ).
"""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from jaxtok import quantizers

# setting -> (quantizer config, input dim); K and dims as in published tokenizers. A row's name is its setting
# followed by the size actually run (`row_name`), so a CPU run's smaller codebooks never carry the full-size name.
_FULL = {
    "vq_l2": ({"name": "vq", "codebook_size": 4096}, 12),
    "vq_l2_ema_kmeans_restart": ({"name": "vq", "codebook_size": 16384, "use_ema": True, "kmeans_init": True,
                                  "dead_code_window": 100}, 32),
    "vq_cosine_factorized": ({"name": "vq", "codebook_size": 16384, "codebook_dim": 32, "distance": "cosine"}, 256),
    "vq_rotation": ({"name": "vq", "codebook_size": 65536, "estimator": "rotation"}, 32),
    "vq_large": ({"name": "vq", "codebook_size": 262144}, 16),
    "residual_vq": ({"name": "residual_vq", "codebook_size": 1024, "num_stages": 8, "quantizer_dropout_rate": 0.5},
                    128),
    "grouped_vq": ({"name": "grouped_vq", "codebook_size": 4096, "num_groups": 8}, 256),
    "fsq": ({"name": "fsq", "levels": (8, 8, 8, 5, 5, 5), "input_dim": 256}, 256),
    "lfq": ({"name": "lfq", "dim": 18, "input_dim": 256}, 256),
    "bsq": ({"name": "bsq", "dim": 18, "input_dim": 256}, 256),
    "bsq_packed": ({"name": "bsq", "dim": 128, "input_dim": 256, "packed_indices": True, "entropy_group_bits": 8},
                   256),
}
_FULL_TOKENS = (256, 32)
_SMALL_TOKENS = (16, 32)
_SMALL_MAX_CODES = 1024


def small_config(config: dict) -> dict:
  """The same quantizer with codebooks capped at 1,024 codes (and 10 bits for LFQ/BSQ) for a quick CPU run."""
  config = dict(config)
  if "codebook_size" in config:
    config["codebook_size"] = min(config["codebook_size"], _SMALL_MAX_CODES)
  if config["name"] in ("lfq", "bsq") and not config.get("packed_indices"):
    config["dim"] = min(config["dim"], 10)
  return config


def _count(n: int) -> str:
  """1024 -> "1k", 262144 -> "256k", 64000 -> "64000": a code count as it reads in a row name."""
  return f"{n // 1024}k" if n % 1024 == 0 else str(n)


def row_name(setting: str, model) -> str:
  """`setting` and the size of the quantizer actually built: stages or groups x codes per codebook, or bits."""
  per_codebook = getattr(model, "codebook_size", None)
  if hasattr(model, "num_stages"):
    return f"{setting}_{model.num_stages}x{_count(per_codebook)}"
  if hasattr(model, "num_groups"):
    return f"{setting}_{model.num_groups}x{_count(per_codebook)}"
  if hasattr(model, "dim"):  # LFQ / BSQ: one bit per channel
    return f"{setting}_{model.dim}bit"
  return f"{setting}_{_count(per_codebook)}"


def median_seconds(fn, inputs, *, trials: int, calls_per_trial: int) -> float:
  jax.block_until_ready(fn(*inputs))
  times = []
  for _ in range(trials):
    start = time.perf_counter()
    jax.block_until_ready([fn(*inputs) for _ in range(calls_per_trial)])
    times.append((time.perf_counter() - start) / calls_per_trial)
  return statistics.median(times)


def matmul_ceiling_tflops(size: int, trials: int) -> float:
  """Measured bf16 matmul rate on random `[size, size]` operands."""
  a, b = (jax.random.normal(key, (size, size), jnp.bfloat16) for key in jax.random.split(jax.random.key(0)))
  return 2 * size**3 / median_seconds(jax.jit(jnp.matmul), (a, b), trials=trials, calls_per_trial=5) / 1e12


def make_step(model):
  """Jitted `(variables, x, key) -> (grads, new state)`: one quantizer training step with a stand-in loss."""

  def loss_fn(params, x, variables, key):
    out, state = model.apply({**variables, "params": params}, x, train=True, mutable=["quantizer"],
                             rngs={"quantizer": key})
    return out.loss + jnp.mean(out.quantized.astype(jnp.float32)**2), state

  @jax.jit
  def step(variables, x, key):
    grads, state = jax.grad(loss_fn, argnums=(0, 1), has_aux=True)(variables.get("params", {}), x, variables, key)
    return grads, state

  return step


def lookup_flops_per_token(config: dict, dim: int) -> int:
  """2 D K per codebook searched (VQ family), 0 for the lookup-free quantizers."""
  if config["name"] == "vq":
    return 2 * (config.get("codebook_dim") or dim) * config["codebook_size"]
  if config["name"] == "residual_vq":
    return 2 * dim * config["codebook_size"] * config["num_stages"]
  if config["name"] == "grouped_vq":
    return 2 * dim * config["codebook_size"]
  return 0


def benchmark(name, config, dim, tokens, dtype, ceiling, trials):
  batch, length = tokens
  model = quantizers.make_quantizer(config)
  x = jax.random.normal(jax.random.key(1), (batch, length, dim), dtype)
  variables = model.init({"params": jax.random.key(2), "quantizer": jax.random.key(3)}, x)
  step = make_step(model)
  _, state = step(variables, x, jax.random.key(4))  # the first step seeds k-means; time the steady state
  seconds = median_seconds(step, ({**variables, **state}, x, jax.random.key(5)), trials=trials, calls_per_trial=3)
  flops = lookup_flops_per_token(config, dim) * batch * length
  row = dict(quantizer=row_name(name, model), D=dim, K=model.codebook_size or f"2^{config['dim']}",
             bits=model.bits_per_token,
             dtype=jnp.dtype(dtype).name, ms=seconds * 1e3, mtok_s=batch * length / seconds / 1e6)
  if flops:
    row.update(tflops=flops / seconds / 1e12, ceiling=flops / seconds / 1e12 / ceiling)
  print(row, flush=True)
  return row


def print_table(rows, ceiling, device):
  print(f"\nquantizer forward+backward on {device}; bf16 matmul ceiling {ceiling:.3g} TFLOP/s (this run)")
  header = f"{'quantizer':28s} {'dtype':8s} {'D':>4s} {'K':>8s} {'bits':>6s} {'ms':>9s} {'Mtok/s':>8s} " \
           f"{'TFLOP/s':>8s} {'ceiling':>8s}"
  print(header)
  print("-" * len(header))
  for row in rows:
    search = f"{row['tflops']:8.2f} {row['ceiling']:8.1%}" if "tflops" in row else f"{'-':>8s} {'-':>8s}"
    print(f"{row['quantizer']:28s} {row['dtype']:8s} {row['D']:4d} {str(row['K']):>8s} {row['bits']:6.1f} "
          f"{row['ms']:9.3f} {row['mtok_s']:8.3f} {search}")


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--small", action="store_true", help="small shapes even on an accelerator")
  parser.add_argument("--only", default="", help="comma-separated quantizer names to run")
  parser.add_argument("--dtypes", default="float32,bfloat16", help="input dtypes")
  args = parser.parse_args()
  small = args.small or jax.default_backend() == "cpu"
  tokens, trials = (_SMALL_TOKENS, 3) if small else (_FULL_TOKENS, 10)
  ceiling = matmul_ceiling_tflops(1024 if small else 8192, trials)
  selected = [name for name in _FULL if not args.only or name in args.only.split(",")]
  rows = []
  for dtype in args.dtypes.split(","):
    for name in selected:
      config, dim = _FULL[name]
      rows.append(benchmark(name, small_config(config) if small else config, dim, tokens, jnp.dtype(dtype),
                            ceiling, trials))
  print_table(rows, ceiling, f"{jax.devices()[0].device_kind} ({'small' if small else 'full'} shapes)")


if __name__ == "__main__":
  main()
