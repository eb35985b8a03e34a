"""MaskGIT-VQGAN, the 2D tokenizer of MaskGIT (Chang et al. 2022) and the one TiTok distils from: a convolutional
encoder down to a grid of tokens at 1/f of the image side (f = 2^(levels - 1), 16 for the official model), any
quantizer of `jaxtok.quantizers` per grid cell (officially VQ, 1024 codes of dimension 256, squared-l2 lookup), and
the mirrored decoder (`jaxtok.nn.maskgit_vqgan_conv`: no attention, average-pool downsampling, bias-free residual
convolutions).

The official model (`experiments/vqgan_imagenet.py`, `jaxtok.convert.vqgan_from_official`): base_channels 128,
channel_multipliers (1, 1, 2, 2, 4), num_res_blocks 2, latent_dim 256, 54,515,587 parameters. Its weights compute on
images in [0, 1]; `pixel_range=(0, 1)` keeps jaxtok's [-1, 1] API around them (inputs mapped to [0, 1] before the
encoder, outputs mapped back, so `decode_indices` returns `2 * y_official - 1`, never clamped).
"""
from typing import Any, Mapping, Sequence

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok import nn as jnn
from jaxtok import quantizers
from jaxtok.nn import maskgit_vqgan_conv
from jaxtok.nn import pixel_range as pixel_range_lib
from jaxtok.tokenizers import grid_images


class MaskGitVQGAN(nn.Module):
  """Convolutional 2D tokenizer: an `[H / f, W / f]` grid of tokens per image.

  Attributes:
    base_channels: channels of the first level (multiples of 32, or below 32 for CPU-sized models).
    channel_multipliers: channels per level as multiples of base_channels; f = 2^(len - 1) ((1, 1, 2, 2, 4): f16).
    num_res_blocks: residual blocks per level and in the middle, in encoder and decoder alike.
    latent_dim: channels of the latent grid, the quantizer's input.
    quantizer: `{"name": <quantizer name>, **its fields}`; the official one is
      `{"name": "vq", "codebook_size": 1024, "commitment_cost": 1.0, "codebook_cost": 0.25}` (the port weighs the
      commitment term 1 and the codebook term 0.25).
    pixel_range: the range the weights compute in: (-1, 1) for jaxtok-trained models, (0, 1) for official weights.
    norm_groups: GroupNorm groups (official: 32, or every channel its own group below 32 channels). A departure for
      narrow CPU-sized models: 32 groups at 16 channels normalise each channel of each image alone, which removes its
      mean colour at every block; `base_channels / 4` keeps the official model's 4 channels per group at level 0.
    dtype: computation dtype, "float32" or "bfloat16" (parameters stay float32).
  """

  base_channels: int = 128
  channel_multipliers: Sequence[int] = (1, 1, 2, 2, 4)
  num_res_blocks: int = 2
  latent_dim: int = 256
  quantizer: Mapping[str, Any] | None = None
  pixel_range: tuple[float, float] = pixel_range_lib.JAXTOK_RANGE
  norm_groups: int = maskgit_vqgan_conv.GROUPS
  dtype: str = "float32"

  def setup(self):
    if not self.quantizer:
      raise ValueError("MaskGitVQGAN needs a `quantizer` config such as {'name': 'vq', 'codebook_size': 1024}.")
    maskgit_vqgan_conv.check_channels(self.base_channels, self.channel_multipliers, self.num_res_blocks,
                                      self.norm_groups)
    pixel_range_lib.check_pixel_range(self.pixel_range)
    computation = jnn.compute_dtype(self.dtype)
    multipliers = tuple(self.channel_multipliers)
    self.encoder = maskgit_vqgan_conv.Encoder(self.base_channels, multipliers, self.num_res_blocks, self.latent_dim,
                                              computation, self.norm_groups)
    self.bottleneck = quantizers.make_quantizer(self.quantizer)
    self.decoder = maskgit_vqgan_conv.Decoder(self.base_channels, multipliers, self.num_res_blocks, computation,
                                              self.norm_groups)

  @property
  def downsampling_factor(self) -> int:
    return 2**(len(self.channel_multipliers) - 1)

  @property
  def codebook_size(self) -> int | None:
    return quantizers.make_quantizer(self.quantizer, parent=None).codebook_size

  def bits_per_image(self, image_size: int) -> float:
    """Grid cells times the quantizer's bits per token, for square images of side `image_size`."""
    bits_per_token = quantizers.make_quantizer(self.quantizer, parent=None).bits_per_token
    return (image_size // self.downsampling_factor)**2 * bits_per_token

  @property
  def last_layer_path(self) -> tuple[str, ...]:
    return ("decoder", "output", "kernel")

  def encode(self, images: jax.Array, *, train: bool = False) -> tuple[jax.Array, quantizers.QuantizerOutput]:
    """images `[batch, H, W, 3]` in [-1, 1] -> (indices `[batch, H / f, W / f, ...]`, QuantizerOutput with quantized
    `[batch, H / f, W / f, latent_dim]`)."""
    grid_images.check_grid_images(images, self.downsampling_factor, "MaskGitVQGAN")
    latents = self.encoder(pixel_range_lib.to_pixel_range(images, self.pixel_range))
    height, width = latents.shape[1:3]
    output = self.bottleneck(einops.rearrange(latents, "b h w d -> b (h w) d"), train=train)
    quantized = einops.rearrange(output.quantized, "b (h w) d -> b h w d", h=height, w=width)
    indices = jnp.reshape(output.indices, (latents.shape[0], height, width) + output.indices.shape[2:])
    return indices, output.replace(quantized=quantized, indices=indices)

  def decode(self, quantized: jax.Array) -> jax.Array:
    """Quantized grid `[batch, h, w, latent_dim]` -> images `[batch, h * f, w * f, 3]` in [-1, 1] (not clamped)."""
    return pixel_range_lib.from_pixel_range(self.decoder(quantized), self.pixel_range)

  def decode_indices(self, indices: jax.Array) -> jax.Array:
    """Grid indices `[batch, h, w, ...]` -> images `[batch, h * f, w * f, 3]`."""
    if indices.ndim < 3:
      raise ValueError(f"MaskGitVQGAN expects grid indices [batch, h, w, ...], got shape {indices.shape}.")
    return self.decode(self.bottleneck.indices_to_codes(indices))

  def __call__(self, images: jax.Array, *, train: bool = False) -> tuple[jax.Array, quantizers.QuantizerOutput]:
    """images `[batch, H, W, 3]` in [-1, 1] -> (reconstruction, QuantizerOutput)."""
    _, output = self.encode(images, train=train)
    return self.decode(output.quantized), output
