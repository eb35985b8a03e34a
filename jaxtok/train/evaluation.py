"""Evaluation of a quantized autoencoder on a finite dataset: PSNR, SSIM, codebook usage, a mean-colour baseline."""
from typing import Any, Callable, Iterable

import flax.linen as nn
import jax
import numpy as np

from jaxtok.metrics import CodebookUsage, image_quality


def make_reconstruct_fn(model: nn.Module) -> Callable[..., tuple[jax.Array, jax.Array, dict[str, jax.Array]]]:
  """Returns jitted `(params, model_state, images) -> (reconstructions, indices, per-image metrics)`."""

  def reconstruct(params, model_state, images):
    reconstructions, output = model.apply({"params": params, **model_state}, images, train=False)
    reconstructions = reconstructions.astype(images.dtype)
    per_image = {"psnr": image_quality.psnr(images, reconstructions), "ssim": image_quality.ssim(images, reconstructions)}
    return reconstructions, output.indices, per_image

  return jax.jit(reconstruct)


def mean_colour_psnr(images: np.ndarray) -> np.ndarray:
  """PSNR of the trivial reconstruction that paints each image `[batch, h, w, 3]` its own mean colour -> `[batch]`."""
  flat = np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape)
  return np.asarray(image_quality.psnr(images, flat))


def evaluate(reconstruct_fn: Callable, params: Any, model_state: Any, batches: Iterable[dict[str, np.ndarray]],
             codebook_size: int | None, num_grid_images: int) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
  """Runs `reconstruct_fn` over `batches`.

  Returns:
    (metrics, originals, reconstructions): metrics holds the means of psnr, ssim and the mean-colour baseline psnr,
    plus codebook_usage and perplexity over the whole set (when `codebook_size` is known); originals and
    reconstructions are the first `num_grid_images` images `[n, h, w, 3]` for a PNG grid.
  """
  per_image: dict[str, list[np.ndarray]] = {"psnr": [], "ssim": [], "mean_colour_baseline_psnr": []}
  usage = None
  originals, reconstructions = [], []
  for batch in batches:
    images = batch["image"]
    recon, indices, metrics = jax.device_get(reconstruct_fn(params, model_state, images))
    for name, values in metrics.items():
      per_image[name].append(values)
    per_image["mean_colour_baseline_psnr"].append(mean_colour_psnr(images))
    if codebook_size is not None:
      usage = usage or CodebookUsage(codebook_size, indices.shape[-1] if indices.ndim > 2 else 1)
      usage.update(indices)
    if sum(len(o) for o in originals) < num_grid_images:
      originals.append(images)
      reconstructions.append(recon)
  if not per_image["psnr"]:
    raise ValueError("The evaluation dataset yielded no batches.")
  results = {name: float(np.mean(np.concatenate(values))) for name, values in per_image.items()}
  results["num_images"] = int(sum(len(v) for v in per_image["psnr"]))
  if usage is not None:
    results.update(usage.result())
  return (results, np.concatenate(originals)[:num_grid_images], np.concatenate(reconstructions)[:num_grid_images])
