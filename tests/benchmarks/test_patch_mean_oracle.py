"""benchmarks/patch_mean_oracle.py: exact cell colours, painted back; g = 1 is the runner's mean-colour baseline."""
import numpy as np
import pytest

from jaxtok.train import evaluation

import benchmark_scripts  # pylint: disable=g-bad-import-order


def _load():
  return benchmark_scripts.load("patch_mean_oracle")


def _random_images(count=3, size=8, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (count, size, size, 3)).astype(np.float32)


def test_cell_means_against_a_loop():
  oracle, images = _load(), _random_images()
  means = oracle.cell_means(images, 2)
  assert means.shape == (3, 2, 2, 3)
  for row in range(2):
    for column in range(2):
      expected = images[:, 4 * row:4 * row + 4, 4 * column:4 * column + 4].mean(axis=(1, 2))
      np.testing.assert_allclose(means[:, row, column], expected, rtol=1e-6)


def test_piecewise_constant_images_are_painted_back_exactly():
  oracle = _load()
  cells = _random_images(size=2)
  images = np.repeat(np.repeat(cells, 4, axis=1), 4, axis=2)
  np.testing.assert_allclose(oracle.painted(oracle.cell_means(images, 2), 8, "nearest"), images, rtol=1e-6)


@pytest.mark.parametrize("upsampling", ["nearest", "bilinear"])
def test_one_cell_is_the_mean_colour_baseline(upsampling):
  oracle, images = _load(), _random_images()
  painted = oracle.painted(oracle.cell_means(images, 1), 8, upsampling)
  np.testing.assert_allclose(painted, np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape),
                             rtol=1e-5)
  psnr = oracle.oracle_psnr(images, [1])
  np.testing.assert_allclose(psnr["1x1"][upsampling], np.mean(evaluation.mean_colour_psnr(images)), rtol=1e-5)


def test_finer_flat_cells_never_lose():
  """Nearest painting is the projection onto piecewise-constant images, and finer grids nest the coarser ones."""
  psnr = _load().oracle_psnr(_random_images(), [1, 2, 4, 8])
  assert psnr["1x1"]["nearest"] < psnr["2x2"]["nearest"] < psnr["4x4"]["nearest"] < psnr["8x8"]["nearest"]


def test_a_grid_that_does_not_divide_the_size_raises():
  with pytest.raises(ValueError, match="divide the image size 8, got grid=3"):
    _load().cell_means(_random_images(), 3)
