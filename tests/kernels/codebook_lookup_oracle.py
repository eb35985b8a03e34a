"""Float64 NumPy oracle and checks shared by the codebook-lookup tests."""
import numpy as np

# Tolerance on the chosen code's distance, relative to the problem's scale (see `choice_tolerance`).
RELATIVE_TOLERANCE = {("l2", "float32"): 1e-5, ("l2", "bfloat16"): 1e-5,
                      ("cosine", "float32"): 1e-5, ("cosine", "bfloat16"): 2e-2}


def as_float64(x) -> np.ndarray:
  return np.asarray(np.asarray(x).astype(np.float32), np.float64)


def normalize(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def all_distances(z, codebook, distance: str) -> np.ndarray:
  """`[N, K]` float64 distances: squared euclidean for 'l2', 1 - cos for 'cosine'."""
  z, codebook = as_float64(z), as_float64(codebook)
  if distance == "cosine":
    return 1.0 - normalize(z) @ normalize(codebook).T
  return np.sum((z[:, None, :] - codebook[None, :, :]) ** 2, axis=-1)


def choice_tolerance(z, codebook, distance: str) -> np.ndarray:
  """Per-row `[N]` slack on the chosen distance: float rounding of `|c|^2 - 2 z.c` grows with `|z|^2 + |c|^2`."""
  dtype = np.asarray(z).dtype.name
  relative = RELATIVE_TOLERANCE[(distance, "bfloat16" if dtype == "bfloat16" else "float32")]
  if distance == "cosine":
    return np.full(np.asarray(z).shape[0], relative)
  z, codebook = as_float64(z), as_float64(codebook)
  return relative * (np.sum(z * z, axis=1) + np.max(np.sum(codebook * codebook, axis=1)) + 1e-30)


def check_lookup(z, codebook, indices, distances=None, *, distance: str = "l2") -> None:
  """Asserts `indices` pick a true nearest code (within rounding) and `distances` are theirs.

  Indices must match the float64 argmin exactly wherever the runner-up is clearly (2x the tolerance) farther.
  """
  true = all_distances(z, codebook, distance)
  indices = np.asarray(indices)
  rows = np.arange(true.shape[0])
  assert indices.dtype == np.int32, indices.dtype
  assert indices.shape == (true.shape[0],), indices.shape
  assert np.all((indices >= 0) & (indices < true.shape[1])), indices
  tolerance = choice_tolerance(z, codebook, distance)
  best = true.min(axis=1)
  chosen = true[rows, indices]
  assert np.all(chosen <= best + tolerance), np.max((chosen - best) / tolerance)
  if true.shape[1] > 1:
    gap = np.partition(true, 1, axis=1)[:, 1] - best
    clear = gap > 2 * tolerance
    np.testing.assert_array_equal(indices[clear], np.argmin(true, axis=1)[clear])
  if distances is not None:
    np.testing.assert_allclose(np.asarray(distances, np.float64), chosen, rtol=1e-5,
                               atol=1e-5 * (1.0 + float(np.max(np.abs(chosen)))))


def random_problem(rng: np.random.Generator, num_rows: int, dim: int, num_codes: int, *, offset: float = 0.0):
  """Codes and queries with varied norms; `offset` shifts everything away from the origin (harder cancellation)."""
  codebook = rng.normal(size=(num_codes, dim)) * rng.uniform(0.5, 2.0, size=(num_codes, 1)) + offset
  z = rng.normal(size=(num_rows, dim)) * rng.uniform(0.5, 2.0, size=(num_rows, 1)) + offset
  return z.astype(np.float32), codebook.astype(np.float32)


def tied_problem(rng: np.random.Generator, num_rows: int, dim: int, num_codes: int, copies_at: list[int]):
  """Codebook with identical copies of one code at `copies_at`; every query sits near that code."""
  z, codebook = random_problem(rng, num_rows, dim, num_codes)
  codebook[copies_at] = codebook[copies_at[-1]]
  z = codebook[copies_at[-1]] + 1e-3 * rng.normal(size=(num_rows, dim)).astype(np.float32)
  return z.astype(np.float32), codebook
