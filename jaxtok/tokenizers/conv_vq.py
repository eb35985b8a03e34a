"""A small convolutional VQ autoencoder: the foundation's quickstart model and a fast CPU baseline.

Encoder: conv stem, then per level residual blocks and a stride-2 downsample; a 1x1 projection to the quantizer's
dimension gives a grid of `[height / 2^levels, width / 2^levels]` tokens. Any quantizer of `jaxtok.quantizers` sits
in the bottleneck, chosen by the `quantizer` config (`{"name": ..., **fields}`). The decoder mirrors the encoder with
nearest-neighbour upsampling.
"""
from typing import Any, Mapping, Sequence

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok import quantizers
from jaxtok.nn import partitioned

_CONV_AXES = ("conv_height", "conv_width", "conv_in", "conv_out")


def _conv(channels: int, kernel_size: tuple[int, int], **kwargs) -> nn.Conv:
  """nn.Conv whose kernel and bias carry logical axis names (see jaxtok.sharding)."""
  return nn.Conv(channels, kernel_size, kernel_init=partitioned.kernel(_CONV_AXES),
                 bias_init=partitioned.zeros(("conv_out",)), **kwargs)


def _group_norm(channels: int) -> nn.GroupNorm:
  return nn.GroupNorm(num_groups=min(8, channels), scale_init=partitioned.ones(("norm",)),
                      bias_init=partitioned.zeros(("norm",)))


class ResidualBlock(nn.Module):
  """GroupNorm -> swish -> 3x3 conv, twice, plus the input. x: `[batch, height, width, channels]`."""

  channels: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = _conv(self.channels, (3, 3))(nn.swish(_group_norm(x.shape[-1])(x)))
    h = _conv(self.channels, (3, 3))(nn.swish(_group_norm(self.channels)(h)))
    if x.shape[-1] != self.channels:
      x = _conv(self.channels, (1, 1))(x)
    return x + h


class ConvEncoder(nn.Module):
  """images `[batch, height, width, 3]` -> latents `[batch, height / 2^levels, width / 2^levels, latent_dim]`."""

  channels: Sequence[int]
  blocks_per_level: int
  latent_dim: int

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = _conv(self.channels[0], (3, 3))(images)
    for channels in self.channels:
      for _ in range(self.blocks_per_level):
        x = ResidualBlock(channels)(x)
      x = _conv(channels, (4, 4), strides=(2, 2))(x)
    x = nn.swish(_group_norm(x.shape[-1])(x))
    return _conv(self.latent_dim, (1, 1))(x)


class ConvDecoder(nn.Module):
  """latents `[batch, h, w, latent_dim]` -> images `[batch, h * 2^levels, w * 2^levels, 3]`."""

  channels: Sequence[int]
  blocks_per_level: int

  @nn.compact
  def __call__(self, latents: jax.Array) -> jax.Array:
    x = _conv(self.channels[-1], (3, 3))(latents)
    for channels in reversed(self.channels):
      x = jax.image.resize(x, (x.shape[0], x.shape[1] * 2, x.shape[2] * 2, x.shape[3]), "nearest")
      x = _conv(channels, (3, 3))(x)
      for _ in range(self.blocks_per_level):
        x = ResidualBlock(channels)(x)
    x = nn.swish(_group_norm(x.shape[-1])(x))
    return _conv(3, (3, 3), name="output")(x)


class ConvVQAutoencoder(nn.Module):
  """Conv encoder -> quantizer over the token grid -> conv decoder.

  Attributes:
    channels: channels per resolution level; the token grid is the image downsampled by 2^len(channels).
    blocks_per_level: residual blocks per level in encoder and decoder.
    quantizer: `{"name": <quantizer name>, **its fields}`, see `jaxtok.quantizers.make_quantizer`; its input
      dimension is the latent dimension.
    latent_dim: channels of the latent grid fed to the quantizer.
  """

  channels: Sequence[int] = (64, 128)
  blocks_per_level: int = 1
  latent_dim: int = 32
  quantizer: Mapping[str, Any] | None = None

  def setup(self):
    if not self.quantizer:
      raise ValueError("ConvVQAutoencoder needs a `quantizer` config such as {'name': 'vq', 'codebook_size': 512}.")
    self.encoder = ConvEncoder(tuple(self.channels), self.blocks_per_level, self.latent_dim)
    self.bottleneck = quantizers.make_quantizer(self.quantizer)
    self.decoder = ConvDecoder(tuple(self.channels), self.blocks_per_level)

  @property
  def codebook_size(self) -> int | None:
    return quantizers.make_quantizer(self.quantizer).codebook_size

  def bits_per_image(self, image_size: int) -> float:
    """Token-grid cells times the quantizer's bits per token, for square images of side `image_size`."""
    bits_per_token = quantizers.make_quantizer(self.quantizer, parent=None).bits_per_token
    return (image_size // 2**len(self.channels))**2 * bits_per_token

  @property
  def last_layer_path(self) -> tuple[str, ...]:
    """Path in "params" of the decoder's output kernel (the adaptive GAN weight's reference layer)."""
    return ("decoder", "output", "kernel")

  def _check_images(self, images: jax.Array) -> None:
    factor = 2**len(self.channels)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] % factor or images.shape[2] % factor:
      raise ValueError(f"Expected images [batch, height, width, 3] with height and width divisible by {factor}, "
                       f"got shape {images.shape}.")

  def encode(self, images: jax.Array, *, train: bool = False) -> tuple[jax.Array, quantizers.QuantizerOutput]:
    """images `[batch, height, width, 3]` -> (token grid indices `[batch, h, w, ...]`, QuantizerOutput)."""
    self._check_images(images)
    latents = self.encoder(images)
    height, width = latents.shape[1:3]
    tokens = einops.rearrange(latents, "b h w d -> b (h w) d")
    output = self.bottleneck(tokens, train=train)
    quantized = einops.rearrange(output.quantized, "b (h w) d -> b h w d", h=height, w=width)
    output = output.replace(quantized=quantized)
    indices = jnp.reshape(output.indices, (latents.shape[0], height, width) + output.indices.shape[2:])
    return indices, output

  def decode_indices(self, indices: jax.Array) -> jax.Array:
    """Token grid indices `[batch, h, w, ...]` -> images `[batch, h * 2^levels, w * 2^levels, 3]`."""
    codes = self.bottleneck.indices_to_codes(indices)
    return self.decoder(codes)

  def __call__(self, images: jax.Array, *, train: bool = False) -> tuple[jax.Array, quantizers.QuantizerOutput]:
    """images `[batch, height, width, 3]` in [-1, 1] -> (reconstruction of the same shape, QuantizerOutput)."""
    _, output = self.encode(images, train=train)
    return self.decoder(output.quantized), output
