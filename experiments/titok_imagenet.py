"""TiTok at ImageNet scale (TPU / GPU): TiTok-S-128, B-64 or L-32 at 256x256, single-stage pixel decoder.

  python -m jaxtok.main --config=experiments/titok_imagenet.py:B-64 --workdir=gs://.../titok_b64 \
      --config.losses.perceptual_weight=0.1 --config.losses.perceptual_weights_path=/path/to/lpips_vgg.npz

Arguments: "S-128", "B-64" (default) or "L-32", each optionally followed by ",flex" for FlexTok-style nested
dropout with causal latent attention. Data: TFDS imagenet2012 (train / validation), random crops of 0.8-1.0 of the
short side resized to 256. Quantizer: VQ 4096 x 12 with l2-normalised (cosine) lookup, as TiTok. bf16 computation.
The adversarial loss (PatchGAN, hinge, adaptive weight) starts at step 200k of 500k.
"""
import ml_collections

from jaxtok.configs import common

_SIZES = {"S-128": ("small", 128), "B-64": ("base", 64), "L-32": ("large", 32)}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  name, _, variant = (arg or "B-64").partition(",")
  if name not in _SIZES or variant not in ("", "flex"):
    raise ValueError(f"Unknown titok_imagenet argument {arg!r}; expected one of {tuple(_SIZES)}, optionally "
                     "followed by ',flex'.")
  size, tokens = _SIZES[name]
  config = ml_collections.ConfigDict()
  config.model = ml_collections.ConfigDict()
  config.model.image_size = 256
  config.model.patch_size = 16
  config.model.num_latent_tokens = tokens
  config.model.token_dim = 12
  config.model.encoder_size = size
  config.model.decoder_size = size
  config.model.quantizer = ml_collections.ConfigDict({"name": "vq", "codebook_size": 4096, "distance": "cosine",
                                                      "commitment_cost": 0.25})
  config.model.decoder_output = "pixels"
  config.model.proxy_codebook_size = 1024
  config.model.latent_attention = "causal" if variant == "flex" else "full"
  config.model.token_dropout = "nested_dropout" if variant == "flex" else "none"
  config.model.length_distribution = "powers_of_two"
  config.model.tail_drop_probability = 0.5
  config.model.dtype = "bfloat16"
  config.model.attention_implementation = "dense"
  return common.imagenet_tokenizer("titok", config.model)
