"""Evaluation of a quantized autoencoder on a finite dataset.

Per image: PSNR and SSIM of the reconstruction, and of the mean-colour baseline (each image painted its own mean
colour). Over the set: codebook usage, dead-code fraction and perplexity, and rFID (the Frechet distance between
InceptionV3 features of the originals and of their reconstructions) when a feature function is given.
"""
from typing import Any, Callable, Iterable

import flax.linen as nn
import jax
from jax.experimental import multihost_utils
import numpy as np

from jaxtok import sharding
from jaxtok.metrics import CodebookUsage, fid, image_quality

FeatureFn = Callable[[np.ndarray], np.ndarray]


def make_reconstruct_fn(model: nn.Module, to_images: Callable[[jax.Array], jax.Array] | None = None
                        ) -> Callable[..., tuple[jax.Array, jax.Array, dict[str, jax.Array]]]:
  """Returns jitted `(params, model_state, images) -> (reconstructions, indices, per-image metrics)`; `to_images`
  turns the model's output into images first (a proxy-code TiTok's logits, `jaxtok.train.proxy_codes`)."""

  def reconstruct(params, model_state, images):
    decoded, output = model.apply({"params": params, **model_state}, images, train=False)
    reconstructions = (to_images(decoded) if to_images else decoded).astype(images.dtype)
    per_image = {"psnr": image_quality.psnr(images, reconstructions), "ssim": image_quality.ssim(images, reconstructions)}
    return reconstructions, output.indices, per_image

  return jax.jit(reconstruct)


def sharded_reconstruct_fn(reconstruct_fn: Callable, mesh: jax.sharding.Mesh, batch_size: int) -> Callable:
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


def make_inception_feature_fn(weights_path: str) -> FeatureFn:
  """InceptionV3 pool features of images `[batch, h, w, 3]` in [-1, 1] -> `[batch, 2048]` NumPy, from `weights_path`.

  The width is read from the file (a full FID network has 32 channels in its first conv), so the small random-weight
  networks of the tests load the same way as the standard FID weights.
  """
  with np.load(weights_path) as file:
    first_conv = file["params/Conv2d_1a_3x3/conv/kernel"].shape[-1]
  model = fid.InceptionV3(width_multiplier=first_conv / 32)
  variables = fid.load_inception_variables(weights_path, model)
  features = jax.jit(model.apply)
  return lambda images: np.asarray(features(variables, images), np.float64)


def mean_colour_psnr(images: np.ndarray) -> np.ndarray:
  """PSNR of the trivial reconstruction that paints each image `[batch, h, w, 3]` its own mean colour -> `[batch]`."""
  flat = np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape)
  return np.asarray(image_quality.psnr(images, flat))


def evaluate(reconstruct_fn: Callable, params: Any, model_state: Any, batches: Iterable[dict[str, np.ndarray]],
             codebook_size: int | None, num_grid_images: int,
             feature_fn: FeatureFn | None = None) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
  """Runs `reconstruct_fn` over `batches`.

  Returns:
    (metrics, originals, reconstructions): metrics holds the means of psnr, ssim and the mean-colour baseline psnr,
    codebook_usage, dead_code_fraction and perplexity over the whole set (when `codebook_size` is known), and rfid
    (when `feature_fn` is given); originals and reconstructions are the first `num_grid_images` images
    `[n, h, w, 3]` for a PNG grid.
  """
  per_image: dict[str, list[np.ndarray]] = {"psnr": [], "ssim": [], "mean_colour_baseline_psnr": []}
  features: dict[str, list[np.ndarray]] = {"originals": [], "reconstructions": []}
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
    if feature_fn is not None:
      features["originals"].append(feature_fn(images))
      features["reconstructions"].append(feature_fn(recon))
    if sum(len(o) for o in originals) < num_grid_images:
      originals.append(images)
      reconstructions.append(recon)
  if not per_image["psnr"]:
    raise ValueError("The evaluation dataset yielded no batches.")
  results = {name: float(np.mean(np.concatenate(values))) for name, values in per_image.items()}
  results["num_images"] = int(sum(len(v) for v in per_image["psnr"]))
  if usage is not None:
    results.update(usage.result())
  if feature_fn is not None:
    statistics = [fid.feature_statistics(np.concatenate(features[name])) for name in ("originals", "reconstructions")]
    results["rfid"] = fid.frechet_distance(*statistics[0], *statistics[1])
  return (results, np.concatenate(originals)[:num_grid_images], np.concatenate(reconstructions)[:num_grid_images])
