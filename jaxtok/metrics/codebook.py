"""Codebook usage accumulated over a whole evaluation set (host side, NumPy)."""
import numpy as np


class CodebookUsage:
  """Histograms of codes seen across batches, one per codebook.

  Args:
    codebook_size: codes per codebook K.
    num_codebooks: codebooks per token (indices `[..., num_codebooks]`), 1 for indices without that axis.
  """

  def __init__(self, codebook_size: int, num_codebooks: int = 1):
    if codebook_size < 1 or num_codebooks < 1:
      raise ValueError(f"Expected positive codebook_size and num_codebooks, got {codebook_size}, {num_codebooks}.")
    self.codebook_size = codebook_size
    self.counts = np.zeros((num_codebooks, codebook_size), np.int64)

  def update(self, indices: np.ndarray) -> None:
    """Adds integer codes `[...]` (one codebook) or `[..., num_codebooks]`."""
    indices = np.asarray(indices).reshape(-1, self.counts.shape[0])
    if indices.size and (indices.min() < 0 or indices.max() >= self.codebook_size):
      raise ValueError(f"Codes must lie in [0, {self.codebook_size}), got range [{indices.min()}, {indices.max()}].")
    for codebook, codes in enumerate(indices.T):
      self.counts[codebook] += np.bincount(codes, minlength=self.codebook_size)

  def result(self) -> dict[str, float]:
    """Mean over codebooks of: fraction of codes used, its complement (dead codes), and perplexity (exp entropy)."""
    probs = self.counts / np.maximum(self.counts.sum(axis=1, keepdims=True), 1)
    entropy = -np.sum(np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0), axis=1)
    usage = float(np.mean(self.counts > 0))
    return {"codebook_usage": usage, "dead_code_fraction": 1.0 - usage, "perplexity": float(np.mean(np.exp(entropy)))}
