"""LPIPS-style perceptual distance (Zhang et al. 2018) on a VGG-like feature network with user-given weights.

The feature net is a stack of stages of 3x3 conv + ReLU, with 2x2 max-pooling between stages; the distance takes
each stage's last activation, normalises it to unit length over channels, squares the difference, weighs channels
by non-negative linear weights, averages over space and sums over stages. `VGG16_STAGES` with LPIPS's released VGG
and linear weights gives LPIPS-VGG.

Weights file (`load_perceptual_params`): an `.npz` with, for stage s and conv c, `stage{s}_conv{c}/kernel`
`[3, 3, in, out]` (HWIO) and `stage{s}_conv{c}/bias` `[out]`, and `linear{s}` `[channels of stage s]`.
"""
import pathlib
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
# LPIPS's input normalisation, for images in [-1, 1].
INPUT_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
INPUT_SCALE = np.array([0.458, 0.448, 0.450], np.float32)


class FeatureNet(nn.Module):
  """images `[batch, H, W, 3]` -> one activation `[batch, H / 2^s, W / 2^s, stages[s][-1]]` per stage s."""

  stages: Sequence[Sequence[int]]

  @nn.compact
  def __call__(self, images: jax.Array) -> list[jax.Array]:
    x = (images.astype(jnp.float32) - INPUT_SHIFT) / INPUT_SCALE
    features = []
    for stage, channels in enumerate(self.stages):
      if stage:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      for conv, width in enumerate(channels):
        x = nn.relu(nn.Conv(width, (3, 3), padding=1, name=f"stage{stage}_conv{conv}")(x))
      features.append(x)
    return features


def lpips_from_features(features_a: Sequence[jax.Array], features_b: Sequence[jax.Array],
                        linear: Sequence[jax.Array]) -> jax.Array:
  """Per-example distance `[batch]` from per-stage activations `[batch, h, w, c]` and channel weights `[c]`."""
  total = 0.0
  for a, b, weights in zip(features_a, features_b, linear, strict=True):
    a = a / (jnp.sqrt(jnp.sum(a * a, axis=-1, keepdims=True)) + 1e-10)
    b = b / (jnp.sqrt(jnp.sum(b * b, axis=-1, keepdims=True)) + 1e-10)
    total += jnp.mean(jnp.sum(jnp.square(a - b) * weights, axis=-1), axis=(1, 2))
  return total


def lpips(params: dict, images: jax.Array, reconstructions: jax.Array,
          stages: Sequence[Sequence[int]] = VGG16_STAGES) -> jax.Array:
  """LPIPS distance per example `[batch]` between images `[batch, H, W, 3]` in [-1, 1].

  Args:
    params: {"features": FeatureNet params, "linear": [per-stage channel weights]}, e.g. from
      `load_perceptual_params`.
  """
  if images.shape != reconstructions.shape or images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"Expected two image batches [batch, H, W, 3] of one shape, got {images.shape} and "
                     f"{reconstructions.shape}.")
  net = FeatureNet(tuple(tuple(s) for s in stages))
  both = net.apply({"params": params["features"]}, jnp.concatenate([images, reconstructions]))
  split = images.shape[0]
  return lpips_from_features([f[:split] for f in both], [f[split:] for f in both], params["linear"])


def _expected_shapes(stages: Sequence[Sequence[int]]) -> dict[str, tuple[int, ...]]:
  shapes, in_channels = {}, 3
  for stage, channels in enumerate(stages):
    for conv, width in enumerate(channels):
      shapes[f"stage{stage}_conv{conv}/kernel"] = (3, 3, in_channels, width)
      shapes[f"stage{stage}_conv{conv}/bias"] = (width,)
      in_channels = width
    shapes[f"linear{stage}"] = (channels[-1],)
  return shapes


def params_from_arrays(arrays: dict[str, np.ndarray], stages: Sequence[Sequence[int]] = VGG16_STAGES) -> dict:
  """Flat `{"stage0_conv0/kernel": ..., "linear0": ...}` arrays -> the params `lpips` takes, shapes checked."""
  expected = _expected_shapes(stages)
  missing = sorted(set(expected) - set(arrays))
  if missing:
    raise ValueError(f"Perceptual weights lack {missing[:4]}{'...' if len(missing) > 4 else ''}; expected keys "
                     f"{sorted(expected)[:4]}...")
  for key, shape in expected.items():
    if tuple(arrays[key].shape) != shape:
      raise ValueError(f"Perceptual weight {key!r} must have shape {shape}, got {tuple(arrays[key].shape)}.")
  features = {}
  for key in expected:
    if not key.startswith("linear"):
      layer, kind = key.split("/")
      features.setdefault(layer, {})[kind] = jnp.asarray(arrays[key], jnp.float32)
  linear = [jnp.asarray(arrays[f"linear{s}"], jnp.float32) for s in range(len(stages))]
  return {"features": features, "linear": linear}


def load_perceptual_params(path: str | pathlib.Path, stages: Sequence[Sequence[int]] = VGG16_STAGES) -> dict:
  """Reads an `.npz` laid out as the module docstring says."""
  with np.load(path) as file:
    return params_from_arrays(dict(file), stages)


def random_perceptual_arrays(seed: int, stages: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
  """He-initialised conv weights and uniform non-negative linear weights, in the weights-file layout (for tests)."""
  rng = np.random.default_rng(seed)
  arrays = {}
  for key, shape in _expected_shapes(stages).items():
    if key.startswith("linear"):
      arrays[key] = rng.uniform(0.0, 1.0, shape).astype(np.float32)
    elif key.endswith("kernel"):
      arrays[key] = (rng.standard_normal(shape) * np.sqrt(2.0 / (9 * shape[2]))).astype(np.float32)
    else:
      arrays[key] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
  return arrays
