"""The generator job: train a class-conditional token generator (MaskGIT, Chang et al. 2022, "MaskGIT: Masked
Generative Image Transformer") on the tokens of a frozen tokenizer, with evaluation, samples, checkpoints and
resumption.

`train_generator(config, workdir)`:
1. encodes `tokens.num_train_images` training crops and `tokens.num_eval_images` held-out crops (same images, another
   seed) once with the tokenizer checkpoint into `<workdir>/tokens/{train,eval}.npz` (process 0; the others wait);
   existing files are reused. With `tokenizer.workdir = ""` the token files must already exist and nothing is decoded.
2. trains with AdamW + EMA on shuffled token batches (order from the seed; its position is checkpointed, so a resumed
   run is bitwise identical on CPU to an uninterrupted one), sharing the step loop, SIGTERM save, NaN stop and
   metrics log of the tokenizer runner (`jaxtok.train.control`).
3. evaluates at step 0 (the untrained model) and every `eval.every_steps`: the held-out masked-token loss and accuracy
   (EMA weights, no label smoothing or class dropout, fixed masking keys), `eval.samples_per_class` sequences per
   held-out class from the model's sampler (fixed key), and the token statistic `token_tv` (mean per-position total
   variation between sample and held-out token histograms, `jaxtok.metrics.token_statistics`) beside
   `token_tv_uniform` (uniform random tokens) and `token_tv_train_data` (as many training sequences: the
   finite-sample floor). Decoded samples go to `samples.png` and `images/samples_step<N>.png`, one row per class.
4. writes metrics.json (with `untrained_eval`, the step-0 evaluation) and curves.png.
"""
import json
import pathlib
from typing import Any

from absl import logging
import flax.linen as nn
import jax
from jax.experimental import multihost_utils
import numpy as np

from jaxtok import cli
from jaxtok import config_validation
from jaxtok import registry
from jaxtok import sharding
from jaxtok.data import tokens as tokens_lib
from jaxtok.metrics import token_statistics
from jaxtok.train import checkpoint
from jaxtok.train import control
from jaxtok.train import generator_config_fields
from jaxtok.train import generator_sampling
from jaxtok.train import generator_step
from jaxtok.train import images
from jaxtok.train import metrics_log
from jaxtok.train import optimizer as optimizer_lib
from jaxtok.train import state as state_lib


def _restore_tokenizer(config: Any):
  """The frozen tokenizer named by the config's `tokenizer` section, or None when `tokenizer.workdir` is ''."""
  from jaxtok.train import frozen_tokenizer  # pylint: disable=g-import-not-at-top

  if not config.tokenizer.workdir:
    return None
  tokenizer_config = cli.load_config_file(config.tokenizer.config)
  step = None if config.tokenizer.step < 0 else config.tokenizer.step
  return frozen_tokenizer.restore(tokenizer_config, config.tokenizer.workdir, step)


def prepare_tokens(config: Any, workdir: pathlib.Path,
                   tokenizer: Any) -> tuple[tokens_lib.TokenSet, tokens_lib.TokenSet]:
  """Loads `<workdir>/tokens/{train,eval}.npz`, extracting them first (on process 0, with the FrozenTokenizer
  `tokenizer`) when missing."""
  paths = {split: workdir / "tokens" / f"{split}.npz" for split in tokens_lib.SPLITS}
  counts = {"train": config.tokens.num_train_images, "eval": config.tokens.num_eval_images}
  seeds = {"train": config.seed, "eval": config.seed + 1}
  if jax.process_index() == 0:
    for split, path in paths.items():
      if path.exists():
        continue
      if tokenizer is None:
        raise config_validation.ConfigError(f"No token file {path} and no tokenizer to make it: set "
                                            "'tokenizer.workdir'.")
      logging.info("Encoding %d %s crops with the tokenizer in %s.", counts[split], split, config.tokenizer.workdir)
      tokens_lib.extract_tokens(tokenizer.config, config.tokenizer.workdir, split, counts[split], seeds[split], path,
                                batch_size=config.eval.batch_size, tokenizer=tokenizer)
  multihost_utils.sync_global_devices("jaxtok generator tokens ready")
  train, held_out = tokens_lib.load_tokens(paths["train"]), tokens_lib.load_tokens(paths["eval"])
  for split, token_set in (("train", train), ("eval", held_out)):
    if len(token_set.tokens) != counts[split]:
      raise config_validation.ConfigError(f"{paths[split]} holds {len(token_set.tokens)} sequences but "
                                          f"'tokens.num_{split}_images' = {counts[split]}; delete it to re-extract.")
  if held_out.tokens.shape[1:] != train.tokens.shape[1:] or held_out.codebook_size != train.codebook_size:
    raise config_validation.ConfigError(f"The eval tokens {held_out.tokens.shape} / {held_out.codebook_size} codes "
                                        f"do not match the train tokens {train.tokens.shape} / {train.codebook_size}.")
  return train, held_out


def _check_divisible(config: Any, batch_shards: int) -> None:
  for path, size in (("train.batch_size", config.train.batch_size), ("eval.batch_size", config.eval.batch_size)):
    for ways, what in ((batch_shards, "the mesh's data x fsdp devices"), (jax.process_count(), "the processes")):
      if size % ways:
        raise config_validation.ConfigError(f"Config field {path!r} = {size} must be divisible by {ways}, the "
                                            f"number of {what}.")


class GeneratorRun:
  """Everything one generator run holds; `train_generator` drives it and `jaxtok.sample` samples with it.

  It restores the checkpoint at `restore_step` (default: the latest in `workdir`, if any) on construction.
  `write_logs=False` leaves the workdir's history and TensorBoard files untouched.
  """

  def __init__(self, config: Any, workdir: pathlib.Path, restore_step: int | None = None, write_logs: bool = True):
    generator_config_fields.check_config(config)
    self.config, self.workdir = config, workdir
    self.mesh = sharding.make_mesh(config.mesh.ici_sizes, config.mesh.dcn_sizes)
    self.rules = sharding.logical_rules(config.mesh.rules_preset, config.mesh.extra_rules)
    self.is_chief = jax.process_index() == 0
    batch_shards = self.mesh.shape["data"] * self.mesh.shape["fsdp"]
    _check_divisible(config, batch_shards)
    self.tokenizer = _restore_tokenizer(config)  # before this run's mesh is entered; decodes every evaluation
    self.train_tokens, self.eval_tokens = prepare_tokens(config, workdir, self.tokenizer)
    fields = generator_config_fields.resolve_model_fields(config.model.to_dict(), self.train_tokens)
    self.model = registry.build_generator(config.model_name, fields)
    self.num_steps, self.batch_size = config.train.num_steps, config.train.batch_size
    self.train_iterator = tokens_lib.token_batches(
        self.train_tokens, batch_size=config.train.batch_size // jax.process_count(), seed=config.seed,
        shard_index=jax.process_index(), shard_count=jax.process_count())
    optimizer = optimizer_lib.make_optimizer(config.optimizer, self.num_steps)
    example = (np.zeros((batch_shards,) + self.train_tokens.tokens.shape[1:], np.int32),
               np.zeros((batch_shards,), np.int32))
    self.state, state_shardings = state_lib.create_train_state(self.model, optimizer, example, config.seed, self.mesh,
                                                               self.rules)
    train_options = generator_step.loss_options(self.model, schedule=config.train.mask_schedule,
                                                label_smoothing=config.train.label_smoothing,
                                                class_dropout=config.train.class_dropout)
    self.train_step = jax.jit(generator_step.make_train_step(
        self.model, optimizer, ema_decay=config.train.ema_decay, loss_kwargs=train_options,
        learning_rate_fn=optimizer_lib.learning_rate_schedule(config.optimizer, self.num_steps)),
        in_shardings=(state_shardings, sharding.batch_sharding(self.mesh)),
        out_shardings=(state_shardings, sharding.replicated(self.mesh)), donate_argnums=0)
    self.eval_step = generator_step.make_eval_step(self.model, generator_step.loss_options(
        self.model, schedule=config.train.mask_schedule, label_smoothing=0.0, class_dropout=0.0))
    self.sampling = generator_sampling.SamplingSettings.from_config(config.sampling)
    self.sample_fn = generator_sampling.make_sample_fn(config.model_name, self.model, self.sampling)
    self.checkpointer = checkpoint.Checkpointer(workdir / "checkpoints", keep=config.checkpoint.keep)
    self.state, self.start_step = checkpoint.restore_if_saved(self.checkpointer, restore_step, self.state,
                                                              self.train_iterator)
    self.log = metrics_log.MetricsLog(workdir, self.start_step, write_files=self.is_chief and write_logs)

  @property
  def eval_variables(self) -> dict[str, Any]:
    params = self.state.ema_params if self.config.train.ema_decay > 0 else self.state.params
    return {"params": params, **self.state.model_state}

  @property
  def sample_classes(self) -> np.ndarray:
    """The classes of the held-out tokens, sorted: one row of samples each."""
    return np.unique(self.eval_tokens.labels)

  def held_out_loss(self) -> tuple[float, float]:
    """(loss, accuracy) of the evaluation weights on the held-out tokens with the fixed masking keys."""
    size, variables = self.config.eval.batch_size, self.eval_variables
    results = []
    for index in range(len(self.eval_tokens.tokens) // size):
      part = slice(index * size, (index + 1) * size)
      results.append(self.eval_step(variables["params"], self.state.model_state, self.eval_tokens.tokens[part],
                                    self.eval_tokens.labels[part], generator_step.eval_key(self.config.seed, index)))
    return generator_step.mean_over_batches(results)

  def sample(self, key: jax.Array, class_labels: np.ndarray) -> np.ndarray:
    """Token sequences `[b, L(, C)]` int32 sampled for `class_labels` `[b]` with the evaluation weights."""
    return np.asarray(self.sample_fn(self.eval_variables, key, np.asarray(class_labels, np.int32)).tokens)

  def token_statistics(self, samples: np.ndarray) -> dict[str, float]:
    """The token statistic of `samples` and of its uniform-token and training-data references (same count)."""
    vocab, reference, count = self.train_tokens.codebook_size, self.eval_tokens.tokens, len(samples)
    rng = np.random.default_rng(self.config.seed)
    train_subset = self.train_tokens.tokens[rng.choice(len(self.train_tokens.tokens), count, replace=False)]
    uniform = token_statistics.uniform_tokens(rng, samples.shape, vocab)
    return {"token_tv": token_statistics.mean_position_tv(samples, reference, vocab),
            "token_tv_uniform": token_statistics.mean_position_tv(uniform, reference, vocab),
            "token_tv_train_data": token_statistics.mean_position_tv(train_subset, reference, vocab)}

  def evaluate(self, step: int) -> dict[str, float]:
    """Held-out loss, samples and token statistics of the current state; writes the sample grid when decodable."""
    loss, accuracy = self.held_out_loss()
    classes = self.sample_classes
    class_labels = np.repeat(classes, self.config.eval.samples_per_class)
    samples = self.sample(jax.random.PRNGKey(self.config.seed + 2), class_labels)
    results = {"loss": loss, "accuracy": accuracy, **self.token_statistics(samples)}
    self.log.write("eval", step, results)
    if self.tokenizer is not None and self.is_chief:
      decoded = self.tokenizer.decode(samples)
      decoded = decoded.reshape(len(classes), self.config.eval.samples_per_class, *decoded.shape[1:])
      (self.workdir / "images").mkdir(exist_ok=True)
      images.save_class_grid(self.workdir / "images" / f"samples_step{step:07d}.png", decoded)
      images.save_class_grid(self.workdir / "samples.png", decoded)
    logging.info("Eval at step %d: %s", step, json.dumps({k: round(v, 4) for k, v in results.items()}))
    return results

  def save(self, step: int) -> None:
    self.checkpointer.save(step, self.state, self.train_iterator)

  def close(self) -> None:
    self.checkpointer.wait()
    self.checkpointer.close()
    self.log.close()


def train_generator(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains `config`'s generator in `workdir` (resuming if possible); returns the summary written to metrics.json."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  run = GeneratorRun(config, workdir)
  if run.start_step == 0:
    with jax.set_mesh(run.mesh), nn.logical_axis_rules(run.rules):
      run.evaluate(0)
  step, eval_results, train_seconds = control.train_until_done(run)
  return _write_summary(run, step, eval_results, train_seconds)


def _write_summary(run: GeneratorRun, step: int, eval_results: dict[str, float],
                   train_seconds: float) -> dict[str, Any]:
  steps_run = step - run.start_step
  evals = run.log.history["eval"]
  summary = {
      "step": step, "completed": step >= run.num_steps, "resumed_from_step": run.start_step,
      "final_eval": eval_results or (evals[-1] if evals else {}),
      "untrained_eval": next((entry for entry in evals if entry["step"] == 0), {}),
      "train_steps_per_second": (steps_run - 1) / train_seconds if train_seconds else None,
      "train_sequences_per_second": (steps_run - 1) * run.batch_size / train_seconds if train_seconds else None,
      "model": {name: getattr(run.model, name) for name in ("vocab_size", "sequence_length", "num_classes")},
      "tokens": {"train": len(run.train_tokens.tokens), "eval": len(run.eval_tokens.tokens),
                 "codebook_size": run.train_tokens.codebook_size, "grid_shape": list(run.train_tokens.grid_shape),
                 "tokenizer_workdir": run.train_tokens.tokenizer_workdir,
                 "tokenizer_step": run.train_tokens.tokenizer_step},
      "eval_history": evals,
      "config": run.config.to_dict() if hasattr(run.config, "to_dict") else dict(run.config),
  }
  if run.is_chief:
    (run.workdir / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
    if run.log.history["train"] and evals:
      images.save_generator_curves(run.workdir / "curves.png", run.log.history["train"], evals)
  return summary
