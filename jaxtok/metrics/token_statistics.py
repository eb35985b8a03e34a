"""Token-level statistics comparing generated token sequences with data: the mean over positions of the total
variation distance between per-position token histograms (a cheap, tokenizer-free check that a generator such as
MaskGIT, Chang et al. 2022, reproduces the data's marginals; it ignores dependencies between positions).
"""
import numpy as np


def position_histograms(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
  """Normalised token histograms per unit: tokens `[n, L]` or `[n, L, C]` int -> `[L * C, vocab_size]` float64."""
  tokens = np.asarray(tokens)
  if tokens.ndim not in (2, 3) or not np.issubdtype(tokens.dtype, np.integer) or len(tokens) == 0:
    raise ValueError(f"tokens must be a non-empty integer [n, length(, codebooks)] array, got {tokens.dtype} "
                     f"{tokens.shape}.")
  if tokens.min() < 0 or tokens.max() >= vocab_size:
    raise ValueError(f"token ids must lie in [0, {vocab_size}), got [{tokens.min()}, {tokens.max()}].")
  units = tokens.reshape(len(tokens), -1)
  counts = np.zeros((units.shape[1], vocab_size))
  np.add.at(counts, (np.broadcast_to(np.arange(units.shape[1]), units.shape), units), 1.0)
  return counts / len(tokens)


def mean_position_tv(samples: np.ndarray, reference: np.ndarray, vocab_size: int) -> float:
  """Mean over positions of TV(p_samples(position), p_reference(position)) = 0.5 * sum |p - q|, in [0, 1].

  samples, reference: `[n, L(, C)]` and `[m, L(, C)]` int token ids (same per-example shape).
  """
  if np.shape(samples)[1:] != np.shape(reference)[1:]:
    raise ValueError(f"samples and reference need the same per-example shape, got {np.shape(samples)} and "
                     f"{np.shape(reference)}.")
  difference = position_histograms(samples, vocab_size) - position_histograms(reference, vocab_size)
  return float(np.mean(0.5 * np.abs(difference).sum(axis=-1)))


def uniform_tokens(rng: np.random.Generator, shape: tuple[int, ...], vocab_size: int) -> np.ndarray:
  """Uniformly random token ids of `shape`, the reference "knows nothing" generator."""
  return rng.integers(0, vocab_size, size=shape, dtype=np.int32)
