"""Frechet Inception Distance: the Frechet distance between Gaussians fitted to InceptionV3 pool features.

`frechet_distance` and `feature_statistics` are host-side float64 NumPy. `InceptionV3` is the FID network
(pytorch-fid's `FIDInceptionA/C/E` blocks, 2048-d average-pool features); its weights come from a user-given `.npz`
whose keys are the flax parameter paths joined by "/" (e.g. `Mixed_5b/branch1x1/conv/kernel`,
`Conv2d_1a_3x3/bn/mean`), see `load_inception_variables`. `width_multiplier < 1` shrinks every layer for tests.
Reference statistics files are `.npz` with `mu` `[D]` and `sigma` `[D, D]`; `file_sha256` pins one.
"""
import hashlib
import pathlib
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """features `[N, D]` (N >= 2) -> (mean `[D]`, unbiased covariance `[D, D]`), float64."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or features.shape[0] < 2:
    raise ValueError(f"Expected features [N >= 2, D], got shape {features.shape}.")
  return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
  return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
  """`|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))` for PSD covariances, in float64.

  tr((s1 s2)^(1/2)) is computed as the trace of `(s1^(1/2) s2 s1^(1/2))^(1/2)`, which has the same eigenvalues and
  is symmetric, so no complex square root arises.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  dim = mu1.shape[0]
  if mu1.shape != (dim,) or mu2.shape != (dim,) or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
    raise ValueError(f"Expected means [D] and covariances [D, D] of one D, got {mu1.shape}, {sigma1.shape}, "
                     f"{mu2.shape}, {sigma2.shape}.")
  root1 = _psd_sqrt(sigma1)
  middle = root1 @ sigma2 @ root1
  trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
  distance = np.sum((mu1 - mu2)**2) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
  return float(max(distance, 0.0))  # equal inputs can round to -1e-20


def file_sha256(path: str | pathlib.Path) -> str:
  return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def load_reference_statistics(path: str | pathlib.Path, sha256: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(mu, sigma) from an `.npz`; raises ValueError when `sha256` is given and the file's hash differs."""
  if sha256 is not None and file_sha256(path) != sha256:
    raise ValueError(f"Reference statistics {path} have sha256 {file_sha256(path)}, expected {sha256}.")
  with np.load(path) as file:
    return file["mu"], file["sigma"]


class ConvBN(nn.Module):
  """Conv (no bias) -> BatchNorm (eps 1e-3, running statistics) -> ReLU."""

  features: int
  kernel: tuple[int, int]
  strides: int = 1
  padding: Any = "VALID"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Conv(self.features, self.kernel, (self.strides, self.strides), self.padding, use_bias=False,
                name="conv")(x)
    return nn.relu(nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x))


def _pool(x: jax.Array, kind: str) -> jax.Array:
  if kind == "max":
    return nn.max_pool(x, (3, 3), (1, 1), "SAME")
  return nn.avg_pool(x, (3, 3), (1, 1), "SAME", count_include_pad=False)


class InceptionV3(nn.Module):
  """images `[batch, H, W, 3]` in [-1, 1] -> pool features `[batch, 2048 * width_multiplier]` float32.

  Images are resized (bilinear) to `input_size` first (299 for FID).
  """

  width_multiplier: float = 1.0
  input_size: int = 299

  def _c(self, channels: int) -> int:
    return max(1, int(channels * self.width_multiplier))

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"InceptionV3 expects images [batch, H, W, 3], got shape {images.shape}.")
    c, same = self._c, "SAME"
    x = jax.image.resize(images.astype(jnp.float32), (images.shape[0], self.input_size, self.input_size, 3),
                         "bilinear")
    x = ConvBN(c(32), (3, 3), 2, name="Conv2d_1a_3x3")(x)
    x = ConvBN(c(32), (3, 3), name="Conv2d_2a_3x3")(x)
    x = ConvBN(c(64), (3, 3), padding=same, name="Conv2d_2b_3x3")(x)
    x = nn.max_pool(x, (3, 3), (2, 2))
    x = ConvBN(c(80), (1, 1), name="Conv2d_3b_1x1")(x)
    x = ConvBN(c(192), (3, 3), name="Conv2d_4a_3x3")(x)
    x = nn.max_pool(x, (3, 3), (2, 2))
    for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
      x = self._block_a(x, c(pool_features), name)
    x = self._block_b(x)
    for name, mid in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = self._block_c(x, c(mid), name)
    x = self._block_d(x)
    x = self._block_e(x, "Mixed_7b", "avg")
    x = self._block_e(x, "Mixed_7c", "max")
    return jnp.mean(x, axis=(1, 2))

  def _block_a(self, x, pool_features, name):
    c, conv = self._c, lambda f, k, n: ConvBN(f, k, padding="SAME", name=f"{name}_{n}")
    branch1 = conv(c(64), (1, 1), "branch1x1")(x)
    branch5 = conv(c(64), (5, 5), "branch5x5_2")(conv(c(48), (1, 1), "branch5x5_1")(x))
    branch3 = conv(c(96), (3, 3), "branch3x3dbl_3")(conv(c(96), (3, 3), "branch3x3dbl_2")(
        conv(c(64), (1, 1), "branch3x3dbl_1")(x)))
    pool = conv(pool_features, (1, 1), "branch_pool")(_pool(x, "avg"))
    return jnp.concatenate([branch1, branch5, branch3, pool], axis=-1)

  def _block_b(self, x):
    c = self._c
    branch3 = ConvBN(c(384), (3, 3), 2, name="Mixed_6a_branch3x3")(x)
    double = ConvBN(c(64), (1, 1), padding="SAME", name="Mixed_6a_branch3x3dbl_1")(x)
    double = ConvBN(c(96), (3, 3), padding="SAME", name="Mixed_6a_branch3x3dbl_2")(double)
    double = ConvBN(c(96), (3, 3), 2, name="Mixed_6a_branch3x3dbl_3")(double)
    return jnp.concatenate([branch3, double, nn.max_pool(x, (3, 3), (2, 2))], axis=-1)

  def _block_c(self, x, mid, name):
    c, conv = self._c, lambda f, k, n: ConvBN(f, k, padding="SAME", name=f"{name}_{n}")
    branch1 = conv(c(192), (1, 1), "branch1x1")(x)
    branch7 = conv(mid, (1, 1), "branch7x7_1")(x)
    branch7 = conv(c(192), (7, 1), "branch7x7_3")(conv(mid, (1, 7), "branch7x7_2")(branch7))
    double = conv(mid, (1, 1), "branch7x7dbl_1")(x)
    for index, kernel in enumerate(((7, 1), (1, 7), (7, 1)), start=2):
      double = conv(mid, kernel, f"branch7x7dbl_{index}")(double)
    double = conv(c(192), (1, 7), "branch7x7dbl_5")(double)
    pool = conv(c(192), (1, 1), "branch_pool")(_pool(x, "avg"))
    return jnp.concatenate([branch1, branch7, double, pool], axis=-1)

  def _block_d(self, x):
    c, conv = self._c, lambda f, k, n: ConvBN(f, k, padding="SAME", name=f"Mixed_7a_{n}")
    branch3 = ConvBN(c(320), (3, 3), 2, name="Mixed_7a_branch3x3_2")(conv(c(192), (1, 1), "branch3x3_1")(x))
    branch7 = conv(c(192), (7, 1), "branch7x7x3_3")(conv(c(192), (1, 7), "branch7x7x3_2")(
        conv(c(192), (1, 1), "branch7x7x3_1")(x)))
    branch7 = ConvBN(c(192), (3, 3), 2, name="Mixed_7a_branch7x7x3_4")(branch7)
    return jnp.concatenate([branch3, branch7, nn.max_pool(x, (3, 3), (2, 2))], axis=-1)

  def _block_e(self, x, name, pool_kind):
    c, conv = self._c, lambda f, k, n: ConvBN(f, k, padding="SAME", name=f"{name}_{n}")
    branch1 = conv(c(320), (1, 1), "branch1x1")(x)
    branch3 = conv(c(384), (1, 1), "branch3x3_1")(x)
    branch3 = jnp.concatenate([conv(c(384), (1, 3), "branch3x3_2a")(branch3),
                               conv(c(384), (3, 1), "branch3x3_2b")(branch3)], axis=-1)
    double = conv(c(384), (3, 3), "branch3x3dbl_2")(conv(c(448), (1, 1), "branch3x3dbl_1")(x))
    double = jnp.concatenate([conv(c(384), (1, 3), "branch3x3dbl_3a")(double),
                              conv(c(384), (3, 1), "branch3x3dbl_3b")(double)], axis=-1)
    pool = conv(c(192), (1, 1), "branch_pool")(_pool(x, pool_kind))
    return jnp.concatenate([branch1, branch3, double, pool], axis=-1)


def flatten_variables(variables: Any) -> dict[str, np.ndarray]:
  """{"params": ..., "batch_stats": ...} -> flat `{"<collection>/<path>": array}` (the weights-file layout)."""
  return {"/".join(key): np.asarray(value) for key, value in
          flax.traverse_util.flatten_dict(flax.core.unfreeze(variables)).items()}


def variable_shapes(model: InceptionV3) -> dict[str, jax.ShapeDtypeStruct]:
  """`model`'s variables in `flatten_variables`' layout, as shapes (nothing is computed or compiled)."""
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 75, 75, 3)))
  return {"/".join(key): value for key, value in flax.traverse_util.flatten_dict(flax.core.unfreeze(shapes)).items()}


def load_inception_variables(path: str | pathlib.Path, model: InceptionV3) -> dict:
  """Reads an `.npz` in `flatten_variables`' layout and checks every shape against `model`'s own variables."""
  expected = variable_shapes(model)
  with np.load(path) as file:
    arrays = dict(file)
  missing = sorted(set(expected) - set(arrays))
  if missing:
    raise ValueError(f"Inception weights {path} lack {len(missing)} arrays, e.g. {missing[:3]}.")
  for key, spec in expected.items():
    if arrays[key].shape != spec.shape:
      raise ValueError(f"Inception weight {key!r} must have shape {spec.shape}, got {arrays[key].shape}.")
  return flax.traverse_util.unflatten_dict({tuple(key.split("/")): jnp.asarray(arrays[key]) for key in expected})
