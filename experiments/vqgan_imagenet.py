"""VQGAN-style 2D baseline at ImageNet scale (as MaskGIT uses): 256x256 images -> a 16x16 (f16) or 32x32 (f8) grid
of tokens from a 1024-code VQ.

  python -m jaxtok.main --config=experiments/vqgan_imagenet.py:f16 --workdir=gs://.../vqgan_f16 \
      --config.losses.perceptual_weight=0.1 --config.losses.perceptual_weights_path=/path/to/lpips_vgg.npz

Arguments: "f16" (default) or "f8". Data and schedule as experiments/titok_imagenet.py.
"""
import ml_collections

from jaxtok.configs import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  factor = arg or "f16"
  if factor not in ("f16", "f8"):
    raise ValueError(f"Unknown vqgan_imagenet argument {arg!r}; expected 'f16' or 'f8'.")
  config = ml_collections.ConfigDict()
  config.model = ml_collections.ConfigDict()
  config.model.base_channels = 128
  config.model.channel_multipliers = (1, 1, 2, 2, 4) if factor == "f16" else (1, 2, 2, 4)
  config.model.num_res_blocks = 2
  config.model.latent_dim = 256
  config.model.quantizer = ml_collections.ConfigDict({"name": "vq", "codebook_size": 1024, "commitment_cost": 0.25})
  config.model.dtype = "bfloat16"
  return common.imagenet_tokenizer("vqgan", config.model)
