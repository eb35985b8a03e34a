"""Train-step throughput and peak memory of TiTok stage 1, the same model as the official PyTorch TiTok anchor.

The official stage-1 model layer for layer (jaxtok's TiTok with `decoder_output="proxy_codes"`: class token,
ln_pre, exact GELU, LayerNorm eps 1e-5, legacy token projection and proxy-code head; parameter counts equal the
anchor's: 52,934,156 / 174,073,612 / 610,314,252, checked before timing): ViT encoder and decoder, patch 16,
256x256 images, VQ with 4,096 codes of dimension 12 and l2-normalised (cosine) lookup, 1,024-way proxy-code logits
(targets: a frozen 2D tokenizer's codes; random codes here, which costs the same), cross-entropy plus the quantizer
loss, AdamW with global-norm gradient clipping, bf16 computation with float32 parameters. Each model runs in its own
process so its peak memory is its own. Model FLOPs utilisation = 3 x forward matmul FLOPs per image
(`titok.flops_per_image`) x images/s / the bf16 matmul ceiling measured in the same process.

Reference, H100, PyTorch (../shared/gpu/h100-titok-torch-anchor-2026-11-23.jsonl), batch 128 bf16: TiTok-B-64 631
images/s eager, 896 with torch.compile; S-128 1,197; L-32 251 (78 GB peak).

  python benchmarks/tokenizer_train.py            # full on GPU (S-128, B-64, L-32 at batch 128), small on CPU
  python benchmarks/tokenizer_train.py --small
  python benchmarks/tokenizer_train.py --model=B-64 --batch=128   # one model, prints one JSON line
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxtok.tokenizers import titok

MODELS = {"S-128": ("small", 128), "B-64": ("base", 64), "L-32": ("large", 32)}
OFFICIAL_STAGE1_PARAMETERS = {"S-128": 52_934_156, "B-64": 174_073_612, "L-32": 610_314_252}  # the anchor's models
TORCH_REFERENCE_IMAGES_PER_SECOND = {"S-128": 1197.1, "B-64": 630.7, "L-32": 251.5}


def build_model(name: str, small: bool) -> titok.TiTok:
  size, tokens = MODELS[name]
  return titok.TiTok(image_size=32 if small else 256, patch_size=8 if small else 16, num_latent_tokens=tokens,
                     token_dim=12, encoder_size="micro" if small else size, decoder_size="micro" if small else size,
                     quantizer={"name": "vq", "codebook_size": 4096, "distance": "cosine", "commitment_cost": 0.25,
                                "codebook_cost": 1.0},
                     decoder_output="proxy_codes", proxy_codebook_size=1024, dtype="bfloat16")


def make_train_step(model: titok.TiTok, optimizer: optax.GradientTransformation):
  """(params, state, opt_state, images, proxy codes) -> (params, state, opt_state, loss).

  Loss: cross-entropy of the proxy-code logits plus the quantizer loss; `state` is the quantizer collection.
  """

  def loss_fn(params, state, images, codes):
    (logits, output), state = model.apply({"params": params, **state}, images, train=True, mutable=list(state))
    cross_entropy = optax.softmax_cross_entropy_with_integer_labels(logits, codes).mean()
    return cross_entropy + output.loss, state

  def train_step(params, state, opt_state, images, codes):
    (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, images, codes)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), state, opt_state, loss

  return jax.jit(train_step, donate_argnums=(0, 1, 2))


def seconds_per_step(train_step, params, state, opt_state, images, codes, steps: int) -> tuple[float, jax.Array]:
  """Mean wall seconds of `steps` train steps after one warm-up step (its inputs are donated), and the last loss."""
  params, state, opt_state, loss = train_step(params, state, opt_state, images, codes)
  jax.block_until_ready(loss)
  start = time.perf_counter()
  for _ in range(steps):
    params, state, opt_state, loss = train_step(params, state, opt_state, images, codes)
  jax.block_until_ready(loss)
  return (time.perf_counter() - start) / steps, loss


def matmul_ceiling_tflops(small: bool) -> float:
  size = 1024 if small else 8192
  a = jnp.ones((size, size), jnp.bfloat16)
  matmul = jax.jit(lambda x: x @ x)
  jax.block_until_ready(matmul(a))
  times = []
  for _ in range(5):
    start = time.perf_counter()
    jax.block_until_ready([matmul(a) for _ in range(10)])
    times.append((time.perf_counter() - start) / 10)
  return 2 * size**3 / statistics.median(times) / 1e12


def run_one(name: str, batch: int, small: bool, steps: int) -> dict:
  model = build_model(name, small)
  images = jax.random.uniform(jax.random.PRNGKey(0), (batch, model.image_size, model.image_size, 3), minval=-1)
  grid = model.image_size // model.patch_size
  codes = jax.random.randint(jax.random.PRNGKey(1), (batch, grid, grid), 0, model.proxy_codebook_size)
  variables = jax.jit(lambda r, x: nn.unbox(model.init(r, x)))(jax.random.PRNGKey(2), images[:1])
  params = variables.pop("params")
  count = sum(x.size for x in jax.tree.leaves(params))
  if not small and count != OFFICIAL_STAGE1_PARAMETERS[name]:
    raise AssertionError(f"TiTok-{name} has {count:,} parameters, the official stage-1 model "
                         f"{OFFICIAL_STAGE1_PARAMETERS[name]:,}.")
  state = dict(variables)
  optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-4, b1=0.9, b2=0.99, weight_decay=1e-4))
  opt_state = optimizer.init(params)
  train_step = make_train_step(model, optimizer)
  seconds, _ = seconds_per_step(train_step, params, state, opt_state, images, codes, steps)
  images_per_second = batch / seconds
  ceiling = matmul_ceiling_tflops(small)
  train_tflops = 3 * titok.flops_per_image(model) * images_per_second / 1e12
  stats = jax.devices()[0].memory_stats() or {}
  return {"model": f"TiTok-{name}", "batch": batch, "small": small, "step_ms": 1e3 * seconds,
          "images_per_second": images_per_second, "train_gflop_per_image": 3 * titok.flops_per_image(model) / 1e9,
          "model_tflops": train_tflops, "matmul_ceiling_tflops": ceiling, "mfu": train_tflops / ceiling,
          "peak_memory_gb": stats.get("peak_bytes_in_use", float("nan")) / 1e9,
          "params_m": count / 1e6, "device": str(jax.devices()[0])}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--small", action="store_true", help="tiny models at 32x32 (the default on CPU)")
  parser.add_argument("--model", choices=sorted(MODELS), help="run one model in this process, print one JSON line")
  parser.add_argument("--batch", type=int, default=None, help="batch size (default: 128 full, 4 small)")
  parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 full, 3 small)")
  args = parser.parse_args()
  small = args.small or jax.default_backend() == "cpu"
  batch = args.batch or (4 if small else 128)
  steps = args.steps or (3 if small else 20)
  if args.model:
    print(json.dumps(run_one(args.model, batch, small, steps)))
    return
  rows = []
  for name in MODELS:
    command = [sys.executable, __file__, f"--model={name}", f"--batch={batch}", f"--steps={steps}"]
    result = subprocess.run(command + (["--small"] if small else []), capture_output=True, text=True, check=False)
    if result.returncode:
      errors = [line for line in result.stderr.splitlines() if "Error" in line] or result.stderr.splitlines()[-1:]
      rows.append({"model": f"TiTok-{name}", "error": errors[-1] if errors else f"exit {result.returncode}"})
    else:
      rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
  print(f"{'model':<12}{'batch':>6}{'img/s':>10}{'torch ref':>10}{'MFU':>7}{'peak GB':>9}{'params M':>10}")
  for row in rows:
    if "error" in row:
      print(f"{row['model']:<12} failed: {row['error']}")
      continue
    reference = "-" if small else f"{TORCH_REFERENCE_IMAGES_PER_SECOND[row['model'][6:]]:.0f}"
    print(f"{row['model']:<12}{row['batch']:>6}{row['images_per_second']:>10.1f}{reference:>10}{row['mfu']:>7.1%}"
          f"{row['peak_memory_gb']:>9.1f}{row['params_m']:>10.1f}")


if __name__ == "__main__":
  main()
