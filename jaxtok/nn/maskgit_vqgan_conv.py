"""MaskGIT-VQGAN's convolutional encoder and decoder (Chang et al. 2022, google-research/maskgit `vqgan_tokenizer.py`,
as ported in bytedance/1d-tokenizer `modeling/modules/maskgit_vqgan.py`), shared by the 2D tokenizer
(`jaxtok.tokenizers.maskgit_vqgan`) and TiTok's stage-2 pixel decoder.

Taming's VQGAN without its non-local (attention) blocks: per level `num_res_blocks` residual blocks, average-pool
downsampling in the encoder, nearest-neighbour upsampling plus a 3x3 conv in the decoder, `num_res_blocks`
residual blocks in the middle of each; GroupNorm (32 groups, eps 1e-6; `norm_groups` sets the count) and SiLU.
The residual blocks' convolutions have no bias. As in the official code, a block that changes the channel count adds
a bias-free 1x1 projection of its own output (not of its input) as the residual: `h + shortcut(h)`.

Layout: NHWC. Initialisation is jaxtok's (LeCun normal kernels, zero biases); the official weights are loaded by
`jaxtok.convert.vqgan_from_official`.
"""
from typing import Any, Sequence

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok.nn import partitioned

CONV_AXES = ("conv_height", "conv_width", "conv_in", "conv_out")
GROUPS = 32
GROUP_NORM_EPSILON = 1e-6


def conv(features: int, kernel: int, dtype: Any, name: str, use_bias: bool = True) -> nn.Conv:
  """A square stride-1 conv with 'SAME' padding (the official `Conv2dSame` for odd kernels), logical axes named."""
  return nn.Conv(features, (kernel, kernel), padding="SAME", use_bias=use_bias, dtype=dtype, name=name,
                 kernel_init=partitioned.kernel(CONV_AXES, nn.initializers.lecun_normal()),
                 bias_init=partitioned.zeros(("conv_out",)))


def group_norm(channels: int, groups: int, dtype: Any, name: str) -> nn.GroupNorm:
  """GroupNorm with `groups` groups (official: 32; min(groups, channels) below that many channels), eps 1e-6."""
  return nn.GroupNorm(num_groups=min(groups, channels), epsilon=GROUP_NORM_EPSILON, dtype=dtype, name=name,
                      scale_init=partitioned.ones(("norm",)), bias_init=partitioned.zeros(("norm",)))


def check_channels(base_channels: int, channel_multipliers: Sequence[int], num_res_blocks: int,
                   norm_groups: int = GROUPS) -> None:
  """Raises ValueError unless every level's channel count suits the `norm_groups`-group GroupNorm."""
  if not channel_multipliers or base_channels < 1 or num_res_blocks < 1 or min(channel_multipliers) < 1:
    raise ValueError(f"MaskGIT-VQGAN needs channel_multipliers >= 1, base_channels >= 1 and num_res_blocks >= 1, "
                     f"got {tuple(channel_multipliers)}, {base_channels}, {num_res_blocks}.")
  if norm_groups < 1:
    raise ValueError(f"norm_groups must be >= 1, got {norm_groups}.")
  for channels in (base_channels * m for m in channel_multipliers):
    if channels % min(norm_groups, channels):
      raise ValueError(f"GroupNorm splits channels into {norm_groups} groups: every level's channels (base_channels "
                       f"* multiplier) must be a multiple of {norm_groups} or below it, got {channels}.")


class ResidualBlock(nn.Module):
  """x `[batch, h, w, c]` -> `[batch, h, w, channels]`: two (GroupNorm, SiLU, bias-free 3x3 conv), plus x, or plus
  a bias-free 1x1 projection of the result when c != channels (the official layout)."""

  channels: int
  dtype: Any = jnp.float32
  norm_groups: int = GROUPS

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    norm1 = group_norm(x.shape[-1], self.norm_groups, self.dtype, "norm1")
    h = conv(self.channels, 3, self.dtype, "conv1", use_bias=False)(nn.swish(norm1(x)))
    norm2 = group_norm(self.channels, self.norm_groups, self.dtype, "norm2")
    h = conv(self.channels, 3, self.dtype, "conv2", use_bias=False)(nn.swish(norm2(h)))
    if x.shape[-1] != self.channels:
      return h + conv(self.channels, 1, self.dtype, "shortcut", use_bias=False)(h)
    return h + x


class Encoder(nn.Module):
  """images `[batch, H, W, 3]` -> latents `[batch, H / f, W / f, latent_dim]` float32, f = 2^(levels - 1)."""

  base_channels: int = 128
  channel_multipliers: Sequence[int] = (1, 1, 2, 2, 4)
  num_res_blocks: int = 2
  latent_dim: int = 256
  dtype: Any = jnp.float32
  norm_groups: int = GROUPS

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = conv(self.base_channels, 3, self.dtype, "conv_in", use_bias=False)(images.astype(self.dtype))
    last = len(self.channel_multipliers) - 1
    for level, multiplier in enumerate(self.channel_multipliers):
      for block in range(self.num_res_blocks):
        x = ResidualBlock(self.base_channels * multiplier, self.dtype, self.norm_groups,
                          name=f"down{level}_block{block}")(x)
      if level < last:
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    for block in range(self.num_res_blocks):
      x = ResidualBlock(x.shape[-1], self.dtype, self.norm_groups, name=f"mid_block{block}")(x)
    x = nn.swish(group_norm(x.shape[-1], self.norm_groups, self.dtype, "norm_out")(x))
    return conv(self.latent_dim, 1, self.dtype, "conv_out")(x).astype(jnp.float32)


class Decoder(nn.Module):
  """latents `[batch, h, w, latent_dim]` -> images `[batch, h * f, w * f, 3]` float32, f = 2^(levels - 1)."""

  base_channels: int = 128
  channel_multipliers: Sequence[int] = (1, 1, 2, 2, 4)
  num_res_blocks: int = 2
  dtype: Any = jnp.float32
  norm_groups: int = GROUPS

  @nn.compact
  def __call__(self, latents: jax.Array) -> jax.Array:
    channels = self.base_channels * self.channel_multipliers[-1]
    x = conv(channels, 3, self.dtype, "conv_in")(latents.astype(self.dtype))
    for block in range(self.num_res_blocks):
      x = ResidualBlock(channels, self.dtype, self.norm_groups, name=f"mid_block{block}")(x)
    for level in reversed(range(len(self.channel_multipliers))):
      for block in range(self.num_res_blocks):
        x = ResidualBlock(self.base_channels * self.channel_multipliers[level], self.dtype, self.norm_groups,
                          name=f"up{level}_block{block}")(x)
      if level:
        x = einops.repeat(x, "b h w c -> b (h 2) (w 2) c")  # nearest-neighbour x2
        x = conv(x.shape[-1], 3, self.dtype, f"up{level}_upsample")(x)
    x = nn.swish(group_norm(x.shape[-1], self.norm_groups, self.dtype, "norm_out")(x))
    return conv(3, 3, self.dtype, "output")(x).astype(jnp.float32)
