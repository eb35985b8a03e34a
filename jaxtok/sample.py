r"""Samples a trained generator (MaskGIT, Chang et al. 2022, or autoregressive) and decodes the samples with its
tokenizer.

  python -m jaxtok.sample --config=experiments/maskgit_photos.py --workdir=workdirs/maskgit_photos
  python -m jaxtok.sample --config=... --workdir=... --step=400 --samples_per_class=4 --classes=0,3 \
      --config.sampling.temperature=0.8 --config.sampling.guidance_scale=2

Restores the checkpoint (default: the latest; EMA weights when `train.ema_decay` > 0), samples with the config's
`sampling` section, and writes `<workdir>/samples_step<N>/`:
- samples.png: one row per class, `--samples_per_class` decoded samples each;
- trajectory.png (masked generators): one row per class (its first sample), one column per sampling step: the image decoded from the
  step's tokens with every still-masked position filled by the model's most likely token given that step's tokens
  (the prediction the sampler would draw from, at temperature 0), so early columns show what the model expects;
- samples.npz: `tokens` `[classes * n, L(, C)]`, `labels`, and for masked generators `trajectory` `[steps, classes * n, L(, C)]` (mask id where
  masked) and `filled_trajectory` (the filled tokens of trajectory.png's rows).
"""
import json
import pathlib
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from jaxtok import cli
from jaxtok import config_validation


def fill_masked_with_predictions(model, variables, trajectory, class_labels):
  """Trajectory tokens `[steps, b, L(, C)]` with masked units replaced by the model's argmax given that step's tokens.

  For a masked generator (mask id `model.mask_id`); one batched forward pass over all steps.
  """
  import einops  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  steps = trajectory.shape[0]
  flat = einops.rearrange(trajectory, "s b ... -> (s b) ...")
  labels = jnp.tile(class_labels, steps)
  predictions = jnp.argmax(model.apply(variables, flat, labels), axis=-1).astype(flat.dtype)
  filled = jnp.where(flat == model.mask_id, predictions, flat)
  return einops.rearrange(filled, "(s b) ... -> s b ...", s=steps)


def sample_checkpoint(config, workdir: str | pathlib.Path, step: int | None = None, samples_per_class: int = 8,
                      classes: list[int] | None = None, seed: int = 0) -> dict:
  """Samples checkpoint `step` (None: latest) of `workdir`; returns a summary, writes samples_step<N>/."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxtok.train import generator_loop  # pylint: disable=g-import-not-at-top
  from jaxtok.train import generator_sampling  # pylint: disable=g-import-not-at-top
  from jaxtok.train import images  # pylint: disable=g-import-not-at-top

  workdir = pathlib.Path(workdir)
  if not (workdir / "checkpoints").is_dir():
    raise config_validation.ConfigError(f"No checkpoints/ in {workdir}: train first with python -m jaxtok.main.")
  if samples_per_class < 1:
    raise config_validation.ConfigError(f"--samples_per_class must be positive, got {samples_per_class}.")
  run = generator_loop.GeneratorRun(config, workdir, restore_step=step, write_logs=False)
  run.close()
  if run.start_step == 0:
    raise config_validation.ConfigError(f"No checkpoint in {workdir / 'checkpoints'}.")
  classes = np.asarray(run.sample_classes if classes is None else classes, np.int32)
  if classes.min() < 0 or classes.max() >= run.model.num_classes:
    raise config_validation.ConfigError(f"--classes must lie in [0, {run.model.num_classes}), got {classes.tolist()}.")
  labels = np.repeat(classes, samples_per_class)
  sample_fn = generator_sampling.make_sample_fn(config.model_name, run.model, run.sampling, return_trajectory=True)
  with jax.set_mesh(run.mesh), nn.logical_axis_rules(run.rules):
    output = sample_fn(run.eval_variables, jax.random.PRNGKey(seed), labels)
    arrays = {"tokens": np.asarray(output.tokens), "labels": labels}
    if output.trajectory is not None:  # masked generators
      firsts = np.arange(len(classes)) * samples_per_class
      filled = jax.jit(fill_masked_with_predictions, static_argnums=0)(
          run.model, run.eval_variables, output.trajectory[:, firsts], labels[firsts])
      arrays.update(trajectory=np.asarray(output.trajectory), filled_trajectory=np.asarray(filled))
  tokens = arrays["tokens"]
  output_dir = workdir / f"samples_step{run.start_step:07d}"
  output_dir.mkdir(parents=True, exist_ok=True)
  np.savez(output_dir / "samples.npz", **arrays)
  if run.tokenizer is not None:
    decoded = run.tokenizer.decode(tokens)
    images.save_class_grid(output_dir / "samples.png",
                           decoded.reshape(len(classes), samples_per_class, *decoded.shape[1:]))
  if run.tokenizer is not None and "filled_trajectory" in arrays:
    filled = arrays["filled_trajectory"]
    strip = run.tokenizer.decode(filled.reshape(-1, *filled.shape[2:]))
    strip = strip.reshape(filled.shape[0], len(classes), *strip.shape[1:]).swapaxes(0, 1)
    images.save_class_grid(output_dir / "trajectory.png", strip)
  return {"step": run.start_step, "output_dir": str(output_dir), "classes": classes.tolist(),
          "samples": len(tokens), **run.token_statistics(tokens)}


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  cli.quiet_library_info_logs()
  classes = [int(c) for c in flags.FLAGS.classes] if flags.FLAGS.classes else None
  try:
    summary = sample_checkpoint(flags.FLAGS.config, flags.FLAGS.workdir, flags.FLAGS.step, flags.FLAGS.samples_per_class, classes,
                                flags.FLAGS.seed)
  except config_validation.ConfigError as error:
    logging.error("%s", error)
    sys.exit(f"Error: {error}")
  print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}, indent=2))


def _define_flags() -> None:
  """Defines the command-line flags (only when run as a program, so importing this module defines none)."""
  config_flags.DEFINE_config_file("config", None, "Generator experiment config the checkpoint was trained "
                                  "with.", lock_config=True)
  flags.DEFINE_string("workdir", None, "Generator workdir holding checkpoints/ and tokens/.")
  flags.DEFINE_integer("step", None, "Checkpoint step to sample (default: the latest).")
  flags.DEFINE_integer("samples_per_class", 8, "Samples per class.")
  flags.DEFINE_list("classes", None, "Classes to sample (default: those of the held-out tokens).")
  flags.DEFINE_integer("seed", 0, "Seed of the sampling key.")
  flags.mark_flags_as_required(["config", "workdir"])


if __name__ == "__main__":
  _define_flags()
  app.run(main, flags_parser=cli.parse_flags)
