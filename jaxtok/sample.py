r"""Samples a trained generator (MaskGIT, Chang et al. 2022, or autoregressive) and decodes the samples with its
tokenizer.

  python -m jaxtok.sample --workdir=workdirs/maskgit_photos
  python -m jaxtok.sample --workdir=... --step=400 --samples_per_class=4 --classes=0,3 \
      --config.sampling.temperature=0.8 --config.sampling.guidance_scale=2

Restores the checkpoint (default: the latest; EMA weights when `train.ema_decay` > 0) with the config the workdir was
trained with (`--config`, if given, must match it outside `sampling`, `eval` and the run-control fields), samples
with the config's `sampling` section, and writes `<workdir>/samples_step<N>[_<what differs>]/`, named by every
argument that differs from the defaults (classes, samples per class, seed, sampling fields), so no call overwrites
another's:
- samples.png: one row per class, labelled with the class name: three held-out sequences of the class decoded (real
  crops through the tokenizer), a blank cell, then `--samples_per_class` decoded samples;
- trajectory.png (masked generators): one row per class (its first sample), one column per sampling step: the image
  decoded from the step's tokens with every still-masked position filled by the model's most likely token given that
  step's tokens (the prediction the sampler would draw from, at temperature 0), so early columns show what the model
  expects;
- samples.npz: `tokens` `[classes * n, L(, C)]`, `labels`, and for masked generators `trajectory`
  `[steps, classes * n, L(, C)]` (mask id where masked) and `filled_trajectory` (the filled tokens of trajectory.png's
  rows);
- call.json: the arguments, the sampling settings and the token statistic.
Classes the generator never trained on are refused (their embeddings are untrained).
"""
import hashlib
import json
import pathlib
import sys

from absl import app
from absl import flags
from absl import logging
import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxtok import cli
from jaxtok import config_validation
from jaxtok.train import images
from jaxtok.train import inference
from jaxtok.train import workdir_config

# What sampling may set differently from training.
MAY_DIFFER = workdir_config.RUN_CONTROL_FIELDS + ("sampling", "eval")
DEFAULT_SAMPLES_PER_CLASS = 8


def fill_masked_with_predictions(model, variables, trajectory, class_labels):
  """Trajectory tokens `[steps, b, L(, C)]` with masked units replaced by the model's argmax given that step's tokens.

  For a masked generator (mask id `model.mask_id`); one batched forward pass over all steps.
  """
  steps = trajectory.shape[0]
  flat = einops.rearrange(trajectory, "s b ... -> (s b) ...")
  labels = jnp.tile(class_labels, steps)
  predictions = jnp.argmax(model.apply(variables, flat, labels), axis=-1).astype(flat.dtype)
  filled = jnp.where(flat == model.mask_id, predictions, flat)
  return einops.rearrange(filled, "(s b) ... -> s b ...", s=steps)


def output_name(step: int, changes: dict[str, object]) -> str:
  """`samples_step<N>` followed by each changed argument (`_classes0-2_n3_temperature0.8`), or by a hash of them
  when that would be long."""
  suffix = "".join(f"_{name}{value}" for name, value in changes.items())
  if len(suffix) > 60:
    suffix = "_" + hashlib.sha1(json.dumps(changes, sort_keys=True).encode()).hexdigest()[:12]
  return f"samples_step{step:07d}{suffix}"


def _check_classes(classes: np.ndarray, task) -> None:
  """Refuses classes outside the model's range or absent from the generator's training tokens."""
  if classes.min() < 0 or classes.max() >= task.model.num_classes:
    raise config_validation.ConfigError(f"--classes must lie in [0, {task.model.num_classes}), got "
                                        f"{classes.tolist()}.")
  unseen = sorted(set(classes.tolist()) - set(task.trained_classes.tolist()))
  if unseen:
    trained = ", ".join(task.class_label(int(c)) for c in task.trained_classes)
    raise config_validation.ConfigError(f"--classes {unseen} never appear in the generator's training tokens (their "
                                        f"class embeddings are untrained); it was trained on: {trained}.")


def sample_checkpoint(config, workdir: str | pathlib.Path, step: int | None = None,
                      samples_per_class: int = DEFAULT_SAMPLES_PER_CLASS, classes: list[int] | None = None,
                      seed: int = 0) -> dict:
  """Samples checkpoint `step` (None: latest) of `workdir` with `config` (None: the recorded one); returns a summary,
  writes the output folder."""
  workdir = pathlib.Path(workdir)
  if samples_per_class < 1:
    raise config_validation.ConfigError(f"--samples_per_class must be positive, got {samples_per_class}.")
  restored = inference.restore_for_inference(config, workdir, step, may_differ=MAY_DIFFER, purpose="sampling")
  task, model, variables = restored.task, restored.model, restored.variables
  default_classes = task.held_out_classes
  classes = np.asarray(default_classes if classes is None else classes, np.int32)
  _check_classes(classes, task)
  labels = np.repeat(classes, samples_per_class)
  with jax.set_mesh(restored.mesh), nn.logical_axis_rules(restored.rules):
    output = task.sample(variables, jax.random.PRNGKey(seed), labels, return_trajectory=True)
    arrays = {"tokens": np.asarray(output.tokens), "labels": labels}
    if output.trajectory is not None:  # masked generators
      firsts = np.arange(len(classes)) * samples_per_class
      filled = jax.jit(fill_masked_with_predictions, static_argnums=0)(
          model, variables, output.trajectory[:, firsts], labels[firsts])
      arrays.update(trajectory=np.asarray(output.trajectory), filled_trajectory=np.asarray(filled))
  recorded_sampling = (workdir_config.recorded(workdir) or restored.config).sampling
  changes = {"classes": "-".join(map(str, classes.tolist())) if not np.array_equal(classes, default_classes) else None,
             "n": samples_per_class if samples_per_class != DEFAULT_SAMPLES_PER_CLASS else None,
             "seed": seed or None,
             **{name: value for name, value in restored.config.sampling.items() if value != recorded_sampling[name]}}
  changes = {name: value for name, value in changes.items() if value is not None}
  output_dir = workdir / output_name(restored.step, changes)
  statistics = task.token_statistics(arrays["tokens"], arrays["labels"])
  if jax.process_index() == 0:
    _write_outputs(output_dir, task, classes, arrays)
    (output_dir / "call.json").write_text(json.dumps(
        {"step": restored.step, "classes": classes.tolist(), "samples_per_class": samples_per_class, "seed": seed,
         "sampling": restored.config.sampling.to_dict(), **statistics}, indent=2))
  return {"step": restored.step, "output_dir": str(output_dir), "classes": classes.tolist(),
          "samples": len(arrays["tokens"]), **statistics}


def _write_outputs(output_dir: pathlib.Path, task, classes: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
  output_dir.mkdir(parents=True, exist_ok=True)
  np.savez(output_dir / "samples.npz", **arrays)
  if task.tokenizer is None:
    return
  grids = {"samples": task.sample_grid(arrays["tokens"], classes)}
  if "filled_trajectory" in arrays:
    filled = arrays["filled_trajectory"]
    strip = task.tokenizer.decode(filled.reshape(-1, *filled.shape[2:]))
    strip = strip.reshape(filled.shape[0], len(classes), *strip.shape[1:]).swapaxes(0, 1)
    grids["trajectory"] = images.class_grid(strip, [task.class_label(int(c)) for c in classes])
  images.save_grids(output_dir, grids)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  cli.quiet_library_info_logs()
  classes = [int(c) for c in flags.FLAGS.classes] if flags.FLAGS.classes else None
  try:
    summary = sample_checkpoint(flags.FLAGS.config, flags.FLAGS.workdir, flags.FLAGS.step,
                                flags.FLAGS.samples_per_class, classes, flags.FLAGS.seed)
  except config_validation.ConfigError as error:
    logging.error("%s", error)
    sys.exit(f"Error: {error}")
  print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}, indent=2))


def _define_flags(argv: list[str]) -> None:
  """Defines the command-line flags (only when run as a program, so importing this module defines none)."""
  cli.define_config_flag("Generator experiment config the checkpoint was trained with.", argv,
                         workdir_config.recorded)
  flags.DEFINE_string("workdir", None, "Generator workdir holding checkpoints/ and tokens/.")
  flags.DEFINE_integer("step", None, "Checkpoint step to sample (default: the latest).")
  flags.DEFINE_integer("samples_per_class", DEFAULT_SAMPLES_PER_CLASS, "Samples per class.")
  flags.DEFINE_list("classes", None, "Classes to sample (default: those of the held-out tokens).")
  flags.DEFINE_integer("seed", 0, "Seed of the sampling key.")
  flags.mark_flags_as_required(["workdir"])


if __name__ == "__main__":
  _define_flags(sys.argv)
  app.run(main, flags_parser=cli.parse_flags)
