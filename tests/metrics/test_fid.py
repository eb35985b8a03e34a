"""Frechet distance against closed forms and scipy; InceptionV3 features from a weights file of random values."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg

from jaxtok.metrics import fid


def test_frechet_distance_closed_form_for_commuting_covariances():
  rng = np.random.default_rng(0)
  mu1, mu2 = rng.standard_normal((2, 5))
  a, b = rng.uniform(0.1, 3.0, (2, 5))
  expected = np.sum((mu1 - mu2)**2) + np.sum((np.sqrt(a) - np.sqrt(b))**2)
  np.testing.assert_allclose(fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)), expected, rtol=1e-10)
  assert fid.frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0.0, abs=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_on_random_covariances():
  rng = np.random.default_rng(1)
  features1, features2 = rng.standard_normal((200, 6)), rng.standard_normal((150, 6)) @ rng.standard_normal((6, 6))
  (mu1, sigma1), (mu2, sigma2) = fid.feature_statistics(features1), fid.feature_statistics(features2)
  np.testing.assert_allclose(sigma1, np.cov(features1.T), rtol=1e-12)
  covmean = linalg.sqrtm(sigma1 @ sigma2).real
  expected = np.sum((mu1 - mu2)**2) + np.trace(sigma1 + sigma2 - 2 * covmean)
  np.testing.assert_allclose(fid.frechet_distance(mu1, sigma1, mu2, sigma2), expected, rtol=1e-8)
  with pytest.raises(ValueError, match="one D"):
    fid.frechet_distance(mu1, sigma1, mu2[:3], sigma2)
  with pytest.raises(ValueError, match=r"N >= 2"):
    fid.feature_statistics(features1[:1])


def test_reference_statistics_hash_is_checked(tmp_path):
  path = tmp_path / "reference.npz"
  np.savez(path, mu=np.zeros(3), sigma=np.eye(3))
  mu, sigma = fid.load_reference_statistics(path, fid.file_sha256(path))
  np.testing.assert_array_equal(sigma, np.eye(3))
  with pytest.raises(ValueError, match="expected 00"):
    fid.load_reference_statistics(path, "00")


@pytest.mark.slow
def test_inception_features_from_a_weights_file(tmp_path):
  model = fid.InceptionV3(width_multiplier=1 / 16, input_size=75)
  images = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, (2, 32, 32, 3)), jnp.float32)
  rng = np.random.default_rng(3)
  arrays = {key: (rng.uniform(0.5, 1.5, value.shape) if key.endswith("/var") else
                  0.3 * rng.standard_normal(value.shape)).astype(np.float32)
            for key, value in fid.variable_shapes(model).items()}
  np.savez(tmp_path / "inception.npz", **arrays)
  loaded = fid.load_inception_variables(tmp_path / "inception.npz", model)
  features = jax.jit(model.apply)(loaded, images)
  assert features.shape == (2, 2048 // 16)
  assert np.all(np.isfinite(features)) and np.std(features) > 0
  assert np.abs(features[0] - features[1]).max() > 0
  del arrays["params/Mixed_7c_branch_pool/conv/kernel"]
  np.savez(tmp_path / "broken.npz", **arrays)
  with pytest.raises(ValueError, match="lack 1 arrays"):
    fid.load_inception_variables(tmp_path / "broken.npz", model)
