"""The tokenizer task: train a quantized image autoencoder (`TiTok`, `VQGAN`, `ConvVQAutoencoder`, any model whose
registry entry names this task) on crops of an image source.

Train step: reconstruction loss + the quantizer's loss (+ perceptual and PatchGAN losses when configured),
`jaxtok.train.step`. Evaluation (`jaxtok.train.evaluation`): PSNR, SSIM and the mean-colour baseline on fixed crops,
codebook usage and perplexity over the set, bits per image, rFID with InceptionV3 weights, the PSNR-vs-tokens curve
of a model trained with token dropout, and a grid of originals above their reconstructions.
"""
import functools
import pathlib
from typing import Any, Callable

from absl import logging
import flax.linen as nn
import jax
import numpy as np
import optax

from jaxtok import data
from jaxtok import registry
from jaxtok.losses import settings as loss_settings
from jaxtok.metrics import token_curve
from jaxtok.train import config_fields
from jaxtok.train import evaluation
from jaxtok.train import images
from jaxtok.train import proxy_codes
from jaxtok.train import step as step_lib
from jaxtok.train import task as task_lib
from jaxtok.train import warm_start
from jaxtok.train.state import TrainState


class TokenizerTask:
  """See `jaxtok.train.task.Task`."""
  fields = config_fields.RUNNER_FIELDS
  batch_fields = ("data.batch_size", "eval.batch_size")
  example_name = "images"
  evaluates_untrained = False

  def __init__(self, config: Any, workdir: pathlib.Path, mesh: jax.sharding.Mesh):
    self.config, self.workdir, self.mesh = config, workdir, mesh

  @classmethod
  def check_config(cls, config: Any) -> None:
    config_fields.check_config(config)

  @functools.cached_property
  def model(self) -> nn.Module:
    return registry.build_model(self.config.model_name, self.config.model)

  @functools.cached_property
  def losses(self) -> loss_settings.LossSettings:
    return loss_settings.from_config(self.config.losses)

  @property
  def discriminator(self) -> nn.Module | None:
    return self.losses.discriminator

  @functools.cached_property
  def _crop(self) -> data.CropOptions:
    return data.crop_options(self.config.data)

  @functools.cached_property
  def train_source(self):
    return data.make_source(self.config.data.source, self.config.data.train_location, self.config.data.train_split)

  @functools.cached_property
  def eval_source(self):
    return data.make_source(self.config.data.source, self.config.data.eval_location, self.config.data.eval_split)

  def example_batch(self, size: int) -> tuple[np.ndarray, ...]:
    return (np.zeros((size, self._crop.image_size, self._crop.image_size, 3), np.float32),)

  def start_state(self, state: TrainState) -> TrainState:
    if self.config.train.params_from:
      state = warm_start.start_from_run(state, self.config.train.params_from)
    if self.config.train.pixel_decoder_from:
      state = warm_start.start_pixel_decoder(state, self.config.model, self.config.train.pixel_decoder_from)
    return state

  def train_batches(self):
    return iter(data.train_dataset(
        self.train_source, self._crop, batch_size=self.config.data.batch_size // jax.process_count(),
        seed=self.config.seed, shard_index=jax.process_index(), shard_count=jax.process_count(),
        worker_count=self.config.data.worker_count))

  @functools.cached_property
  def teacher(self) -> proxy_codes.ProxyTokenizer | None:
    """Stage 1's frozen MaskGIT-VQGAN (`train.proxy_codes_from`), or None."""
    workdir = self.config.train.proxy_codes_from
    return proxy_codes.restore(self.model, self.config.data.image_size, workdir) if workdir else None

  @property
  def output_to_images(self) -> Callable[[jax.Array], jax.Array] | None:
    """What turns the model's decoded output into images (stage 1's logits), or None: it is images."""
    return self.teacher.decode_logits if self.teacher else None

  def make_train_step(self, optimizer: optax.GradientTransformation,
                      learning_rate_fn: Callable[[jax.Array], jax.Array]) -> task_lib.TrainStep:
    if self.teacher:
      return proxy_codes.make_train_step(self.model, self.teacher, optimizer, ema_decay=self.config.train.ema_decay,
                                         learning_rate_fn=learning_rate_fn)
    return step_lib.make_train_step(self.model, optimizer, loss_kind=self.config.train.reconstruction_loss,
                                    ema_decay=self.config.train.ema_decay, learning_rate_fn=learning_rate_fn,
                                    losses=self.losses)

  @functools.cached_property
  def _eval_dataset(self):
    config = self.config
    return data.eval_dataset(self.eval_source, self._crop, num_images=config.eval.num_images,
                             batch_size=config.eval.batch_size, seed=config.eval.seed, crop=config.eval.crop)

  @functools.cached_property
  def _reconstruct_fn(self):
    reconstruct = evaluation.make_reconstruct_fn(self.model, self.output_to_images)
    return evaluation.sharded_reconstruct_fn(reconstruct, self.mesh, self.config.eval.batch_size)

  @functools.cached_property
  def _feature_fn(self):
    weights = self.config.eval.inception_weights_path
    return evaluation.make_inception_feature_fn(weights) if weights else None

  def evaluate(self, variables: dict[str, Any], step: int, output_dir: pathlib.Path) -> task_lib.Evaluation:
    del step
    params, model_state = variables["params"], {k: v for k, v in variables.items() if k != "params"}
    results, originals, reconstructions = evaluation.evaluate(
        self._reconstruct_fn, params, model_state, self._eval_dataset, self.model.codebook_size,
        self.config.eval.grid_images, self._feature_fn)
    results["bits_per_image"] = float(self.model.bits_per_image(self.config.data.image_size))
    if results["num_images"] < self.config.eval.num_images:  # center crops of a source with unreadable images
      logging.warning("Evaluated %d images, not eval.num_images = %d: %s has %d unreadable images.",
                      results["num_images"], self.config.eval.num_images, self.eval_source.description,
                      len(self.eval_source.skipped))
    if self.config.model.get("token_dropout", "none") != "none":  # a flexible-length TiTok: PSNR from k tokens
      curve = token_curve.quality_vs_tokens(self.model, params, model_state, self._eval_dataset)
      results.update({f"psnr_at_{k}_tokens": value for k, value in curve.items()})
      if jax.process_index() == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        token_curve.save_token_curve(output_dir, curve, results["mean_colour_baseline_psnr"])
    return task_lib.Evaluation(results, {"reconstructions": images.reconstruction_grid(originals, reconstructions)})

  def summary(self, eval_history: list[dict[str, float]]) -> dict[str, Any]:
    del eval_history
    return {"skipped_images": {"train": len(self.train_source.skipped), "eval": len(self.eval_source.skipped)}}

  def save_curves(self, path: pathlib.Path, train_history: list[dict[str, float]],
                  eval_history: list[dict[str, float]]) -> None:
    images.save_curves(path, train_history, eval_history)

  @classmethod
  def headline(cls, summary: dict[str, Any]) -> str:
    final = summary["final_eval"]
    if not final:
      return ""
    return (f"Step {summary['step']}: eval PSNR {final['psnr']:.2f} dB (mean-colour baseline "
            f"{final['mean_colour_baseline_psnr']:.2f} dB), SSIM {final['ssim']:.3f}, codebook usage "
            f"{final.get('codebook_usage', float('nan')):.3f}, perplexity {final.get('perplexity', float('nan')):.1f}.")
