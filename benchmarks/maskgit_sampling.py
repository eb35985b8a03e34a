"""MaskGIT sampling throughput, comparable with the official PyTorch MaskGIT (Chang et al. 2022) on an H100.

The reference configuration: a BERT-style bidirectional generator of 24 layers, width 768, 16 heads, MLP 3,072, over
64 tokens of a 4,096-code tokenizer plus the class token, 8 MaskGIT steps with classifier-free guidance (the
conditional and unconditional passes of a step run as one batch of 2 x batch), bf16 computation, random weights.
`masked_sampling.maskgit_sample` runs the 8 steps as one `lax.scan` inside one jitted program: no per-step host
round trip. Also 256-token sequences (no reference figure).

Reported per (length, batch): the median time of a whole batch over repeats after a warm-up call, images/s next to
the PyTorch figure (../shared/gpu/h100-maskgit-torch-anchor-2026-11-23.jsonl, H100: 710 images/s at batch 256 bf16,
181 at batch 32 bf16 and 218 at batch 32 fp32; targets >= 1,100 and >= 450), model TFLOP/s from the analytic matmul
FLOPs (`sampling_flops`) and their fraction of the bf16 matmul ceiling measured in this process (MFU), and the
fraction of time in attention. Attention's share is measured, not modelled: the attention core
(`jaxtok.nn.attention.attend` on the sampler's q/k/v shapes, each call fed the previous output so none is elided)
runs depth x steps times in one jitted loop, and its median time is divided by the sampler's.

  python benchmarks/maskgit_sampling.py            # full on GPU, small on CPU
  python benchmarks/maskgit_sampling.py --small    # a 1-layer model on short sequences, under a minute on CPU
"""
import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp

import timing
from jaxtok.decoders import masked_sampling
from jaxtok.decoders import maskgit
from jaxtok.nn import attention

TORCH_REFERENCE_IMAGES_PER_SECOND = {(256, "bf16"): 710.3, (32, "bf16"): 180.9, (256, "fp32"): 377.6,
                                     (32, "fp32"): 218.3}
TARGET_IMAGES_PER_SECOND = {256: 1100.0, 32: 450.0}
FULL = dict(model=dict(vocab_size=4096, num_classes=1000, width=768, depth=24, num_heads=16, mlp_dim=3072),
            lengths=(64, 256), batches=(256, 32), ceiling_size=8192, repeats=10)
SMALL = dict(model=dict(vocab_size=256, num_classes=10, width=64, depth=1, num_heads=4, mlp_dim=128),
             lengths=(16, 32), batches=(8,), ceiling_size=512, repeats=3)
NUM_STEPS = 8
GUIDANCE_SCALE = 2.0


def sampling_flops(model: maskgit.MaskedTokenTransformer, batch: int) -> float:
  """Matmul FLOPs of one guided sampling run: per step two passes over batch sequences of 1 + L tokens (projections
  8 w^2 + MLP 4 w m + attention scores and values 4 S w per token and layer, output head 2 w V per token)."""
  tokens, width = 1 + model.sequence_length, model.width
  per_token_layer = 8 * width**2 + 4 * width * model.mlp_dim + 4 * tokens * width
  per_sequence = tokens * model.depth * per_token_layer + model.sequence_length * 2 * width * model.vocab_size
  return NUM_STEPS * 2 * batch * per_sequence


def build(model_settings: dict, length: int):
  """(model, float32 params) with random weights, bf16 computation."""
  model = maskgit.MaskedTokenTransformer(sequence_length=length, dropout_rate=0.0, dtype="bfloat16", **model_settings)
  tokens, labels = jnp.zeros((1, length), jnp.int32), jnp.zeros((1,), jnp.int32)
  return model, nn.unbox(jax.jit(model.init)(jax.random.key(0), tokens, labels))


def guided_sampler(model: maskgit.MaskedTokenTransformer):
  """`(variables, key, labels) -> tokens`, the whole 8-step guided sampler as one jitted program."""

  @jax.jit
  def sample(variables, key, labels):
    return masked_sampling.maskgit_sample(
        lambda tokens, class_labels: model.apply(variables, tokens, class_labels), key, labels,
        sequence_length=model.sequence_length, mask_id=model.mask_id, num_steps=NUM_STEPS,
        guidance_scale=GUIDANCE_SCALE, null_class=model.null_class).tokens

  return sample


def attention_seconds(model: maskgit.MaskedTokenTransformer, batch: int, repeats: int) -> float:
  """Time of the sampler's attention cores alone: depth x steps calls on `[2 batch, 1 + L, heads, head_dim]`."""
  shape = (2 * batch, 1 + model.sequence_length, model.num_heads, model.width // model.num_heads)
  q, k, v = (jax.random.normal(key, shape, jnp.bfloat16) for key in jax.random.split(jax.random.key(1), 3))

  @jax.jit
  def attention_loop(q, k, v):
    return jax.lax.fori_loop(0, model.depth * NUM_STEPS, lambda _, x: attention.attend(x, k, v), q)

  return timing.median_seconds(attention_loop, [(q, k, v)], trials=repeats)


def benchmark(model, variables, sample, batch: int, ceiling: float, repeats: int) -> dict:
  """One row of the table: `sample` (from `guided_sampler(model)`) at `batch`."""
  length = model.sequence_length
  keys = jax.random.split(jax.random.key(length * batch), 2)
  labels = jnp.arange(batch, dtype=jnp.int32) % model.num_classes
  seconds = timing.median_seconds(sample, [(variables, key, labels) for key in keys], trials=repeats)
  tokens = sample(variables, keys[0], labels)
  if not (tokens.shape == (batch, length) and bool(jnp.all((tokens >= 0) & (tokens < model.vocab_size)))):
    raise RuntimeError(f"sampler returned bad tokens: shape {tokens.shape}")
  tflops = sampling_flops(model, batch) / seconds / 1e12
  return dict(length=length, batch=batch, ms=seconds * 1e3, images_per_s=batch / seconds, tflops=tflops,
              mfu=tflops / ceiling, attention=attention_seconds(model, batch, repeats) / seconds)


def format_table(rows: list[dict], ceiling: float, small: bool) -> str:
  lines = [f"bf16 matmul ceiling measured in this run: {ceiling:.4g} TFLOP/s; {NUM_STEPS} steps, CFG (2 passes/step), "
           f"bf16{' (small CPU model: reference and target columns do not apply)' if small else ''}",
           f"{'tokens':>6} {'batch':>5} {'ms/batch':>9} {'images/s':>9} {'torch bf16':>10} {'torch fp32':>10} "
           f"{'target':>7} {'vs torch':>8} {'TFLOP/s':>8} {'MFU':>6} {'attn':>6}"]
  for r in rows:
    reference = lambda dtype: TORCH_REFERENCE_IMAGES_PER_SECOND.get((r["batch"], dtype)) if r["length"] == 64 else None
    show = lambda value, fmt: format(value, fmt) if value else "-"
    speedup = f"{r['images_per_s'] / reference('bf16'):.2f}x" if reference("bf16") else "-"
    target = TARGET_IMAGES_PER_SECOND.get(r["batch"]) if r["length"] == 64 else None
    lines.append(f"{r['length']:>6} {r['batch']:>5} {r['ms']:>9.2f} {r['images_per_s']:>9.1f} "
                 f"{show(reference('bf16'), '.1f'):>10} {show(reference('fp32'), '.1f'):>10} {show(target, '.0f'):>7} "
                 f"{speedup:>8} {r['tflops']:>8.3g} {100 * r['mfu']:>5.1f}% {100 * r['attention']:>5.1f}%")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--small", action="store_true", help="small model and shapes (the default off GPU)")
  args = parser.parse_args()
  small = args.small or jax.default_backend() != "gpu"
  config = SMALL if small else FULL
  print(f"devices: {jax.devices()}  jax {jax.__version__}", flush=True)
  ceiling = timing.matmul_tflops(jnp.bfloat16, config["ceiling_size"], config["repeats"])
  rows = []
  for length in config["lengths"]:
    model, variables = build(config["model"], length)
    sample = guided_sampler(model)
    for batch in config["batches"]:
      rows.append(benchmark(model, variables, sample, batch, ceiling, config["repeats"]))
      print(rows[-1], flush=True)
  print(format_table(rows, ceiling, small))


if __name__ == "__main__":
  main()
