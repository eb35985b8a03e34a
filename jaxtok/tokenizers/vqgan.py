"""VQGAN-style 2D tokenizer (Esser et al. 2021, as MaskGIT uses it): a convolutional encoder down to a grid of tokens
at 1/f of the image side (f = 2^(levels - 1), 8 or 16 in practice), any quantizer of `jaxtok.quantizers` per grid
cell, and a mirrored decoder with nearest-neighbour upsampling. Residual blocks use GroupNorm (32 groups) and swish;
the lowest resolution has a self-attention block between two residual blocks in encoder and decoder.
"""
from typing import Any, Mapping, Sequence

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok import nn as jnn
from jaxtok import quantizers

_CONV_AXES = ("conv_height", "conv_width", "conv_in", "conv_out")


def conv(features: int, kernel: int, dtype: Any, name: str, strides: int = 1) -> nn.Conv:
  """A square conv with 'SAME'-style padding for odd kernels, parameters named by logical axes."""
  return nn.Conv(features, (kernel, kernel), strides=(strides, strides), dtype=dtype, name=name,
                 padding="SAME" if strides == 1 else ((0, 1), (0, 1)),
                 kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), _CONV_AXES),
                 bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("conv_out",)))


def group_norm(channels: int, dtype: Any, name: str) -> nn.GroupNorm:
  return nn.GroupNorm(num_groups=min(32, channels), dtype=dtype, name=name,
                      scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
                      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)))


class ResidualBlock(nn.Module):
  """x `[batch, h, w, c]` -> `[batch, h, w, channels]`: two (norm, swish, 3x3 conv) plus a (projected) skip."""

  channels: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = conv(self.channels, 3, self.dtype, "conv0")(nn.swish(group_norm(x.shape[-1], self.dtype, "norm0")(x)))
    h = conv(self.channels, 3, self.dtype, "conv1")(nn.swish(group_norm(self.channels, self.dtype, "norm1")(h)))
    if x.shape[-1] != self.channels:
      x = conv(self.channels, 1, self.dtype, "skip")(x)
    return x + h


class AttentionBlock(nn.Module):
  """Single-head self-attention over the h*w positions, in a residual. x `[batch, h, w, c]` -> same."""

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    height = x.shape[1]
    tokens = einops.rearrange(group_norm(x.shape[-1], self.dtype, "norm")(x), "b h w c -> b (h w) c")
    attended = jnn.MultiHeadAttention(1, dtype=self.dtype, name="attention")(tokens)
    return x + einops.rearrange(attended, "b (h w) c -> b h w c", h=height)


class Encoder(nn.Module):
  """images `[batch, H, W, 3]` -> latents `[batch, H / f, W / f, latent_dim]`, f = 2^(len(multipliers) - 1)."""

  base_channels: int
  channel_multipliers: Sequence[int]
  num_res_blocks: int
  latent_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = conv(self.base_channels, 3, self.dtype, "conv_in")(images.astype(self.dtype))
    for level, multiplier in enumerate(self.channel_multipliers):
      for block in range(self.num_res_blocks):
        x = ResidualBlock(self.base_channels * multiplier, self.dtype, name=f"level{level}_block{block}")(x)
      if level < len(self.channel_multipliers) - 1:
        x = conv(x.shape[-1], 3, self.dtype, f"level{level}_downsample", strides=2)(x)
    x = ResidualBlock(x.shape[-1], self.dtype, name="mid_block0")(x)
    x = AttentionBlock(self.dtype, name="mid_attention")(x)
    x = ResidualBlock(x.shape[-1], self.dtype, name="mid_block1")(x)
    x = nn.swish(group_norm(x.shape[-1], self.dtype, "norm_out")(x))
    return conv(self.latent_dim, 1, self.dtype, "conv_out")(x).astype(jnp.float32)


class Decoder(nn.Module):
  """latents `[batch, h, w, latent_dim]` -> images `[batch, h * f, w * f, 3]` float32."""

  base_channels: int
  channel_multipliers: Sequence[int]
  num_res_blocks: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, latents: jax.Array) -> jax.Array:
    channels = self.base_channels * self.channel_multipliers[-1]
    x = conv(channels, 3, self.dtype, "conv_in")(latents.astype(self.dtype))
    x = ResidualBlock(channels, self.dtype, name="mid_block0")(x)
    x = AttentionBlock(self.dtype, name="mid_attention")(x)
    x = ResidualBlock(channels, self.dtype, name="mid_block1")(x)
    for level in reversed(range(len(self.channel_multipliers))):
      for block in range(self.num_res_blocks + 1):
        x = ResidualBlock(self.base_channels * self.channel_multipliers[level], self.dtype,
                          name=f"level{level}_block{block}")(x)
      if level:
        batch, height, width, features = x.shape
        x = jax.image.resize(x, (batch, height * 2, width * 2, features), "nearest")
        x = conv(features, 3, self.dtype, f"level{level}_upsample")(x)
    x = nn.swish(group_norm(x.shape[-1], self.dtype, "norm_out")(x))
    return conv(3, 3, self.dtype, "output")(x).astype(jnp.float32)


class VQGAN(nn.Module):
  """Convolutional 2D tokenizer: an `[H / f, W / f]` grid of tokens per image.

  Attributes:
    base_channels: channels of the first level.
    channel_multipliers: channels per level as multiples of base_channels; f = 2^(len - 1) (MaskGIT f=16:
      (1, 1, 2, 2, 4); f=8: (1, 2, 2, 4)).
    num_res_blocks: residual blocks per level (the decoder has one more, as in taming-transformers).
    latent_dim: channels of the latent grid, the quantizer's input.
    quantizer: `{"name": <quantizer name>, **its fields}`.
    dtype: computation dtype, "float32" or "bfloat16" (parameters stay float32).
  """

  base_channels: int = 128
  channel_multipliers: Sequence[int] = (1, 1, 2, 2, 4)
  num_res_blocks: int = 2
  latent_dim: int = 256
  quantizer: Mapping[str, Any] | None = None
  dtype: str = "float32"

  def setup(self):
    if not self.quantizer:
      raise ValueError("VQGAN needs a `quantizer` config such as {'name': 'vq', 'codebook_size': 1024}.")
    if not self.channel_multipliers or self.base_channels < 1 or self.num_res_blocks < 1:
      raise ValueError(f"VQGAN needs channel_multipliers, base_channels >= 1 and num_res_blocks >= 1, got "
                       f"{self.channel_multipliers}, {self.base_channels}, {self.num_res_blocks}.")
    computation = jnn.compute_dtype(self.dtype)
    multipliers = tuple(self.channel_multipliers)
    self.encoder = Encoder(self.base_channels, multipliers, self.num_res_blocks, self.latent_dim, computation)
    self.bottleneck = quantizers.make_quantizer(self.quantizer)
    self.decoder = Decoder(self.base_channels, multipliers, self.num_res_blocks, computation)

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

  def _check_images(self, images: jax.Array) -> None:
    factor = self.downsampling_factor
    if (images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] % factor or images.shape[2] % factor
        or not jnp.issubdtype(images.dtype, jnp.floating)):
      raise ValueError(f"VQGAN expects float images [batch, height, width, 3] with height and width divisible by "
                       f"{factor}, got shape {images.shape} and dtype {images.dtype}.")

  def encode(self, images: jax.Array, *, train: bool = False) -> tuple[jax.Array, quantizers.QuantizerOutput]:
    """images `[batch, H, W, 3]` -> (indices `[batch, H / f, W / f, ...]`, QuantizerOutput, quantized as a grid)."""
    self._check_images(images)
    latents = self.encoder(images)
    height, width = latents.shape[1:3]
    output = self.bottleneck(einops.rearrange(latents, "b h w d -> b (h w) d"), train=train)
    quantized = einops.rearrange(output.quantized, "b (h w) d -> b h w d", h=height, w=width)
    indices = jnp.reshape(output.indices, (latents.shape[0], height, width) + output.indices.shape[2:])
    return indices, output.replace(quantized=quantized, indices=indices)

  def decode_indices(self, indices: jax.Array) -> jax.Array:
    """Grid indices `[batch, h, w, ...]` -> images `[batch, h * f, w * f, 3]`."""
    if indices.ndim < 3:
      raise ValueError(f"VQGAN expects grid indices [batch, h, w, ...], got shape {indices.shape}.")
    return self.decoder(self.bottleneck.indices_to_codes(indices))

  def __call__(self, images: jax.Array, *, train: bool = False) -> tuple[jax.Array, quantizers.QuantizerOutput]:
    """images `[batch, H, W, 3]` in [-1, 1] -> (reconstruction, QuantizerOutput)."""
    _, output = self.encode(images, train=train)
    return self.decoder(output.quantized), output
