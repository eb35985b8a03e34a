r"""Evaluates a trained checkpoint: for a tokenizer PSNR, SSIM, codebook usage, bits per image, rFID and the token
curve; for a generator the held-out loss, samples and the token statistic.

  python -m jaxtok.evaluate --workdir=workdirs/titok_photos_flex [--step=N] [--config.eval.num_images=1000] \
      [--config.eval.inception_weights_path=/path/to/inception_fid.npz]
  python -m jaxtok.evaluate --config=experiments/titok_photos.py:flex --workdir=workdirs/titok_photos_flex

Reads the checkpoint (default: the latest) from `<workdir>/checkpoints` with the config the workdir was trained with
(`<workdir>/config.json`; a `--config` given must match it outside the `eval` section and the run-control fields),
evaluates it with the config's `eval` section (EMA weights when `train.ema_decay` > 0), and writes
`<workdir>/eval_step<N>/`: metrics.json, the evaluation's grids (reconstructions.png or samples.png) and, for a
flexible-length tokenizer, token_curve.json / token_curve.png. The training logs are left untouched.
"""
import json
import pathlib
import sys

from absl import app
from absl import flags
from absl import logging
import flax.linen as nn
import jax

from jaxtok import cli
from jaxtok import config_validation
from jaxtok.train import images
from jaxtok.train import inference
from jaxtok.train import workdir_config

# What an evaluation may set differently from training.
MAY_DIFFER = workdir_config.RUN_CONTROL_FIELDS + ("eval",)


def evaluate_checkpoint(config, workdir: str | pathlib.Path, step: int | None = None) -> dict:
  """Evaluates checkpoint `step` (None: latest) of `workdir` with `config` (None: the recorded one); returns the
  metrics, also written to eval_step<N>/."""
  workdir = pathlib.Path(workdir)
  restored = inference.restore_for_inference(config, workdir, step, may_differ=MAY_DIFFER, purpose="evaluation")
  output_dir = workdir / f"eval_step{restored.step:07d}"
  with jax.set_mesh(restored.mesh), nn.logical_axis_rules(restored.rules):
    evaluation = restored.task.evaluate(restored.variables, restored.step, output_dir)
  results = {"step": restored.step, **evaluation.scalars}
  if jax.process_index() == 0:
    images.save_grids(output_dir, evaluation.grids)
    (output_dir / "metrics.json").write_text(json.dumps(results, indent=2))
  return {"output_dir": str(output_dir), **results}


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


def _define_flags(argv: list[str]) -> None:
  """Defines the command-line flags (only when run as a program, so importing this module defines none)."""
  cli.define_config_flag("Experiment config file the checkpoint was trained with.", argv, workdir_config.recorded)
  flags.DEFINE_string("workdir", None, "Training workdir holding checkpoints/.")
  flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the latest).")
  flags.mark_flags_as_required(["workdir"])


if __name__ == "__main__":
  _define_flags(sys.argv)
  app.run(main, flags_parser=cli.parse_flags)
