"""What exact coarse colours alone reach on a config's pinned eval set: a yardstick for the tokenizers' PSNR.

For each grid g, every eval image `[h, w, 3]` is painted the exact mean colour of each of its g x g cells, then
upsampled back to `[h, w, 3]` (nearest: flat cells; bilinear: smooth). That is the reconstruction of a tokenizer
that got the layout right at g x g with continuous colours (3 g^2 real numbers per image, no bits spent on codes).
g = 1 is the mean-colour baseline. Reads the config's `data` and `eval` sections only (no model, no training).

  python benchmarks/patch_mean_oracle.py --config=experiments/titok_photos.py
  python benchmarks/patch_mean_oracle.py --config=experiments/quickstart.py --grids=1,2,4
"""
import argparse
import json

import einops
import jax
import numpy as np

from jaxtok import cli
from jaxtok import data
from jaxtok.metrics import image_quality

UPSAMPLINGS = ("nearest", "bilinear")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default="experiments/titok_photos.py", help="experiment config (path[:arg])")
  parser.add_argument("--grids", default="1,2,4,8,16", help="comma-separated cells per side; each divides the size")
  return parser.parse_args(argv)


def eval_images(config) -> np.ndarray:
  """The config's pinned eval crops `[n, size, size, 3]` in [-1, 1]."""
  source = data.make_source(config.data.source, config.data.eval_location, config.data.eval_split)
  batches = data.eval_dataset(source, data.crop_options(config.data), num_images=config.eval.num_images,
                              batch_size=config.eval.batch_size, seed=config.eval.seed, crop=config.eval.crop)
  return np.concatenate([batch["image"] for batch in batches])


def cell_means(images: np.ndarray, grid: int) -> np.ndarray:
  """images `[n, h, w, 3]` -> the mean colour of each of grid x grid cells `[n, grid, grid, 3]`."""
  size = images.shape[1]
  if size % grid:
    raise ValueError(f"Each grid must divide the image size {size}, got grid={grid}.")
  return einops.reduce(images, "n (g h) (k w) c -> n g k c", "mean", g=grid, k=grid)


def painted(means: np.ndarray, size: int, upsampling: str) -> np.ndarray:
  """Cell means `[n, g, g, 3]` -> images `[n, size, size, 3]`, upsampled nearest (flat cells) or bilinear."""
  if upsampling == "nearest":
    cell = size // means.shape[1]
    return einops.repeat(means, "n g k c -> n (g h) (k w) c", h=cell, w=cell)
  return np.asarray(jax.image.resize(means, (len(means), size, size, 3), "bilinear"))


def oracle_psnr(images: np.ndarray, grids: list[int]) -> dict[str, dict[str, float]]:
  """{f"{g}x{g}": {upsampling: mean PSNR over the images}} for every grid."""
  results = {}
  for grid in grids:
    means = cell_means(images, grid)
    results[f"{grid}x{grid}"] = {
        upsampling: float(np.mean(image_quality.psnr(images, painted(means, images.shape[1], upsampling))))
        for upsampling in UPSAMPLINGS}
  return results


def main(argv: list[str] | None = None) -> None:
  args = parse_args(argv)
  images = eval_images(cli.load_config_file(args.config))
  results = oracle_psnr(images, [int(grid) for grid in args.grids.split(",") if grid])
  print(json.dumps({"config": args.config, "num_images": len(images), "image_size": images.shape[1],
                    "psnr": results}, indent=1))


if __name__ == "__main__":
  main()
