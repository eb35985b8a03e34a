"""LPIPS-style distance with random weights written to an .npz, against a float64 NumPy oracle."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.losses import perceptual

STAGES = ((4,), (6, 5))


def numpy_conv3x3(x, kernel, bias):
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
  for dy in range(3):
    for dx in range(3):
      out += padded[:, dy:dy + x.shape[1], dx:dx + x.shape[2]] @ kernel[dy, dx]
  return out + bias


def numpy_lpips(arrays, a, b):
  def features(x):
    x = (x - perceptual.INPUT_SHIFT.astype(np.float64)) / perceptual.INPUT_SCALE.astype(np.float64)
    outputs = []
    for stage, channels in enumerate(STAGES):
      if stage:
        x = x.reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2] // 2, 2, x.shape[3]).max(axis=(2, 4))
      for conv in range(len(channels)):
        x = np.maximum(numpy_conv3x3(x, arrays[f"stage{stage}_conv{conv}/kernel"].astype(np.float64),
                                     arrays[f"stage{stage}_conv{conv}/bias"].astype(np.float64)), 0)
      outputs.append(x)
    return outputs

  total = 0.0
  for stage, (fa, fb) in enumerate(zip(features(a), features(b))):
    fa = fa / (np.linalg.norm(fa, axis=-1, keepdims=True) + 1e-10)
    fb = fb / (np.linalg.norm(fb, axis=-1, keepdims=True) + 1e-10)
    total += np.mean(np.sum((fa - fb)**2 * arrays[f"linear{stage}"], axis=-1), axis=(1, 2))
  return total


def test_lpips_from_a_weights_file_matches_numpy(tmp_path):
  arrays = perceptual.random_perceptual_arrays(0, STAGES)
  np.savez(tmp_path / "weights.npz", **arrays)
  params = perceptual.load_perceptual_params(tmp_path / "weights.npz", STAGES)
  rng = np.random.default_rng(1)
  a = rng.uniform(-1, 1, (2, 8, 8, 3))
  b = np.clip(a + 0.2 * rng.standard_normal(a.shape), -1, 1)
  distance = perceptual.lpips(params, jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), STAGES)
  np.testing.assert_allclose(distance, numpy_lpips(arrays, a, b), rtol=2e-3)
  np.testing.assert_allclose(perceptual.lpips(params, a, a, STAGES), 0.0, atol=1e-6)


def test_bad_weights_and_inputs_raise():
  arrays = perceptual.random_perceptual_arrays(0, STAGES)
  with pytest.raises(ValueError, match="lack"):
    perceptual.params_from_arrays({k: v for k, v in arrays.items() if k != "linear1"}, STAGES)
  arrays["stage1_conv0/kernel"] = arrays["stage1_conv0/kernel"][..., :3]
  with pytest.raises(ValueError, match=r"'stage1_conv0/kernel' must have shape \(3, 3, 4, 6\)"):
    perceptual.params_from_arrays(arrays, STAGES)
  params = perceptual.params_from_arrays(perceptual.random_perceptual_arrays(0, STAGES), STAGES)
  with pytest.raises(ValueError, match="one shape"):
    perceptual.lpips(params, jnp.zeros((1, 8, 8, 3)), jnp.zeros((1, 4, 4, 3)), STAGES)
