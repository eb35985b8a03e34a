"""Which class a token sequence looks like: a naive Bayes classifier of per-position tokens, fit on a generator's
training tokens, as a tokenizer-free check that class-conditional samples show their class.

Each class c gets a smoothed histogram per position, p(token | c, position) = (count + smoothing) /
(n_c + smoothing * V); a sequence's class is argmax_c log p(c) + sum over positions of log p(token | c, position).
The accuracy on held-out real sequences is the reference: samples that score as high are as recognisable, to this
classifier, as real crops. Pure NumPy; the table holds classes x positions x vocabulary float64 entries, so
`fits_in_memory` says whether a problem's table stays under `MAX_TABLE_ENTRIES` (ImageNet-sized ones do not).
"""
import dataclasses

import numpy as np

from jaxtok.metrics import token_statistics


MAX_TABLE_ENTRIES = 2**24  # 128 MiB of float64


def fits_in_memory(num_classes: int, positions: int, vocab_size: int) -> bool:
  """Whether the classifier of `num_classes` classes over `positions` tokens of `vocab_size` ids is small enough."""
  return num_classes * positions * vocab_size <= MAX_TABLE_ENTRIES


@dataclasses.dataclass(frozen=True)
class TokenClassifier:
  """log_likelihoods: float64 `[classes, L * C, vocab_size]`; log_priors: float64 `[classes]` (-inf for a class
  without training sequences, which is never predicted)."""
  log_likelihoods: np.ndarray
  log_priors: np.ndarray


def fit(tokens: np.ndarray, labels: np.ndarray, num_classes: int, vocab_size: int,
        smoothing: float = 0.5) -> TokenClassifier:
  """The classifier of `tokens` `[n, L(, C)]` int with `labels` `[n]` int in [0, num_classes)."""
  labels = _checked_labels(tokens, labels, num_classes)
  if smoothing <= 0:
    raise ValueError(f"smoothing must be positive, got {smoothing}.")
  units = np.asarray(tokens).reshape(len(tokens), -1)
  counts = np.zeros((num_classes, units.shape[1], vocab_size))
  for label in np.unique(labels):
    counts[label] = token_statistics.position_histograms(units[labels == label], vocab_size) * np.sum(labels == label)
  smoothed = counts + smoothing
  log_likelihoods = np.log(smoothed) - np.log(smoothed.sum(axis=-1, keepdims=True))
  with np.errstate(divide="ignore"):
    log_priors = np.log(np.bincount(labels, minlength=num_classes) / len(labels))
  return TokenClassifier(log_likelihoods, log_priors)


def log_posteriors(classifier: TokenClassifier, tokens: np.ndarray) -> np.ndarray:
  """Unnormalised log p(class | sequence), float64 `[n, classes]`, of `tokens` `[n, L(, C)]`."""
  units = np.asarray(tokens).reshape(len(tokens), -1)
  _, positions, vocab_size = classifier.log_likelihoods.shape
  if units.shape[1] != positions or units.min() < 0 or units.max() >= vocab_size:
    raise ValueError(f"The classifier takes {positions} token ids in [0, {vocab_size}) per sequence, got "
                     f"{units.shape[1]} in [{units.min()}, {units.max()}].")
  per_position = classifier.log_likelihoods[:, np.arange(positions), units]  # [classes, n, positions]
  return per_position.sum(axis=-1).T + classifier.log_priors


def accuracy(classifier: TokenClassifier, tokens: np.ndarray, labels: np.ndarray) -> float:
  """The fraction of `tokens` `[n, L(, C)]` whose most likely class is their label `[n]`."""
  labels = _checked_labels(tokens, labels, len(classifier.log_priors))
  return float(np.mean(np.argmax(log_posteriors(classifier, tokens), axis=-1) == labels))


def _checked_labels(tokens: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.shape != (len(tokens),) or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"labels must be integers [{len(tokens)}], one per sequence, got {labels.dtype} {labels.shape}.")
  if len(labels) == 0 or labels.min() < 0 or labels.max() >= num_classes:
    found = f"[{labels.min()}, {labels.max()}]" if len(labels) else "none"
    raise ValueError(f"labels must lie in [0, {num_classes}), got {found}.")
  return labels
