"""The main job: train a quantized autoencoder from a config, with evaluation, checkpoints and resumption.

`train_and_evaluate(config, workdir)` resumes from the latest checkpoint in `workdir` if there is one, so rerunning
the same command after a kill or preemption continues the run; the resumed run is bitwise identical on CPU to one
that was never interrupted (the state holds every random key, and the data iterator position is checkpointed).
SIGTERM (a Cloud TPU preemption notice) makes the loop save a checkpoint at the current step and return. A loss that
becomes NaN or infinite stops the run with NonFiniteLossError before any checkpoint of the bad state is written.
"""
import json
import pathlib
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np

from jaxtok import config_validation
from jaxtok import data
from jaxtok import registry
from jaxtok import sharding
from jaxtok.losses import settings as loss_settings
from jaxtok.metrics import token_curve
from jaxtok.train import checkpoint
from jaxtok.train import config_fields
from jaxtok.train import control
from jaxtok.train import evaluation
from jaxtok.train import images
from jaxtok.train import metrics_log
from jaxtok.train import optimizer as optimizer_lib
from jaxtok.train import state as state_lib
from jaxtok.train import step as step_lib

NonFiniteLossError = control.NonFiniteLossError  # raised by train_and_evaluate; caught by jaxtok.main


class Run:
  """Everything one training run holds; `train_and_evaluate` drives it and `jaxtok.evaluate` evaluates with it.

  It restores the checkpoint at `restore_step` (default: the latest in `workdir`, if any) on construction.
  `write_logs=False` leaves the workdir's training history and TensorBoard files untouched (evaluation only).
  """

  def __init__(self, config: Any, workdir: pathlib.Path, restore_step: int | None = None, write_logs: bool = True):
    config_fields.check_config(config)
    self.config, self.workdir = config, workdir
    self.model = registry.build_model(config.model_name, config.model)
    self.num_steps, self.batch_size = config.train.num_steps, config.data.batch_size
    self.mesh = sharding.make_mesh(config.mesh.ici_sizes, config.mesh.dcn_sizes)
    self.rules = sharding.logical_rules(config.mesh.rules_preset, config.mesh.extra_rules)
    self.is_chief = jax.process_index() == 0
    batch_shards = self.mesh.shape["data"] * self.mesh.shape["fsdp"]
    _check_divisible(config, batch_shards)
    crop = data.crop_options(config.data)
    self.train_source = data.make_source(config.data.source, config.data.train_location, config.data.train_split)
    self.eval_source = data.make_source(config.data.source, config.data.eval_location, config.data.eval_split)
    self.train_iterator = iter(data.train_dataset(
        self.train_source, crop, batch_size=config.data.batch_size // jax.process_count(), seed=config.seed,
        shard_index=jax.process_index(), shard_count=jax.process_count(), worker_count=config.data.worker_count))
    self.eval_dataset = data.eval_dataset(self.eval_source, crop, num_images=config.eval.num_images,
                                          batch_size=config.eval.batch_size, seed=config.eval.seed,
                                          crop=config.eval.crop)
    learning_rate_fn = optimizer_lib.learning_rate_schedule(config.optimizer, self.num_steps)
    optimizer = optimizer_lib.make_optimizer(config.optimizer, self.num_steps)
    example = np.zeros((batch_shards, crop.image_size, crop.image_size, 3), np.float32)
    losses = loss_settings.from_config(config.losses)
    self.state, state_shardings = state_lib.create_train_state(self.model, optimizer, example, config.seed,
                                                               self.mesh, self.rules, discriminator=losses.discriminator)
    batch_sharding, replicated = sharding.batch_sharding(self.mesh), sharding.replicated(self.mesh)
    self.train_step = jax.jit(step_lib.make_train_step(
        self.model, optimizer, loss_kind=config.train.reconstruction_loss, ema_decay=config.train.ema_decay,
        learning_rate_fn=learning_rate_fn, losses=losses), in_shardings=(state_shardings, batch_sharding),
        out_shardings=(state_shardings, replicated), donate_argnums=0)
    self.reconstruct_fn = _sharded_reconstruct_fn(evaluation.make_reconstruct_fn(self.model), self.mesh,
                                                  config.eval.batch_size)
    self.feature_fn = (evaluation.make_inception_feature_fn(config.eval.inception_weights_path)
                       if config.eval.inception_weights_path else None)
    self.checkpointer = checkpoint.Checkpointer(workdir / "checkpoints", keep=config.checkpoint.keep)
    self.start_step = self._restore(restore_step)
    self.log = metrics_log.MetricsLog(workdir, self.start_step, write_files=self.is_chief and write_logs)

  def _restore(self, step: int | None) -> int:
    """Restores checkpoint `step` (None: the latest, if any); returns the step restored, 0 for none."""
    self.state, step = checkpoint.restore_if_saved(self.checkpointer, step, self.state, self.train_iterator)
    return step

  @property
  def eval_params(self) -> Any:
    return self.state.ema_params if self.config.train.ema_decay > 0 else self.state.params

  def evaluate(self, step: int, output_dir: pathlib.Path | None = None) -> dict[str, float]:
    """Evaluates the current state; writes PNG grids (and the token curve of a flexible model) into `output_dir`.

    `output_dir` defaults to the workdir, where each evaluation also keeps its grid under images/.
    """
    results, originals, reconstructions = evaluation.evaluate(
        self.reconstruct_fn, self.eval_params, self.state.model_state, self.eval_dataset,
        getattr(self.model, "codebook_size", None), self.config.eval.grid_images, self.feature_fn)
    if hasattr(self.model, "bits_per_image"):
      results["bits_per_image"] = float(self.model.bits_per_image(self.config.data.image_size))
    if results["num_images"] < self.config.eval.num_images:  # center crops of a source with unreadable images
      logging.warning("Evaluated %d images, not eval.num_images = %d: %s has %d unreadable images.",
                      results["num_images"], self.config.eval.num_images, self.eval_source.description,
                      len(self.eval_source.skipped))
    curve = self._token_curve()
    results.update({f"psnr_at_{k}_tokens": value for k, value in curve.items()})
    self.log.write("eval", step, results)
    if self.is_chief:
      self._save_images(step, output_dir, originals, reconstructions, curve, results["mean_colour_baseline_psnr"])
    logging.info("Eval at step %d: %s", step, json.dumps({k: round(v, 4) for k, v in results.items()}))
    return results

  def _token_curve(self) -> dict[int, float]:
    """PSNR from the first k tokens, k = 1, 2, 4, ..., K, for a model trained with token dropout; {} otherwise."""
    if getattr(self.model, "token_dropout", "none") == "none":
      return {}
    return token_curve.quality_vs_tokens(self.model, self.eval_params, self.state.model_state, self.eval_dataset)

  def _save_images(self, step: int, output_dir: pathlib.Path | None, originals: np.ndarray,
                   reconstructions: np.ndarray, curve: dict[int, float], baseline_psnr: float) -> None:
    if output_dir is None:
      output_dir = self.workdir
      (self.workdir / "images").mkdir(exist_ok=True)
      images.save_reconstruction_grid(self.workdir / "images" / f"reconstructions_step{step:07d}.png", originals,
                                      reconstructions)
    output_dir.mkdir(parents=True, exist_ok=True)
    images.save_reconstruction_grid(output_dir / "reconstructions.png", originals, reconstructions)
    if curve:
      token_curve.save_token_curve(output_dir, curve, baseline_psnr)

  def save(self, step: int) -> None:
    self.checkpointer.save(step, self.state, self.train_iterator)

  def close(self) -> None:
    self.checkpointer.wait()
    self.checkpointer.close()
    self.log.close()


def _check_divisible(config: Any, batch_shards: int) -> None:
  """The global batch splits evenly over hosts and over the mesh's batch axes (data x fsdp)."""
  for path, size in (("data.batch_size", config.data.batch_size), ("eval.batch_size", config.eval.batch_size)):
    for ways, what in ((batch_shards, "the mesh's data x fsdp devices"), (jax.process_count(), "the processes")):
      if size % ways:
        raise config_validation.ConfigError(f"Config field {path!r} = {size} must be divisible by {ways}, the "
                                            f"number of {what}.")


def _sharded_reconstruct_fn(reconstruct_fn, mesh: jax.sharding.Mesh, batch_size: int):
  """Wraps a jitted `(params, model_state, images) -> outputs` to take every host's identical NumPy eval batch.

  The batch is padded to `batch_size` (so one program serves every batch), split over the mesh's batch axes, and
  the outputs are gathered back to NumPy on every host with the padding dropped.
  """
  batch_sharding = sharding.batch_sharding(mesh)

  def run(params, model_state, images: np.ndarray):
    count = len(images)
    padded = np.concatenate([images, np.repeat(images[-1:], batch_size - count, axis=0)])
    global_images = jax.make_array_from_callback(padded.shape, batch_sharding, lambda index: padded[index])
    outputs = reconstruct_fn(params, model_state, global_images)
    gathered = multihost_utils.process_allgather(outputs, tiled=True)
    return jax.tree.map(lambda x: np.asarray(x)[:count], gathered)

  return run


def train_and_evaluate(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains `config`'s model in `workdir` (resuming if possible); returns the summary also written to metrics.json."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  run = Run(config, workdir)
  step, eval_results, train_seconds = control.train_until_done(run)
  return _write_summary(run, step, eval_results, train_seconds, completed=step >= run.num_steps)


def _write_summary(run: Run, step: int, eval_results: dict[str, float], train_seconds: float,
                   completed: bool) -> dict[str, Any]:
  steps_run = step - run.start_step
  summary = {
      "step": step, "completed": completed, "resumed_from_step": run.start_step,
      "final_eval": eval_results or (run.log.history["eval"][-1] if run.log.history["eval"] else {}),
      "train_steps_per_second": (steps_run - 1) / train_seconds if train_seconds else None,
      "train_images_per_second": (steps_run - 1) * run.batch_size / train_seconds if train_seconds else None,
      "skipped_images": {"train": len(run.train_source.skipped), "eval": len(run.eval_source.skipped)},
      "eval_history": run.log.history["eval"],
      "config": run.config.to_dict() if hasattr(run.config, "to_dict") else dict(run.config),
  }
  if not run.is_chief:
    return summary
  (run.workdir / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
  if run.log.history["train"] and run.log.history["eval"]:
    images.save_curves(run.workdir / "curves.png", run.log.history["train"], run.log.history["eval"])
  return summary
