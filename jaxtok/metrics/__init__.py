"""Evaluation metrics: image quality (PSNR, SSIM) and codebook usage.

`psnr(images, reconstructions)` and `ssim(...)` take `[batch, h, w, 3]` in [-1, 1] and return `[batch]`;
`CodebookUsage(codebook_size)` accumulates code counts over batches (`update(indices)`, `result()`: usage, dead-code
fraction, perplexity). Submodules: `fid` (InceptionV3 features, Frechet distance), `token_curve` (quality against
the number of tokens kept), `token_statistics` (token histograms of generated sequences), `token_classifier`
(which class a token sequence looks like).
"""
from jaxtok.metrics.codebook import CodebookUsage
from jaxtok.metrics.image_quality import psnr, ssim

__all__ = ["CodebookUsage", "psnr", "ssim"]
