"""Evaluation metrics: image quality (PSNR, SSIM) and codebook usage."""
from jaxtok.metrics.codebook import CodebookUsage
from jaxtok.metrics.image_quality import psnr, ssim
