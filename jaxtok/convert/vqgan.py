"""bytedance/1d-tokenizer's MaskGIT-VQGAN (`modeling/modules/maskgit_vqgan.py`, the `PretrainedTokenizer` of
`modeling/titok.py`, released as `maskgit-vqgan-imagenet-f16-256.bin`) -> `jaxtok.tokenizers.MaskGitVQGAN`.

Sizes are read from the tensors (the released model: base 128 channels, multipliers (1, 1, 2, 2, 4), 2 residual
blocks, latent 256, 1024 codes). The converted model takes jaxtok's [-1, 1] images (`pixel_range=(0, 1)`), `encode`
returns the official token ids (`[batch, 16, 16]` for the released model, the official `[batch, 256]` in raster
order) and `decode_indices` returns `2 * y_official - 1`, unclamped (the official `decode` clamps y to [0, 1]).
"""
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxtok.convert import tensors as tensors_lib
from jaxtok.convert import torch_layouts as layouts
from jaxtok.tokenizers import maskgit_vqgan

# The port weighs the commitment term 1 and the codebook term 0.25 (its `commitment_cost=0.25` multiplies the latter).
OFFICIAL_QUANTIZER_LOSS = {"commitment_cost": 1.0, "codebook_cost": 0.25}


def _count(tensors: tensors_lib.OfficialTensors, prefix: str) -> int:
  """How many consecutive `{prefix}{i}.` submodules the tensors hold."""
  count = 0
  while tensors.names_with_prefix(f"{prefix}{count}."):
    count += 1
  return count


def shape_of(tensors: tensors_lib.OfficialTensors, name: str) -> tuple[int, ...]:
  return tuple(tensors.peek(name).shape)


def read_sizes(tensors: tensors_lib.OfficialTensors, prefix: str, encoder: bool) -> dict[str, Any]:
  """(base_channels, channel_multipliers, num_res_blocks) of a MaskGIT-VQGAN encoder / decoder at `prefix`."""
  stage = "down" if encoder else "up"
  levels = _count(tensors, f"{prefix}.{stage}.")
  if levels == 0:
    raise tensors_lib.ConversionError(f"{tensors.source}: no MaskGIT-VQGAN levels under {prefix}.{stage}.")
  num_res_blocks = _count(tensors, f"{prefix}.{stage}.0.block.")
  channels = [shape_of(tensors, f"{prefix}.{stage}.{level}.block.0.conv1.weight")[0] for level in range(levels)]
  base = channels[0]
  if any(c % base for c in channels):
    raise tensors_lib.ConversionError(f"{tensors.source}: level channels {channels} are not multiples of {base}.")
  return {"base_channels": base, "channel_multipliers": tuple(c // base for c in channels),
          "num_res_blocks": num_res_blocks}


def _residual_block(tensors, prefix: str, in_channels: int, out_channels: int) -> dict:
  params = {"norm1": layouts.norm(tensors, f"{prefix}.norm1", in_channels),
            "conv1": layouts.conv2d(tensors, f"{prefix}.conv1", in_channels, out_channels, 3, bias=False),
            "norm2": layouts.norm(tensors, f"{prefix}.norm2", out_channels),
            "conv2": layouts.conv2d(tensors, f"{prefix}.conv2", out_channels, out_channels, 3, bias=False)}
  if in_channels != out_channels:
    params["shortcut"] = layouts.conv2d(tensors, f"{prefix}.nin_shortcut", out_channels, out_channels, 1, bias=False)
  return params


def encoder_params(tensors, prefix: str, base_channels: int, channel_multipliers, num_res_blocks: int,
                   latent_dim: int) -> dict:
  """`maskgit_vqgan.Encoder` at `prefix` -> `jaxtok.nn.maskgit_vqgan_conv.Encoder` parameters."""
  params = {"conv_in": layouts.conv2d(tensors, f"{prefix}.conv_in", 3, base_channels, 3, bias=False)}
  channels = base_channels
  for level, multiplier in enumerate(channel_multipliers):
    for block in range(num_res_blocks):
      out = base_channels * multiplier
      params[f"down{level}_block{block}"] = _residual_block(tensors, f"{prefix}.down.{level}.block.{block}", channels,
                                                            out)
      channels = out
  for block in range(num_res_blocks):
    params[f"mid_block{block}"] = _residual_block(tensors, f"{prefix}.mid.{block}", channels, channels)
  params["norm_out"] = layouts.norm(tensors, f"{prefix}.norm_out", channels)
  params["conv_out"] = layouts.conv2d(tensors, f"{prefix}.conv_out", channels, latent_dim, 1)
  return params


def decoder_params(tensors, prefix: str, base_channels: int, channel_multipliers, num_res_blocks: int,
                   latent_dim: int) -> dict:
  """`maskgit_vqgan.Decoder` at `prefix` -> `jaxtok.nn.maskgit_vqgan_conv.Decoder` parameters."""
  channels = base_channels * channel_multipliers[-1]
  params = {"conv_in": layouts.conv2d(tensors, f"{prefix}.conv_in", latent_dim, channels, 3)}
  for block in range(num_res_blocks):
    params[f"mid_block{block}"] = _residual_block(tensors, f"{prefix}.mid.{block}", channels, channels)
  for level in reversed(range(len(channel_multipliers))):
    for block in range(num_res_blocks):
      out = base_channels * channel_multipliers[level]
      params[f"up{level}_block{block}"] = _residual_block(tensors, f"{prefix}.up.{level}.block.{block}", channels,
                                                          out)
      channels = out
    if level:
      params[f"up{level}_upsample"] = layouts.conv2d(tensors, f"{prefix}.up.{level}.upsample_conv", channels,
                                                     channels, 3)
  params["norm_out"] = layouts.norm(tensors, f"{prefix}.norm_out", channels)
  params["output"] = layouts.conv2d(tensors, f"{prefix}.conv_out", channels, 3, 3)
  return params


def vqgan_from_official(state_dict: dict[str, np.ndarray]) -> tuple[maskgit_vqgan.MaskGitVQGAN, dict]:
  """The official MaskGIT-VQGAN state dict (keys `encoder.*`, `decoder.*`, `quantize.embedding.weight`) ->
  (MaskGitVQGAN, variables). Every tensor is consumed once; missing, unexpected or mis-shaped ones raise
  `ConversionError` naming them."""
  tensors = tensors_lib.OfficialTensors(state_dict, source="MaskGIT-VQGAN checkpoint")
  sizes = read_sizes(tensors, "encoder", encoder=True)
  codebook_size, latent_dim = shape_of(tensors, "quantize.embedding.weight")
  model = maskgit_vqgan.MaskGitVQGAN(
      **sizes, latent_dim=latent_dim, pixel_range=(0.0, 1.0),
      quantizer={"name": "vq", "codebook_size": codebook_size, **OFFICIAL_QUANTIZER_LOSS})
  params = {"encoder": encoder_params(tensors, "encoder", latent_dim=latent_dim, **sizes),
            "decoder": decoder_params(tensors, "decoder", latent_dim=latent_dim, **sizes),
            "bottleneck": {"codebook": tensors.take("quantize.embedding.weight", (codebook_size, latent_dim))}}
  tensors.finish()
  side = 2**(len(sizes["channel_multipliers"]) - 1)
  return model, tensors_lib.variables_for(model, {"params": params}, jnp.zeros((1, side, side, 3)))
