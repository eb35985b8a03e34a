"""The sections of `suite.py`: each a generator of result rows built from its benchmark script's functions.

Models come from the public classes at the sizes of the experiment configs (`tokenizer_train.MODELS`,
`maskgit_sampling.FULL`, both checked against `experiments/` in the tests). Rows of one section share keys, so the
report can tabulate them; figures that need another section (a ceiling, a PyTorch reference) are ratios taken here.
"""
import dataclasses
import datetime
import functools
import json
import pathlib
import subprocess
import sys
import types
from typing import Any, Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import codebook_lookup as lookup_bench
import kernel_checks as checks_bench
import maskgit_sampling as sampling_bench
import sparse_attention as attention_bench
import speculative as speculative_bench
import timing
import tokenizer_train
from jaxtok.convert import converted
from jaxtok.decoders import ar_sampling
from jaxtok.decoders import autoregressive
from jaxtok.decoders import speculative as decoders_speculative
from jaxtok.decoders import tree_speculative
from jaxtok.tokenizers import titok

BENCHMARKS = pathlib.Path(__file__).resolve().parent


@dataclasses.dataclass
class Context:
  """What sections share: the run's settings, the ceilings once measured and the PyTorch rows once timed."""
  small: bool
  torch_reference: str
  torch_python: str
  sweep: bool
  work_dir: pathlib.Path
  llamagen: str = "random"  # a converted LlamaGen GPT (.npz) for the llamagen section, or "random"
  llamagen_draft: str = ""
  ceilings: dict[str, float] = dataclasses.field(default_factory=dict)
  torch_rows: list[dict] = dataclasses.field(default_factory=list)
  budget_s: float = 0.0  # of the section running now, for those that run a child process

  def bf16_ceiling(self) -> float:
    return self.ceilings.get("matmul_bf16_tflops") or timing.matmul_tflops(jnp.bfloat16, 1024, 3)

  def torch_images_per_second(self, model: str, batch: int, compiled: bool) -> float | None:
    matches = [row["images_per_second"] for row in self.torch_rows
               if row.get("model") == model and row.get("batch") == batch and row.get("compiled") == compiled
               and "images_per_second" in row]
    return matches[0] if matches else None


def environment(small: bool, started: datetime.datetime) -> dict[str, Any]:
  device = jax.devices()[0]
  return dict(date=started.isoformat(timespec="seconds"), jax=jax.__version__, backend=jax.default_backend(),
              device=getattr(device, "device_kind", str(device)), num_devices=jax.device_count(), small=small,
              python=sys.version.split()[0])


def forbidden_imports() -> list[str]:
  """Modules the GPU image lacks that this process imported anyway (must stay empty)."""
  return sorted(name for name in ("grain", "ml_collections") if name in sys.modules)


def _run_child(command: list[str], timeout_s: float) -> tuple[int | str, str, str]:
  """(exit code or 'timeout', stdout, stderr) of `command`, killed after `timeout_s`."""
  try:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout_s)
    return result.returncode, result.stdout, result.stderr
  except subprocess.TimeoutExpired as expired:
    decode = lambda output: output.decode() if isinstance(output, bytes) else (output or "")
    return "timeout", decode(expired.stdout), decode(expired.stderr)


def torch_reference(context: Context) -> Iterator[dict]:
  """The official PyTorch TiTok train step (eager, torch.compile) and MaskGIT sampling, in their own process."""
  output = context.work_dir / "torch_reference.json"
  command = [context.torch_python, str(BENCHMARKS / "torch_reference.py"), f"--repo={context.torch_reference}",
             f"--out={output}"] + (["--small"] if context.small else [])
  returncode, _, stderr = _run_child(command, context.budget_s)
  if not output.exists():
    raise RuntimeError(f"torch_reference.py exited {returncode}: {stderr[-2000:]}")
  context.torch_rows = json.loads(output.read_text())  # written after every row, so a timeout keeps the done ones
  yield from context.torch_rows
  if returncode == "timeout":
    yield dict(note=f"torch_reference.py stopped at the section's budget ({context.budget_s:.0f} s)")


def ceilings(context: Context) -> Iterator[dict]:
  for name, value in timing.ceilings(context.small).items():
    yield dict(name=name, value=value)


def kernel_checks(context: Context) -> Iterator[dict]:
  yield from checks_bench.lookup_rows(context.small)
  yield from checks_bench.attention_rows(context.small)


def codebook_lookup(context: Context) -> Iterator[dict]:
  """Naive XLA, chunked XLA and each Pallas backend on the headline (dtype, D, K), N = 65,536 (1,024 small)."""
  num_rows, shapes = (1024, lookup_bench.SMALL_HEADLINE) if context.small else (65536, lookup_bench.HEADLINE)
  stats = jax.devices()[0].memory_stats() or {}
  for dtype, dim, num_codes in shapes:
    naive_ms = None  # naive XLA comes first
    for row in lookup_bench.benchmark_shape(num_rows, dim, num_codes, dtype, context.bf16_ceiling(),
                                            trials=3 if context.small else 5,
                                            device_bytes=stats.get("bytes_limit", 1 << 40), sweep=context.sweep,
                                            skip=()):
      naive_ms = row.get("ms") if row["impl"] == "naive_xla" else naive_ms
      yield dict(row, vs_naive=naive_ms / row["ms"] if naive_ms and "ms" in row else None)


def sparse_attention(context: Context) -> Iterator[dict]:
  """S=16k, head dim 128, 16 heads, bf16, block densities 12.5% and 100%, against dense cuDNN (XLA off-GPU)."""
  accelerator = not context.small and jax.default_backend() in ("gpu", "tpu")
  seq_len, head_dim = (16384, 128) if not context.small else (256, 64)
  settings = dict(accelerator=accelerator, heads=attention_bench.HEADS if not context.small else 2,
                  tokens=attention_bench.TOKENS_PER_BATCH if not context.small else 256,
                  repeats=2 if context.small else 5, max_xla_seq_len=0)
  rng = np.random.default_rng(0)
  densities = (0.125, 1.0) if not context.small else (0.5, 1.0)
  masks = [(f"{density:.1%}", attention_bench.random_block_mask(seq_len, density, rng)) for density in densities]
  for row in attention_bench.run_configuration(seq_len, head_dim, masks, types.SimpleNamespace(**settings), rng):
    row = {key: value for key, value in row.items() if key != "xla_ms"}
    yield dict(row, forward_speedup=row["speedup"][0], backward_speedup=row["speedup"][1])


def titok_train(context: Context) -> Iterator[dict]:
  """S-128, B-64 and L-32 (tiny models when small): images/s, MFU and XLA's memory plan of the whole step."""
  batch, steps = (4, 2) if context.small else (128, 10)
  for name in ("B-64", "L-32", "S-128"):
    row = _titok_row(name, batch, steps, context)
    torch_eager = context.torch_images_per_second(f"TiTok-{name}", batch, compiled=False)
    torch_compiled = context.torch_images_per_second(f"TiTok-{name}", batch, compiled=True)
    anchor = None if context.small else tokenizer_train.TORCH_REFERENCE_IMAGES_PER_SECOND[name]
    yield dict(row, vs_torch_eager=_ratio(row["images_per_second"], torch_eager),
               vs_torch_compile=_ratio(row["images_per_second"], torch_compiled), h100_anchor_torch_eager=anchor)


def _titok_row(name: str, batch: int, steps: int, context: Context) -> dict:
  model = tokenizer_train.build_model(name, context.small)
  keys = jax.random.split(jax.random.key(0), 3)
  images = jax.random.uniform(keys[0], (batch, model.image_size, model.image_size, 3), minval=-1)
  grid = model.image_size // model.patch_size
  codes = jax.random.randint(keys[1], (batch, grid, grid), 0, model.proxy_codebook_size)
  variables = jax.jit(lambda key, x: nn.unbox(model.init(key, x)))(keys[2], images[:1])
  params = variables.pop("params")
  state = dict(variables)
  # The official stage-1 recipe: AdamW (1e-4, betas 0.9 / 0.99, weight decay 1e-4), gradients clipped to norm 1.
  optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-4, b1=0.9, b2=0.99, weight_decay=1e-4))
  opt_state = optimizer.init(params)
  step = tokenizer_train.make_train_step(model, optimizer)
  compiled = step.lower(params, state, opt_state, images, codes).compile()
  memory = compiled.memory_analysis()
  params_m = sum(x.size for x in jax.tree.leaves(params)) / 1e6
  seconds, loss = tokenizer_train.seconds_per_step(compiled, params, state, opt_state, images, codes, steps)
  flops = 3 * titok.flops_per_image(model)
  peak = (memory.argument_size_in_bytes + memory.temp_size_in_bytes + memory.output_size_in_bytes
          - memory.alias_size_in_bytes)
  return dict(model=f"TiTok-{name}", batch=batch, step_ms=1e3 * seconds, images_per_second=batch / seconds,
              mfu=flops * batch / seconds / 1e12 / context.bf16_ceiling(), memory_plan_gib=peak / 2**30,
              params_m=params_m, loss=float(loss))


def maskgit_sampling(context: Context) -> Iterator[dict]:
  """24 layers, width 768, 8 guided steps, 64 and 256 tokens at batch 256 and 32 (a 1-layer model when small)."""
  config = sampling_bench.SMALL if context.small else sampling_bench.FULL
  for length in config["lengths"]:
    model, variables = sampling_bench.build(config["model"], length)
    sample = sampling_bench.guided_sampler(model)
    for batch in config["batches"]:
      row = sampling_bench.benchmark(model, variables, sample, batch, context.bf16_ceiling(),
                                       2 if context.small else 5)
      torch = context.torch_images_per_second("MaskGIT", batch, compiled=False) if length == 64 else None
      anchor = sampling_bench.TORCH_REFERENCE_IMAGES_PER_SECOND.get((batch, "bf16")) if length == 64 else None
      yield dict(row, vs_torch=_ratio(row["images_per_s"], torch),
                 h100_anchor_torch=None if context.small else anchor)


def speculative(context: Context) -> Iterator[dict]:
  """Plain AR, lossless speculative (chain) and tree speculative decoding at batch 1 and 16, with `speculative.py`'s
  models and data (its target and draft trained briefly first: 150 steps, 10 when small)."""
  config = dict(speculative_bench.SMALL if context.small else speculative_bench.FULL)
  tokens, labels = speculative_bench.synthetic_tokens(config["vocab"], config["length"], config["classes"], 4096)
  steps = 10 if context.small else 150
  models, losses = {}, {}
  for role, seed in (("target", 0), ("draft", 1)):
    model = speculative_bench.build(config, config[role])
    variables, losses[f"{role}_loss"] = speculative_bench.train(model, tokens, labels, steps, config["batch"],
                                                                seed=seed)
    models[role] = autoregressive.as_logits_fn(model, variables)
  target, draft, length = models["target"], models["draft"], config["length"]
  samplers = {
      "plain AR": functools.partial(ar_sampling.sample, target, sequence_length=length),
      f"lossless gamma={config['gamma']}": functools.partial(
          decoders_speculative.speculative_sample, target, draft, sequence_length=length, gamma=config["gamma"]),
      f"tree {len(config['tree']) - 1} nodes": functools.partial(
          tree_speculative.tree_sample, target, draft, sequence_length=length, parents=config["tree"]),
  }
  for batch in (1, 16):
    batch_labels = jnp.asarray(np.arange(batch) % config["classes"], jnp.int32)
    plain = None
    for name, sampler in samplers.items():
      seconds, output = speculative_bench.time_sampler(lambda key, labels: sampler(key, labels), batch_labels,
                                                       config["repeats"])
      tokens_per_s = batch * length / seconds
      plain = plain or tokens_per_s
      yield dict(batch=batch, sampler=name, tokens_per_s=tokens_per_s, ms=seconds * 1e3,
                 vs_plain_ar=tokens_per_s / plain, acceptance=output.acceptance_rate, per_call=output.tokens_per_call,
                 train_steps=steps, **losses)


def llamagen(context: Context) -> Iterator[dict]:
  """Every sampler on a converted LlamaGen GPT in LlamaGen's sample_c2i setting (`speculative.llamagen_rows`):
  `--llamagen=PATH` (with `--llamagen_draft` for the draft-model rows), else a tiny random one."""
  if context.llamagen == "random":
    (target, draft), _, _ = speculative_bench.random_llamagen("class")
  else:
    target = converted.load_converted(context.llamagen)
    draft = converted.load_converted(context.llamagen_draft) if context.llamagen_draft else None
  batches, repeats = ((1, 4), 1) if context.small else ((1, 16), 3)
  for row in speculative_bench.llamagen_rows(*target, draft=draft, setting="c2i", batches=batches, repeats=repeats):
    yield dict(row, checkpoint=context.llamagen)


def _ratio(value: float, reference: float | None) -> float | None:
  return value / reference if reference else None

