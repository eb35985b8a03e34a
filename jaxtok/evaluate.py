r"""Evaluates a trained tokenizer's checkpoint: PSNR, SSIM, codebook usage, bits per image, rFID, token curve.

  python -m jaxtok.evaluate --config=experiments/titok_photos.py:flex --workdir=workdirs/titok_photos_flex
  python -m jaxtok.evaluate --config=... --workdir=... --step=500 --config.eval.num_images=1000 \
      --config.eval.inception_weights_path=/path/to/inception_fid.npz

Reads the checkpoint (default: the latest) from `<workdir>/checkpoints`, evaluates it with the config's `eval`
section (EMA weights when `train.ema_decay` > 0), and writes `<workdir>/eval_step<N>/`: metrics.json,
reconstructions.png and, for a flexible-length model, token_curve.json / token_curve.png.
"""
import json
import pathlib
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from jaxtok import config_validation
from jaxtok import cli


def evaluate_checkpoint(config, workdir: str | pathlib.Path, step: int | None = None) -> dict:
  """Evaluates checkpoint `step` (None: latest) of `workdir`; returns the metrics, also written to eval_step<N>/."""
  import jax  # pylint: disable=g-import-not-at-top
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  from jaxtok.train import loop  # pylint: disable=g-import-not-at-top

  workdir = pathlib.Path(workdir)
  if not (workdir / "checkpoints").is_dir():
    raise config_validation.ConfigError(f"No checkpoints/ in {workdir}: train first with python -m jaxtok.main.")
  run = loop.Run(config, workdir, restore_step=step, write_logs=False)
  try:
    if run.start_step == 0:
      raise config_validation.ConfigError(f"No checkpoint in {workdir / 'checkpoints'}.")
    output_dir = workdir / f"eval_step{run.start_step:07d}"
    with jax.set_mesh(run.mesh), nn.logical_axis_rules(run.rules):
      results = run.evaluate(run.start_step, output_dir=output_dir)
  finally:
    run.close()
  if run.is_chief:
    (output_dir / "metrics.json").write_text(json.dumps({"step": run.start_step, **results}, indent=2))
  return {"step": run.start_step, "output_dir": str(output_dir), **results}


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  cli.quiet_library_info_logs()
  try:
    results = evaluate_checkpoint(flags.FLAGS.config, flags.FLAGS.workdir, flags.FLAGS.step)
  except config_validation.ConfigError as error:
    logging.error("%s", error)
    sys.exit(f"Error: {error}")
  shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}
  print(json.dumps(shown, indent=2))


def _define_flags() -> None:
  """Defines the command-line flags (only when run as a program, so importing this module defines none)."""
  config_flags.DEFINE_config_file("config", None, "Experiment config file the checkpoint was trained with.",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "Training workdir holding checkpoints/.")
  flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the latest).")
  flags.mark_flags_as_required(["config", "workdir"])


if __name__ == "__main__":
  _define_flags()
  app.run(main, flags_parser=cli.parse_flags)
