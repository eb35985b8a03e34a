"""bytedance/1d-tokenizer's TiTok (`modeling/titok.py`, `modeling/modules/blocks.py`) -> `jaxtok.tokenizers.TiTok`.

`titok_from_official(state_dict, config)` takes the checkpoint's tensors and the official YAML's `model` section
as a plain dict (`OmegaConf.to_container(cfg.model)`, whose `vq_model` entry is read). VQ models only
(`quantize_mode: vq`: TiTok-L-32 / B-64 / S-128 and the BL / SL VQ-8k tokenizers); the VAE variants raise.
Conventions of the converted model: jaxtok's [-1, 1] images in (`pixel_range=(0, 1)`: the official weights see
[0, 1]), `encode` returns the official token ids (`min_encoding_indices` `[batch, 1, K]` as `[batch, K]`),
`decode_indices` returns `2 * y_official - 1`, unclamped.
"""
import dataclasses
from typing import Any, Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from jaxtok.convert import tensors as tensors_lib
from jaxtok.convert import torch_layouts as layouts
from jaxtok.convert import vqgan
from jaxtok.tokenizers import titok
from jaxtok.tokenizers import titok_layers

# Official `{"small": 512, ...}[size]` tables of TiTokEncoder / TiTokDecoder: (width, depth, heads); MLP 4 x width.
OFFICIAL_VIT_SIZES = {"small": (512, 8, 8), "base": (768, 12, 12), "large": (1024, 24, 16)}
KNOWN_FIELDS = {"codebook_size", "token_size", "use_l2_norm", "commitment_cost", "vit_enc_model_size",
                "vit_dec_model_size", "vit_enc_patch_size", "vit_dec_patch_size", "num_latent_tokens",
                "finetune_decoder", "quantize_mode", "is_legacy"}
TRAINING_ONLY_FIELDS = {"pretrained_tokenizer_weight"}  # the MaskGIT-VQGAN that stage-1 training distils from
_VQ4K = {"codebook_size": 4096, "token_size": 12, "use_l2_norm": True, "commitment_cost": 0.25,
         "vit_enc_patch_size": 16, "vit_dec_patch_size": 16, "finetune_decoder": True}
_VQ8K = {"codebook_size": 8192, "token_size": 64, "use_l2_norm": False, "commitment_cost": 0.25,
         "vit_enc_patch_size": 16, "vit_dec_patch_size": 16, "finetune_decoder": False, "is_legacy": False}
# Released files: name -> (quantizer settings, encoder size, decoder size, latent tokens).
_RELEASES = {"titok_l32": (_VQ4K, "large", "large", 32), "titok_b64": (_VQ4K, "base", "base", 64),
             "titok_s128": (_VQ4K, "small", "small", 128), "titok_bl64_vq8k": (_VQ8K, "base", "large", 64),
             "titok_bl128_vq8k": (_VQ8K, "base", "large", 128), "titok_sl256_vq8k": (_VQ8K, "small", "large", 256)}
# The `model` sections (vq_model) of bytedance/1d-tokenizer's configs/infer/TiTok/<name>.yaml, for released files.
OFFICIAL_CONFIGS = {
    name: {"vq_model": {**quantizer, "vit_enc_model_size": encoder, "vit_dec_model_size": decoder,
                        "num_latent_tokens": tokens}}
    for name, (quantizer, encoder, decoder, tokens) in _RELEASES.items()}


def _vq_model(config: Mapping[str, Any]) -> Mapping[str, Any]:
  if "vq_model" not in config:
    raise tensors_lib.ConversionError(f"config must be the official YAML's `model` section (with a `vq_model` "
                                      f"entry), got entries {sorted(config)}.")
  vq_model = config["vq_model"]
  unknown = sorted(set(vq_model) - KNOWN_FIELDS - TRAINING_ONLY_FIELDS)
  if unknown:
    raise tensors_lib.ConversionError(f"vq_model fields {unknown} are not understood by titok_from_official "
                                      f"(known: {sorted(KNOWN_FIELDS)}).")
  if vq_model.get("quantize_mode", "vq") != "vq":
    raise tensors_lib.ConversionError(f"Only VQ TiTok converts; got quantize_mode={vq_model['quantize_mode']!r}.")
  if vq_model["vit_enc_patch_size"] != vq_model["vit_dec_patch_size"]:
    raise tensors_lib.ConversionError(f"jaxtok's TiTok has one patch size; got encoder "
                                      f"{vq_model['vit_enc_patch_size']}, decoder {vq_model['vit_dec_patch_size']}.")
  return vq_model


def _vit_size(name: str, vit_sizes: Mapping[str, Sequence[int]]) -> str | tuple[int, ...]:
  """jaxtok's `encoder_size` / `decoder_size` for an official size name: the same name when jaxtok's table agrees
  (small, base, large), else the custom `(width, depth, heads, mlp_dim)`."""
  if name not in vit_sizes:
    raise tensors_lib.ConversionError(f"Unknown official ViT size {name!r}; known: {sorted(vit_sizes)}.")
  width, depth, heads = vit_sizes[name]
  size = titok_layers.ViTSize(width, depth, heads, 4 * width)
  return name if titok_layers.VIT_SIZES.get(name) == size else dataclasses.astuple(size)


def titok_from_official_config(config: Mapping[str, Any], state_dict: Mapping[str, np.ndarray],
                               vit_sizes: Mapping[str, Sequence[int]] | None = None) -> titok.TiTok:
  """The jaxtok TiTok computing what the official one of `config` computes (image and pixel-decoder sizes are read
  from the tensors' shapes, which the official code takes from the dataset config and a fixed table)."""
  vq_model = _vq_model(config)
  vit_sizes = {**OFFICIAL_VIT_SIZES, **(vit_sizes or {})}
  encoder = _vit_size(vq_model["vit_enc_model_size"], vit_sizes)
  decoder = _vit_size(vq_model["vit_dec_model_size"], vit_sizes)
  patch_size = vq_model["vit_enc_patch_size"]
  tensors = tensors_lib.OfficialTensors(state_dict, source="TiTok checkpoint")
  num_positions = vqgan.shape_of(tensors, "encoder.positional_embedding")[0]
  grid = int(round((num_positions - 1)**0.5))
  if grid * grid != num_positions - 1:
    raise tensors_lib.ConversionError(f"encoder.positional_embedding has {num_positions} rows, not 1 + a square.")
  finetune_decoder = vq_model.get("finetune_decoder", True)
  legacy = vq_model.get("is_legacy", True)
  if finetune_decoder and not legacy:
    raise tensors_lib.ConversionError("finetune_decoder=True needs the legacy proxy-code head (is_legacy=True).")
  fields = {}
  if finetune_decoder:
    sizes = vqgan.read_sizes(tensors, "pixel_decoder", encoder=False)
    fields = {"pixel_code_dim": vqgan.shape_of(tensors, "pixel_quantize.embedding.weight")[1],
              "pixel_decoder_channels": sizes["base_channels"],
              "pixel_decoder_multipliers": sizes["channel_multipliers"],
              "pixel_decoder_res_blocks": sizes["num_res_blocks"]}
  if legacy:
    fields["proxy_codebook_size"] = vqgan.shape_of(tensors, "decoder.ffn.2.weight")[0]
  quantizer = {"name": "vq", "codebook_size": vq_model["codebook_size"],
               "distance": "cosine" if vq_model["use_l2_norm"] else "l2",
               "commitment_cost": vq_model["commitment_cost"], "codebook_cost": 1.0}
  return titok.TiTok(
      image_size=grid * patch_size, patch_size=patch_size, num_latent_tokens=vq_model["num_latent_tokens"],
      token_dim=vq_model["token_size"], encoder_size=encoder, decoder_size=decoder, quantizer=quantizer,
      decoder_output="proxy_codes_to_pixels" if finetune_decoder else ("proxy_codes" if legacy else "pixels"),
      legacy_token_projection=legacy, pixel_range=(0.0, 1.0), **fields)


def _vit(tensors, prefix: str, size: titok_layers.ViTSize) -> dict:
  params = {"pre_norm": layouts.norm(tensors, f"{prefix}.ln_pre", size.width),
            "final_norm": layouts.norm(tensors, f"{prefix}.ln_post", size.width)}
  for depth in range(size.depth):
    params[f"block{depth}"] = layouts.residual_attention_block(tensors, f"{prefix}.transformer.{depth}", size.width,
                                                               size.num_heads, size.mlp_dim)
  return params


def _sequence_embeddings(tensors, prefix: str, model: titok.TiTok, width: int) -> dict:
  num_patches = (model.image_size // model.patch_size)**2
  return {"class_embedding": tensors.take(f"{prefix}.class_embedding", (1, width))[0],
          "positions": tensors.take(f"{prefix}.positional_embedding", (1 + num_patches, width)),
          "latent_positions": tensors.take(f"{prefix}.latent_token_positional_embedding",
                                           (model.num_latent_tokens, width))}


def _encoder(tensors, model: titok.TiTok) -> dict:
  size = titok_layers.vit_size(model.encoder_size)
  patch = layouts.conv2d(tensors, "encoder.patch_embed", 3, size.width, model.patch_size)
  return {"patch_embedding": {"kernel": patch["kernel"].reshape(-1, size.width), "bias": patch["bias"]},
          **_sequence_embeddings(tensors, "encoder", model, size.width),
          "latent_tokens": tensors.take("latent_tokens", (model.num_latent_tokens, size.width)),
          "vit": _vit(tensors, "encoder", size),
          "to_tokens": layouts.conv1x1_as_dense(tensors, "encoder.conv_out", size.width, model.token_dim)}


def _decoder(tensors, model: titok.TiTok) -> dict:
  width = titok_layers.vit_size(model.decoder_size).width
  params = {"from_tokens": layouts.linear(tensors, "decoder.decoder_embed", model.token_dim, width),
            **_sequence_embeddings(tensors, "decoder", model, width),
            "mask_token": tensors.take("decoder.mask_token", (1, 1, width))[0, 0],
            "vit": _vit(tensors, "decoder", titok_layers.vit_size(model.decoder_size))}
  if model.decoder_output == "pixels":
    params["output"] = layouts.conv1x1_as_dense(tensors, "decoder.ffn.0", width, model.patch_size**2 * 3)
    params["conv_out"] = layouts.conv2d(tensors, "decoder.conv_out", 3, 3, 3)
    return params
  params["head_hidden"] = layouts.conv1x1_as_dense(tensors, "decoder.ffn.0", width, 2 * width)
  params["head_output"] = layouts.conv1x1_as_dense(tensors, "decoder.ffn.2", 2 * width, model.proxy_codebook_size)
  if model.decoder_output == "proxy_codes_to_pixels":
    params["pixel_codebook"] = tensors.take("pixel_quantize.embedding.weight",
                                            (model.proxy_codebook_size, model.pixel_code_dim))
    params["pixel_decoder"] = vqgan.decoder_params(
        tensors, "pixel_decoder", model.pixel_decoder_channels, model.pixel_decoder_multipliers,
        model.pixel_decoder_res_blocks, model.pixel_code_dim)
  return params


def titok_from_official(state_dict: Mapping[str, np.ndarray], config: Mapping[str, Any], *,
                        vit_sizes: Mapping[str, Sequence[int]] | None = None) -> tuple[titok.TiTok, dict]:
  """An official TiTok checkpoint -> (TiTok, variables).

  Args:
    state_dict: the official module's tensors (`jaxtok.convert.load_state_dict` of `tokenizer_titok_l32.bin`, ...).
    config: the official YAML's `model` section as a plain dict.
    vit_sizes: overrides of the official `{name: (width, depth, heads)}` ViT table, for models built with a patched
      table (the test fixtures); None for released checkpoints.

  Every tensor is consumed once; a missing, unexpected or mis-shaped one raises `ConversionError` naming it.
  """
  model = titok_from_official_config(config, state_dict, vit_sizes)
  tensors = tensors_lib.OfficialTensors(
      state_dict, source=f"TiTok checkpoint ({_vq_model(config)['num_latent_tokens']} tokens)")
  params = {"encoder": _encoder(tensors, model),
            "bottleneck": {"codebook": tensors.take("quantize.embedding.weight",
                                                    (model.codebook_size, model.token_dim))},
            "decoder": _decoder(tensors, model)}
  tensors.finish()
  return model, tensors_lib.variables_for(model, {"params": params},
                                          jnp.zeros((1, model.image_size, model.image_size, 3)))
