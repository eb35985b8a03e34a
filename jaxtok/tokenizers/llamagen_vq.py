"""LlamaGen's VQ tokenizers (Sun et al. 2024, "Autoregressive Model Beats Diffusion: Llama for Scalable Image
Generation"; FoundationVision/LlamaGen `tokenizer/tokenizer_image/vq_model.py`), layer for layer.

Encoder: 3x3 conv_in, then per level `num_res_blocks` residual blocks (GroupNorm 32 groups eps 1e-6, swish, 3x3
convs, a 1x1 shortcut when the width changes; at the last level each followed by a single-head attention block), a
stride-2 3x3 conv on the image padded by one row and column at the bottom and right between levels; a middle of
residual, attention, residual; GroupNorm, swish, 3x3 conv_out to `z_channels`, and a 1x1 `quant_conv` to the
8-dimensional code space. Codes: l2-normalised inputs and codebook (`jaxtok.quantizers.VectorQuantizer` with
`distance="cosine"`, looked up by `jaxtok.kernels.codebook_lookup`), `[H / f, W / f]` indices in raster order.
Decoder: 1x1 `post_quant_conv`, 3x3 conv_in, the middle, then per level (widest first) `num_res_blocks + 1` residual
blocks (attention after each at the widest level) and a nearest-neighbour 2x upsampling + 3x3 conv, GroupNorm,
swish, 3x3 conv_out.

VQ-16 (f = 16, `channel_multipliers=(1, 1, 2, 2, 4)`, 71,883,403 parameters) and VQ-8 (f = 8, `(1, 2, 2, 4)`,
70,109,835) with a 16384 x 8 codebook are `LLAMAGEN_VQ_MODELS`. Images are NHWC in [-1, 1] (the official code is
NCHW); `jaxtok.convert.llamagen_vq_from_official` loads the released weights.
"""
import math
from typing import Any, Sequence

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok import nn as jnn
from jaxtok import quantizers
from jaxtok.nn import partitioned
from jaxtok.tokenizers import grid_images

LLAMAGEN_VQ_MODELS = {"VQ-16": (1, 1, 2, 2, 4), "VQ-8": (1, 2, 2, 4)}
_CONV_AXES = ("conv_height", "conv_width", "conv_in", "conv_out")


def _conv(features: int, kernel: int, dtype: Any, name: str, *, strides: int = 1) -> nn.Conv:
  """Square conv, zero padding `kernel // 2` on every side, or for stride 2 one row / column at the bottom / right."""
  padding = ((0, 1), (0, 1)) if strides == 2 else kernel // 2
  return nn.Conv(features, (kernel, kernel), strides=strides, padding=padding, dtype=dtype, name=name,
                 kernel_init=partitioned.kernel(_CONV_AXES, nn.initializers.lecun_normal()),
                 bias_init=partitioned.zeros(("conv_out",)))


def _group_norm(dtype: Any, name: str) -> nn.GroupNorm:
  return nn.GroupNorm(num_groups=32, epsilon=1e-6, dtype=dtype, name=name, use_fast_variance=False,
                      scale_init=partitioned.ones(("norm",)), bias_init=partitioned.zeros(("norm",)))


class ResnetBlock(nn.Module):
  """x `[b, h, w, c]` -> `[b, h, w, channels]`: norm, swish, conv, norm, swish, conv, plus x (1x1 conv if c differs)."""
  channels: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = _conv(self.channels, 3, self.dtype, "conv1")(nn.swish(_group_norm(self.dtype, "norm1")(x)))
    h = _conv(self.channels, 3, self.dtype, "conv2")(nn.swish(_group_norm(self.dtype, "norm2")(h)))
    if x.shape[-1] != self.channels:
      x = _conv(self.channels, 1, self.dtype, "nin_shortcut")(x)
    return x + h


class AttnBlock(nn.Module):
  """x `[b, h, w, c]` -> same: x + single-head self-attention (1x1 projections, scale c^-1/2) of norm(x)."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    tokens = einops.rearrange(_group_norm(self.dtype, "norm")(x), "b h w c -> b (h w) c")
    attended = jnn.MultiHeadAttention(1, dtype=self.dtype, name="attention")(tokens)
    return x + einops.rearrange(attended, "b (h w) c -> b h w c", h=x.shape[1])


def _upsample(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x: `[b, h, w, c]` -> `[b, 2h, 2w, c]`."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class Encoder(nn.Module):
  """images `[b, H, W, 3]` -> `[b, H / f, W / f, z_channels]`, f = 2^(len(channel_multipliers) - 1)."""
  base_channels: int
  channel_multipliers: Sequence[int]
  num_res_blocks: int
  z_channels: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = _conv(self.base_channels, 3, self.dtype, "conv_in")(images.astype(self.dtype))
    last = len(self.channel_multipliers) - 1
    for level, multiplier in enumerate(self.channel_multipliers):
      for block in range(self.num_res_blocks):
        x = ResnetBlock(self.base_channels * multiplier, self.dtype, name=f"level{level}_block{block}")(x)
        if level == last:
          x = AttnBlock(self.dtype, name=f"level{level}_attention{block}")(x)
      if level != last:
        x = _conv(x.shape[-1], 3, self.dtype, f"level{level}_downsample", strides=2)(x)
    x = ResnetBlock(x.shape[-1], self.dtype, name="mid_block0")(x)
    x = AttnBlock(self.dtype, name="mid_attention")(x)
    x = ResnetBlock(x.shape[-1], self.dtype, name="mid_block1")(x)
    x = nn.swish(_group_norm(self.dtype, "norm_out")(x))
    return _conv(self.z_channels, 3, self.dtype, "conv_out")(x)


class Decoder(nn.Module):
  """`[b, h, w, z_channels]` -> images `[b, h * f, w * f, 3]`; level names match the encoder's (widest = last)."""
  base_channels: int
  channel_multipliers: Sequence[int]
  num_res_blocks: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    last = len(self.channel_multipliers) - 1
    x = _conv(self.base_channels * self.channel_multipliers[last], 3, self.dtype, "conv_in")(z)
    x = ResnetBlock(x.shape[-1], self.dtype, name="mid_block0")(x)
    x = AttnBlock(self.dtype, name="mid_attention")(x)
    x = ResnetBlock(x.shape[-1], self.dtype, name="mid_block1")(x)
    for level in reversed(range(last + 1)):
      for block in range(self.num_res_blocks + 1):
        x = ResnetBlock(self.base_channels * self.channel_multipliers[level], self.dtype,
                        name=f"level{level}_block{block}")(x)
        if level == last:
          x = AttnBlock(self.dtype, name=f"level{level}_attention{block}")(x)
      if level:
        x = _conv(x.shape[-1], 3, self.dtype, f"level{level}_upsample")(_upsample(x))
    x = nn.swish(_group_norm(self.dtype, "norm_out")(x))
    return _conv(3, 3, self.dtype, "conv_out")(x)


class LlamaGenVQ(nn.Module):
  """LlamaGen's VQ tokenizer: `[H / f, W / f]` grid indices per image, one of `codebook_size` l2-normalised codes.

  Attributes:
    channel_multipliers: widths per level as multiples of base_channels (VQ-16: (1, 1, 2, 2, 4); VQ-8: (1, 2, 2, 4)).
    base_channels, num_res_blocks, z_channels: 128, 2, 256 in every official model.
    codebook_size, codebook_dim: 16384 x 8 in every official model.
    commitment_cost: beta of the commitment loss (the official 0.25; the codebook term has weight 1).
    lookup_impl: `implementation=` of the codebook lookup kernel (None: fastest available).
    dtype: computation dtype, "float32" or "bfloat16" (parameters, codes and the output stay float32).
  """
  channel_multipliers: Sequence[int] = LLAMAGEN_VQ_MODELS["VQ-16"]
  base_channels: int = 128
  num_res_blocks: int = 2
  z_channels: int = 256
  codebook_size: int = 16384
  codebook_dim: int = 8
  commitment_cost: float = 0.25
  lookup_impl: str | None = None
  dtype: str = "float32"

  def setup(self):
    if not self.channel_multipliers or self.num_res_blocks < 1 or self.base_channels % 32:
      raise ValueError(f"LlamaGenVQ needs channel_multipliers, num_res_blocks >= 1 and base_channels divisible by "
                       f"32 (GroupNorm groups), got {self.channel_multipliers}, {self.num_res_blocks}, "
                       f"{self.base_channels}.")
    computation = jnn.compute_dtype(self.dtype)
    multipliers = tuple(self.channel_multipliers)
    self.encoder = Encoder(self.base_channels, multipliers, self.num_res_blocks, self.z_channels, computation)
    self.quant_conv = _conv(self.codebook_dim, 1, jnp.float32, "quant_conv")
    self.quantizer = quantizers.VectorQuantizer(self.codebook_size, distance="cosine",
                                                commitment_cost=self.commitment_cost, codebook_cost=1.0,
                                                lookup_impl=self.lookup_impl)
    self.post_quant_conv = _conv(self.z_channels, 1, computation, "post_quant_conv")
    self.decoder = Decoder(self.base_channels, multipliers, self.num_res_blocks, computation)

  @property
  def downsampling_factor(self) -> int:
    return 2**(len(self.channel_multipliers) - 1)

  @property
  def bits_per_token(self) -> float:
    return math.log2(self.codebook_size)

  def bits_per_image(self, image_size: int) -> float:
    """Grid cells times log2(codebook_size), for square images of side `image_size`."""
    return (image_size // self.downsampling_factor)**2 * self.bits_per_token

  @property
  def last_layer_path(self) -> tuple[str, ...]:
    return ("decoder", "conv_out", "kernel")

  def latents(self, images: jax.Array) -> jax.Array:
    """images `[b, H, W, 3]` -> the code-space vectors before normalisation `[b, H / f, W / f, codebook_dim]`."""
    grid_images.check_grid_images(images, self.downsampling_factor, "LlamaGenVQ")
    return self.quant_conv(self.encoder(images).astype(jnp.float32))

  def encode(self, images: jax.Array, *, train: bool = False) -> tuple[jax.Array, quantizers.QuantizerOutput]:
    """images `[b, H, W, 3]` -> (indices `[b, H / f, W / f]` int32, QuantizerOutput with quantized as a grid)."""
    latents = self.latents(images)
    height, width = latents.shape[1:3]
    output = self.quantizer(einops.rearrange(latents, "b h w d -> b (h w) d"), train=train)
    quantized = einops.rearrange(output.quantized, "b (h w) d -> b h w d", h=height, w=width)
    indices = jnp.reshape(output.indices, (latents.shape[0], height, width))
    return indices, output.replace(quantized=quantized, indices=indices)

  def decode_codes(self, codes: jax.Array) -> jax.Array:
    """Unit code vectors `[b, h, w, codebook_dim]` -> images `[b, h * f, w * f, 3]` float32."""
    return self.decoder(self.post_quant_conv(codes)).astype(jnp.float32)

  def decode_indices(self, indices: jax.Array) -> jax.Array:
    """Grid indices `[b, h, w]` (raster order, as the GPT generates them reshaped) -> images `[b, h * f, w * f, 3]`."""
    if indices.ndim != 3:
      raise ValueError(f"LlamaGenVQ expects grid indices [batch, h, w], got shape {indices.shape}.")
    return self.decode_codes(self.quantizer.indices_to_codes(indices))

  def __call__(self, images: jax.Array, *, train: bool = False) -> tuple[jax.Array, quantizers.QuantizerOutput]:
    """images `[b, H, W, 3]` in [-1, 1] -> (reconstruction, QuantizerOutput)."""
    _, output = self.encode(images, train=train)
    return self.decode_codes(output.quantized), output
