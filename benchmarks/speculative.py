"""Autoregressive decoding speed: plain AR vs lossless speculative (chain and tree), Speculative Jacobi and Grouped.

A target `CausalTokenTransformer` (12 layers, width 768) and a draft about 7x smaller (4 layers, width 512) are
trained briefly on token sequences: those of an `.npz` (`--tokens=path`, fields `tokens [n, L]` int, `labels [n]`
int, as the token pre-extraction writes) or structured synthetic ones (a class-conditional sparse Markov chain, so the
draft can learn it). Then, at batch 1 and 16, each sampler's median wall time over repeats (after a warm-up call that
compiles) gives tokens/s, next to acceptance rate, tokens per target call and a quality proxy: the target's mean
log-likelihood per token of the samples (exact samplers should match plain AR; lossy grouped decoding may not).

The issue's goal: >= 2x over plain AR for the lossless mode at batch 1 with a well-trained draft, on an H100/H200.
No PyTorch reference figure exists for AR decoding in ../shared/gpu, so none is printed.

`--llamagen=CHECKPOINT` runs the samplers on a LlamaGen GPT converted by `python -m jaxtok.convert` (`random` /
`random_t2i`: a tiny random-initialised c2i / t2i one, the path CI runs), sampling exactly LlamaGen's generate.py distribution
(`ar_sampling.llamagen_sampling`) in the setting `--setting` names (`LLAMAGEN_SETTINGS`: the sample_c2i.py demo,
or the t2i settings of the SJD and LANTERN repositories). It reports tokens/s, acceptance rate and step
compression (image tokens per batched target call, prefill included). Lossless and tree rows need
`--llamagen-draft` (another converted LlamaGen on the same VQ codes, e.g. GPT-B for GPT-L); t2i checkpoints need
`--t5-embeddings=captions.npz` (`captions [n, 120, 2048]` left-padded flan-t5-xl embeddings, zero at padding, and
`caption_masks [n, 120]`, as sample_t2i.py builds them). `llamagen_rows` is the function benchmarks/suite.py calls.

  python benchmarks/speculative.py            # full on GPU, small on CPU
  python benchmarks/speculative.py --small
  python benchmarks/speculative.py --tokens=/path/tokens.npz --train-steps=2000
  python benchmarks/speculative.py --llamagen=random
  python benchmarks/speculative.py --llamagen=c2i_L_256.npz --llamagen-draft=c2i_B_256.npz --setting=c2i
  python benchmarks/speculative.py --llamagen=t2i_XL_512.npz --t5-embeddings=captions.npz --setting=sjd_t2i
"""
import argparse
import functools
import statistics
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxtok.convert import converted
from jaxtok.decoders import ar_sampling
from jaxtok.decoders import autoregressive
from jaxtok.decoders import llamagen_gpt
from jaxtok.decoders import speculative
from jaxtok.decoders import tree_speculative

FULL = dict(vocab=4096, length=64, classes=10, target=(768, 12, 12), draft=(512, 4, 8), steps=300, batch=64,
            gamma=4, window=8, tree=(-1, 0, 0, 1, 2, 3, 4, 5, 6), repeats=5, dtype="bfloat16")
SMALL = dict(vocab=32, length=16, classes=4, target=(32, 1, 2), draft=(8, 1, 1), steps=200, batch=64, gamma=3,
             window=4, tree=(-1, 0, 0, 1, 2), repeats=2, dtype="float32")
# generate.py arguments (ar_sampling.llamagen_sampling) and the Jacobi window of each LlamaGen setting.
LLAMAGEN_SETTINGS = {
    "c2i": dict(cfg_scale=4.0, top_k=2000, temperature=1.0, window=16),  # autoregressive/sample/sample_c2i.py
    "sjd_t2i": dict(cfg_scale=7.5, top_k=1000, temperature=1.0, window=16),  # SJD test_llamagen.py, t2i XL 512 px
    "lantern_t2i": dict(cfg_scale=3.0, top_k=2000, temperature=1.0, window=16),  # LANTERN generate_images.py
}
LLAMAGEN_TREE = (-1, 0, 0, 1, 2, 3, 4, 5, 6)  # two chains of 4 drafts

def synthetic_tokens(vocab, length, classes, count, seed=0):
  """Sequences of a class-conditional Markov chain where each token has 4 likely successors."""
  rng = np.random.default_rng(seed)
  successors = rng.integers(0, vocab, (classes, vocab, 4))
  labels = rng.integers(0, classes, count)
  tokens = np.zeros((count, length), np.int32)
  tokens[:, 0] = rng.integers(0, vocab, count)
  for position in range(1, length):
    choice = rng.choice(4, count, p=[0.55, 0.25, 0.15, 0.05])
    tokens[:, position] = successors[labels, tokens[:, position - 1], choice]
  return tokens, labels.astype(np.int32)


def build(config, size):
  width, depth, heads = size
  return autoregressive.CausalTokenTransformer(config["vocab"], config["length"], config["classes"], width=width,
                                               depth=depth, num_heads=heads, mlp_dim=4 * width, dtype=config["dtype"])


def train(model, tokens, labels, steps, batch, seed):
  """AdamW on next-token cross-entropy; returns the variables and the final loss."""
  variables = jax.jit(model.init)(jax.random.key(seed), jnp.asarray(tokens[:1]), jnp.asarray(labels[:1]))
  optimizer = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, 3e-3, max(steps // 10, 1), steps), weight_decay=0.01)
  state = optimizer.init(variables)

  @jax.jit
  def step(variables, state, key, tokens, labels):
    masking, dropout = jax.random.split(key)
    loss_fn = lambda v: model.apply(v, tokens, labels, method="loss", rngs={"masking": masking, "dropout": dropout})
    (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables)
    updates, state = optimizer.update(grads, state, variables)
    return optax.apply_updates(variables, updates), state, loss

  rng = np.random.default_rng(seed)
  loss = jnp.nan
  for index in range(steps):
    rows = rng.integers(0, len(tokens), batch)
    variables, state, loss = step(variables, state, jax.random.key(index), jnp.asarray(tokens[rows]),
                                  jnp.asarray(labels[rows]))
  return variables, float(loss)


def mean_log_likelihood(model, variables, tokens, labels) -> float:
  logits = jax.jit(model.apply)(variables, tokens, labels)
  return float(jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[..., None], -1)))


def time_sampler(run, labels, repeats):
  """Warm-up (compile), then the median wall time of `repeats` calls with fresh keys; returns (seconds, output)."""
  run(jax.random.key(0), labels)
  outputs = [run(jax.random.key(index + 1), labels) for index in range(repeats)]
  return statistics.median(output.wall_time for output in outputs), outputs[-1]


def llamagen_rows(target, target_variables, *, draft=None, captions=None, caption_masks=None, setting="c2i",
                  batches=(1, 16), repeats=3, gamma=4, tree=LLAMAGEN_TREE) -> Iterator[dict]:
  """Timed rows of every sampler on a LlamaGen GPT, sampling generate.py's distribution in `setting`, yielded one
  by one (each after its own compile), so a caller with a time budget can stop between them.

  Args:
    target, target_variables: a `LlamaGenGPT` and its variables (e.g. `converted.load_converted(path)`).
    draft: optional `(LlamaGenGPT, variables)` on the same tokens, for the lossless and tree rows.
    captions, caption_masks: `[n, T, caption_dim]`, `[n, T]` for a t2i model; example i uses caption i mod n.
    setting: a key of `LLAMAGEN_SETTINGS`.
    batches, repeats: batch sizes, and timed calls per sampler after a compiling warm-up.
    gamma, tree: lossless draft length and tree of the draft-model rows.

  Yields:
    dicts with batch, sampler, ms, tokens_per_s, acceptance and step_compression (image tokens per target call).
  """
  options = dict(LLAMAGEN_SETTINGS[setting])
  window = options.pop("window")

  def sampling_model(model, variables):
    if model.condition == "class":
      return ar_sampling.llamagen_sampling(llamagen_gpt.as_token_model(model, variables), null_class=model.num_classes,
                                           **options)
    return ar_sampling.llamagen_sampling(llamagen_gpt.as_token_model(model, variables, captions, caption_masks),
                                         null_class=ar_sampling.PairedNull(len(captions)), **options)

  length = target.sequence_length
  target_model = sampling_model(target, target_variables)
  samplers = {
      "plain AR": functools.partial(ar_sampling.sample, target_model, sequence_length=length),
      f"jacobi window={window}": functools.partial(speculative.jacobi_sample, target_model, sequence_length=length,
                                                   window=window),
      f"grouped nucleus=0.8 w={window}": functools.partial(
          speculative.grouped_sample, target_model, sequence_length=length, window=window,
          group_rule=speculative.NucleusGroup(0.8)),
  }
  if draft is not None:
    draft_model = sampling_model(*draft)
    samplers[f"lossless gamma={gamma}"] = functools.partial(speculative.speculative_sample, target_model, draft_model,
                                                            sequence_length=length, gamma=gamma)
    samplers[f"tree {len(tree) - 1} nodes"] = functools.partial(tree_speculative.tree_sample, target_model,
                                                                draft_model, sequence_length=length, parents=tree)
  conditions = target.num_classes if target.condition == "class" else len(captions)
  for batch in batches:
    labels = jnp.asarray(np.arange(batch) % conditions, jnp.int32)
    for name, sampler in samplers.items():
      seconds, output = time_sampler(lambda key, labels: sampler(key, labels), labels, repeats)
      row = dict(batch=batch, sampler=name, ms=seconds * 1e3, tokens_per_s=batch * length / seconds,
                 acceptance=output.acceptance_rate, step_compression=output.tokens_per_call)
      print(row, flush=True)
      yield row


def random_llamagen(condition: str = "class"):
  """Tiny random-initialised LlamaGen target and draft (the CI path of --llamagen=random / random_t2i), and for
  captions 3 random left-padded captions with their masks (else None, None)."""
  shared = dict(vocab_size=64, sequence_length=16, num_classes=10, multiple_of=32, condition=condition,
                caption_dim=8, num_condition_tokens=1 if condition == "class" else 6)
  captions = masks = None
  if condition == "caption":
    masks = np.arange(6)[None] >= np.asarray([[0], [2], [5]])  # 6, 4 and 1 real tokens
    captions = np.random.default_rng(0).normal(size=(3, 6, 8)).astype(np.float32) * masks[..., None]
  models = []
  for seed, size in ((0, dict(width=64, depth=2, num_heads=4)), (1, dict(width=16, depth=1, num_heads=2))):
    model = llamagen_gpt.LlamaGenGPT(**shared, **size)
    condition_input = jnp.zeros((1,), jnp.int32) if captions is None else jnp.asarray(captions[:1])
    models.append((model, jax.jit(model.init)(jax.random.key(seed), jnp.zeros((1, 16), jnp.int32), condition_input)))
  return models, captions, masks


def llamagen_main(args):
  captions = masks = None
  if args.llamagen in ("random", "random_t2i"):
    (target, draft), captions, masks = random_llamagen("class" if args.llamagen == "random" else "caption")
  else:
    target = converted.load_converted(args.llamagen)
    draft = converted.load_converted(args.llamagen_draft) if args.llamagen_draft else None
  if args.t5_embeddings:
    with np.load(args.t5_embeddings) as data:
      captions, masks = data["captions"].astype(np.float32), data["caption_masks"].astype(bool)
  if target[0].condition == "caption" and captions is None:
    raise SystemExit("a t2i checkpoint needs --t5-embeddings=captions.npz (captions, caption_masks).")
  print(f"devices: {jax.devices()}  jax {jax.__version__}  LlamaGen {args.llamagen}, setting {args.setting} "
        f"{LLAMAGEN_SETTINGS[args.setting]}", flush=True)
  rows = list(llamagen_rows(*target, draft=draft, captions=captions, caption_masks=masks, setting=args.setting,
                            repeats=args.repeats))
  print(f"\n{'batch':>5} {'sampler':28} {'ms':>9} {'tokens/s':>10} {'vs AR':>6} {'accept':>7} {'compress':>8}")
  for row in rows:
    plain = next(r for r in rows if r["batch"] == row["batch"] and r["sampler"] == "plain AR")
    print(f"{row['batch']:>5} {row['sampler']:28} {row['ms']:9.2f} {row['tokens_per_s']:10.1f} "
          f"{row['tokens_per_s'] / plain['tokens_per_s']:5.2f}x {row['acceptance']:7.3f} "
          f"{row['step_compression']:8.2f}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--small", action="store_true", help="tiny models (the default off GPU)")
  parser.add_argument("--tokens", default="", help=".npz with tokens [n, L] and labels [n]")
  parser.add_argument("--train-steps", type=int, default=0, help="training steps per model (0: the preset's)")
  parser.add_argument("--llamagen", default="", help="a converted LlamaGen GPT (.npz), 'random' or 'random_t2i'")
  parser.add_argument("--llamagen-draft", default="", help="a converted LlamaGen GPT as draft (lossless, tree)")
  parser.add_argument("--t5-embeddings", default="", help=".npz with captions and caption_masks (t2i)")
  parser.add_argument("--setting", default="c2i", choices=sorted(LLAMAGEN_SETTINGS))
  parser.add_argument("--repeats", type=int, default=3, help="timed calls per LlamaGen sampler")
  args = parser.parse_args()
  if args.llamagen:
    llamagen_main(args)
    return
  config = dict(SMALL if args.small or jax.default_backend() != "gpu" else FULL)
  if args.tokens:
    data = np.load(args.tokens)
    tokens, labels = data["tokens"].astype(np.int32), data["labels"].astype(np.int32)
    config.update(vocab=int(tokens.max()) + 1, length=tokens.shape[1], classes=int(labels.max()) + 1)
  else:
    tokens, labels = synthetic_tokens(config["vocab"], config["length"], config["classes"], 4096)
  steps = args.train_steps or config["steps"]
  print(f"devices: {jax.devices()}  jax {jax.__version__}  config {config}", flush=True)
  target, draft = build(config, config["target"]), build(config, config["draft"])
  target_variables, target_loss = train(target, tokens, labels, steps, config["batch"], seed=0)
  draft_variables, draft_loss = train(draft, tokens, labels, steps, config["batch"], seed=1)
  count = lambda v: sum(x.size for x in jax.tree_util.tree_leaves(v))
  print(f"target {count(target_variables) / 1e6:.3f}M params, loss {target_loss:.3f}; draft "
        f"{count(draft_variables) / 1e6:.3f}M params, loss {draft_loss:.3f}", flush=True)
  target_model = autoregressive.as_logits_fn(target, target_variables)
  draft_model = autoregressive.as_logits_fn(draft, draft_variables)
  length = config["length"]
  samplers = {
      "plain AR": functools.partial(ar_sampling.sample, target_model, sequence_length=length),
      f"lossless gamma={config['gamma']}": functools.partial(speculative.speculative_sample, target_model, draft_model,
                                                             sequence_length=length, gamma=config["gamma"]),
      f"tree {len(config['tree']) - 1} nodes": functools.partial(
          tree_speculative.tree_sample, target_model, draft_model, sequence_length=length, parents=config["tree"]),
      f"jacobi window={config['window']}": functools.partial(speculative.jacobi_sample, target_model,
                                                             sequence_length=length, window=config["window"]),
      f"grouped nucleus=0.8 w={config['window']}": functools.partial(
          speculative.grouped_sample, target_model, sequence_length=length, window=config["window"],
          group_rule=speculative.NucleusGroup(0.8)),
  }
  rows = []
  for batch in (1, 16):
    batch_labels = jnp.asarray(np.arange(batch) % config["classes"], jnp.int32)
    for name, sampler in samplers.items():
      seconds, output = time_sampler(lambda key, labels: sampler(key, labels), batch_labels, config["repeats"])
      rows.append(dict(batch=batch, sampler=name, tokens_per_s=batch * length / seconds, ms=seconds * 1e3,
                       acceptance=output.acceptance_rate, per_call=output.tokens_per_call,
                       loglik=mean_log_likelihood(target, target_variables, output.tokens, batch_labels)))
      print(rows[-1], flush=True)
  print(f"\n{'batch':>5} {'sampler':28} {'ms':>9} {'tokens/s':>10} {'vs AR':>6} {'accept':>7} {'tok/call':>8} "
        f"{'loglik/tok':>10}")
  for row in rows:
    plain = next(r for r in rows if r["batch"] == row["batch"] and r["sampler"] == "plain AR")
    print(f"{row['batch']:>5} {row['sampler']:28} {row['ms']:9.2f} {row['tokens_per_s']:10.1f} "
          f"{row['tokens_per_s'] / plain['tokens_per_s']:5.2f}x {row['acceptance']:7.3f} {row['per_call']:8.2f} "
          f"{row['loglik']:10.3f}")


if __name__ == "__main__":
  main()
