"""PSNR and SSIM against scikit-image's implementations on fresh random images."""
import numpy as np
import pytest
from skimage import metrics as skimage_metrics

from jaxtok import metrics


@pytest.mark.parametrize("seed", [0, 1])
def test_psnr_and_ssim_match_scikit_image(seed):
  rng = np.random.default_rng(seed)
  reference = rng.uniform(-1, 1, (3, 24, 20, 3)).astype(np.float32)
  noisy = np.clip(reference + rng.normal(0, 0.1 + 0.2 * seed, reference.shape), -1, 1).astype(np.float32)
  want_psnr = [skimage_metrics.peak_signal_noise_ratio(r.astype(np.float64), n.astype(np.float64), data_range=2)
               for r, n in zip(reference, noisy)]
  want_ssim = [skimage_metrics.structural_similarity(r.astype(np.float64), n.astype(np.float64), data_range=2,
                                                     channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                                     use_sample_covariance=False)
               for r, n in zip(reference, noisy)]
  np.testing.assert_allclose(metrics.psnr(reference, noisy), want_psnr, rtol=1e-5)
  np.testing.assert_allclose(metrics.ssim(reference, noisy), want_ssim, atol=2e-5)


def test_identical_images():
  images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  assert np.all(np.isinf(metrics.psnr(images, images)))
  np.testing.assert_allclose(metrics.ssim(images, images), 1.0, atol=1e-6)


def test_shape_errors():
  with pytest.raises(ValueError, match="one shape"):
    metrics.psnr(np.zeros((1, 16, 16, 3)), np.zeros((1, 16, 16, 1)))
  with pytest.raises(ValueError, match="at least 11x11"):
    metrics.ssim(np.zeros((1, 8, 8, 3)), np.zeros((1, 8, 8, 3)))


def test_codebook_usage_over_batches():
  usage = metrics.CodebookUsage(codebook_size=4, num_codebooks=2)
  usage.update(np.array([[[0, 1], [0, 1]]]))
  usage.update(np.array([[[2, 1]]]))
  result = usage.result()
  assert result["codebook_usage"] == pytest.approx((2 / 4 + 1 / 4) / 2)
  first = np.array([2, 0, 1, 0]) / 3
  entropy = -np.sum(first[first > 0] * np.log(first[first > 0]))
  assert result["perplexity"] == pytest.approx((np.exp(entropy) + 1.0) / 2)
  with pytest.raises(ValueError, match=r"\[0, 4\)"):
    usage.update(np.array([[4, 0]]))
