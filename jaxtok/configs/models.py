"""Every field of each registered model's linen module, with the module's defaults, for the `model` section.

An experiment passes only the fields it sets differently; the section still holds every field, so any of them can be
overridden from the command line (`--config.model.dtype=bfloat16`). `tests/train/test_config.py` checks these
lists against the modules' own fields and defaults. The generators' `vocab_size` and `sequence_length` default to 0:
the runner takes them from the pre-extracted tokens, as it takes MaskGIT's `num_codebooks` (not a config field, so a
MaskGIT config stays valid for the autoregressive generator, which has none).
"""
from typing import Any

import ml_collections


def _fields(name: str, defaults: dict[str, Any], fields: dict[str, Any]) -> ml_collections.ConfigDict:
  unknown = sorted(set(fields) - set(defaults))
  if unknown:
    raise ValueError(f"{name} has no field(s) {unknown}; its fields: {sorted(defaults)}.")
  return ml_collections.ConfigDict({**defaults, **fields})


def titok(**fields: Any) -> ml_collections.ConfigDict:
  """jaxtok.tokenizers.titok.TiTok (bytedance/1d-tokenizer's layout by default)."""
  return _fields("titok", dict(
      image_size=256, patch_size=16, num_latent_tokens=32, token_dim=12, encoder_size="base", decoder_size="base",
      quantizer=None, decoder_output="proxy_codes_to_pixels", proxy_codebook_size=1024, pixel_code_dim=256,
      pixel_decoder_channels=128, pixel_decoder_multipliers=(1, 1, 2, 2, 4), pixel_decoder_res_blocks=2,
      pixel_decoder_norm_groups=32, legacy_token_projection=True, pixel_range=(-1.0, 1.0), latent_attention="full",
      token_dropout="none", length_distribution="powers_of_two", tail_drop_probability=0.5, dtype="float32",
      attention_implementation="dense", patch_position="learned", input_embedding_scale=1.0), fields)


def conv_vq_autoencoder(**fields: Any) -> ml_collections.ConfigDict:
  """jaxtok.tokenizers.conv_vq.ConvVQAutoencoder."""
  return _fields("conv_vq_autoencoder", dict(channels=(64, 128), blocks_per_level=1, latent_dim=32, quantizer=None),
                 fields)


def vqgan(**fields: Any) -> ml_collections.ConfigDict:
  """jaxtok.tokenizers.maskgit_vqgan.MaskGitVQGAN."""
  return _fields("vqgan", dict(base_channels=128, channel_multipliers=(1, 1, 2, 2, 4), num_res_blocks=2, latent_dim=256,
                               quantizer=None, pixel_range=(-1.0, 1.0), norm_groups=32, dtype="float32"), fields)


def maskgit(*, num_classes: int, **fields: Any) -> ml_collections.ConfigDict:
  """jaxtok.decoders.maskgit.MaskedTokenTransformer (sizes 0 = from the tokens)."""
  return _fields("maskgit", dict(vocab_size=0, sequence_length=0, num_classes=num_classes, width=768, depth=24,
                                 num_heads=16, mlp_dim=3072, dropout_rate=0.1, dtype="float32"), fields)


def autoregressive(*, num_classes: int, **fields: Any) -> ml_collections.ConfigDict:
  """jaxtok.decoders.autoregressive.CausalTokenTransformer (sizes 0 = from the tokens)."""
  return _fields("autoregressive", dict(vocab_size=0, sequence_length=0, num_classes=num_classes, width=768, depth=12,
                                        num_heads=12, mlp_dim=3072, dropout_rate=0.0, dtype="float32"), fields)


def image_bert(*, num_classes: int, **fields: Any) -> ml_collections.ConfigDict:
  """jaxtok.decoders.image_bert.ImageBert, 1d-tokenizer's MaskGIT generator (sizes 0 = from the tokens)."""
  return _fields("image_bert", dict(vocab_size=0, sequence_length=0, num_classes=num_classes, width=768, depth=24,
                                    num_heads=16, mlp_dim=3072, dtype="float32", dropout_rate=0.1), fields)


def uvit_bert(*, num_classes: int, **fields: Any) -> ml_collections.ConfigDict:
  """jaxtok.decoders.image_bert.UViTBert, 1d-tokenizer's U-ViT MaskGIT generator (sizes 0 = from the tokens)."""
  return _fields("uvit_bert", dict(vocab_size=0, sequence_length=0, num_classes=num_classes, width=1024, depth=20,
                                   num_heads=16, mlp_dim=4096, dtype="float32"), fields)
