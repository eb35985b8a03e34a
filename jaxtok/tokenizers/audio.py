"""1D convolutional waveform tokenizer (SoundStream / EnCodec / WavTokenizer family).

Encoder: a 7-tap conv, then per stage a dilated residual unit and a strided conv (kernel 2 x stride), then a conv
to `latent_dim`; the hop (samples per token) is the product of the strides. Any quantizer of `jaxtok.quantizers`
quantizes each frame: one VQ codebook at 40-75 tokens per second (WavTokenizer's argument: hop 320 at 24 kHz is
75 tokens/s, hop 600 is 40), or a residual VQ. The decoder mirrors the encoder with transposed convs. Train with
`jaxtok.losses.multi_resolution_stft_loss` plus an L1 waveform term (`audio_reconstruction_loss`).
"""
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok import nn as jnn
from jaxtok import quantizers
from jaxtok.losses import reconstruction

_CONV_AXES = ("conv_width", "conv_in", "conv_out")


def conv1d(features: int, kernel: int, dtype: Any, name: str, strides: int = 1, dilation: int = 1) -> nn.Conv:
  return nn.Conv(features, (kernel,), strides=(strides,), kernel_dilation=(dilation,), padding="SAME", dtype=dtype,
                 name=name, kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), _CONV_AXES),
                 bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("conv_out",)))


class ResidualUnit(nn.Module):
  """x + 1x1(elu(dilated 3-tap conv(elu(x)))). x: `[batch, frames, channels]`."""

  dilation: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = conv1d(x.shape[-1], 3, self.dtype, "dilated", dilation=self.dilation)(nn.elu(x))
    return x + conv1d(x.shape[-1], 1, self.dtype, "pointwise")(nn.elu(h))


class WaveEncoder(nn.Module):
  """waveforms `[batch, samples]` -> latents `[batch, samples / hop, latent_dim]` float32."""

  channels: Sequence[int]
  strides: Sequence[int]
  latent_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, waveforms: jax.Array) -> jax.Array:
    x = conv1d(self.channels[0], 7, self.dtype, "conv_in")(waveforms[..., None].astype(self.dtype))
    for stage, (channels, stride) in enumerate(zip(self.channels, self.strides, strict=True)):
      x = ResidualUnit(1, self.dtype, name=f"stage{stage}_residual")(x)
      x = conv1d(channels, 2 * stride, self.dtype, f"stage{stage}_down", strides=stride)(nn.elu(x))
    return conv1d(self.latent_dim, 3, self.dtype, "conv_out")(nn.elu(x)).astype(jnp.float32)


class WaveDecoder(nn.Module):
  """latents `[batch, frames, latent_dim]` -> waveforms `[batch, frames * hop]` float32."""

  channels: Sequence[int]
  strides: Sequence[int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, latents: jax.Array) -> jax.Array:
    x = conv1d(self.channels[-1], 7, self.dtype, "conv_in")(latents.astype(self.dtype))
    stages = list(zip(self.channels, self.strides, strict=True))
    for stage, (channels, stride) in reversed(list(enumerate(stages))):
      x = nn.ConvTranspose(channels, (2 * stride,), strides=(stride,), padding="SAME", dtype=self.dtype,
                           name=f"stage{stage}_up",
                           kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), _CONV_AXES),
                           bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("conv_out",)))(nn.elu(x))
      x = ResidualUnit(1, self.dtype, name=f"stage{stage}_residual")(x)
    return conv1d(1, 7, self.dtype, "output")(nn.elu(x))[..., 0].astype(jnp.float32)


class AudioTokenizer(nn.Module):
  """Waveform tokenizer: `samples / hop` tokens per clip.

  Attributes:
    channels: channels after each strided stage (increasing).
    strides: downsampling per stage; hop = product (default 2*4*5*8 = 320: 75 tokens/s at 24 kHz).
    latent_dim: frame dimension, the quantizer's input.
    quantizer: `{"name": <quantizer name>, **its fields}`.
    sample_rate: samples per second of the waveforms (for `tokens_per_second`).
    dtype: computation dtype, "float32" or "bfloat16".
  """

  channels: Sequence[int] = (32, 64, 128, 256)
  strides: Sequence[int] = (2, 4, 5, 8)
  latent_dim: int = 64
  quantizer: Mapping[str, Any] | None = None
  sample_rate: int = 24000
  dtype: str = "float32"

  def setup(self):
    if not self.quantizer:
      raise ValueError("AudioTokenizer needs a `quantizer` config such as {'name': 'vq', 'codebook_size': 4096}.")
    if len(self.channels) != len(self.strides) or min(self.strides, default=0) < 1:
      raise ValueError(f"channels and strides must have one entry per stage, strides >= 1; got {self.channels} and "
                       f"{self.strides}.")
    computation = jnn.compute_dtype(self.dtype)
    self.encoder = WaveEncoder(tuple(self.channels), tuple(self.strides), self.latent_dim, computation)
    self.bottleneck = quantizers.make_quantizer(self.quantizer)
    self.decoder = WaveDecoder(tuple(self.channels), tuple(self.strides), computation)

  @property
  def hop(self) -> int:
    hop = 1
    for stride in self.strides:
      hop *= stride
    return hop

  @property
  def tokens_per_second(self) -> float:
    return self.sample_rate / self.hop

  @property
  def codebook_size(self) -> int | None:
    return quantizers.make_quantizer(self.quantizer, parent=None).codebook_size

  def _check_waveforms(self, waveforms: jax.Array) -> None:
    if waveforms.ndim != 2 or waveforms.shape[1] % self.hop or not jnp.issubdtype(waveforms.dtype, jnp.floating):
      raise ValueError(f"AudioTokenizer expects float waveforms [batch, samples] with samples a multiple of the hop "
                       f"{self.hop}, got shape {waveforms.shape} and dtype {waveforms.dtype}.")

  def encode(self, waveforms: jax.Array, *, train: bool = False) -> tuple[jax.Array, quantizers.QuantizerOutput]:
    """waveforms `[batch, samples]` -> (indices `[batch, samples / hop, ...]`, QuantizerOutput)."""
    self._check_waveforms(waveforms)
    output = self.bottleneck(self.encoder(waveforms), train=train)
    return output.indices, output

  def decode_indices(self, indices: jax.Array) -> jax.Array:
    """indices `[batch, frames, ...]` -> waveforms `[batch, frames * hop]`."""
    return self.decoder(self.bottleneck.indices_to_codes(indices))

  def __call__(self, waveforms: jax.Array, *, train: bool = False) -> tuple[jax.Array, quantizers.QuantizerOutput]:
    """waveforms `[batch, samples]` -> (reconstruction `[batch, samples]`, QuantizerOutput)."""
    _, output = self.encode(waveforms, train=train)
    return self.decoder(output.quantized), output


def audio_reconstruction_loss(waveforms: jax.Array, reconstructions: jax.Array,
                              resolutions: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (256, 64)),
                              l1_weight: float = 1.0) -> jax.Array:
  """Multi-resolution STFT loss plus `l1_weight` times the waveform L1 error."""
  return (reconstruction.multi_resolution_stft_loss(waveforms, reconstructions, resolutions)
          + l1_weight * reconstruction.reconstruction_loss(waveforms, reconstructions, "l1"))
