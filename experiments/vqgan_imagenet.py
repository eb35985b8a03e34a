"""The MaskGIT-VQGAN 2D baseline at ImageNet scale: 256x256 images -> a 16x16 grid (f16) of tokens from a 1024 x 256
VQ, exactly the official model TiTok distils from (bytedance/1d-tokenizer `PretrainedTokenizer`, 54,515,587
parameters); "f8" is jaxtok's variant with one level fewer (32x32 tokens).

  python -m jaxtok.main --config=experiments/vqgan_imagenet.py:f16 --workdir=gs://.../vqgan_f16 \
      --config.losses.perceptual_weight=0.1 --config.losses.perceptual_weights_path=/path/to/lpips_vgg.npz

Arguments: "f16" (default) or "f8". Data and schedule as experiments/titok_imagenet.py.
"""
from jaxtok.configs import common
from jaxtok.configs import models


def get_config(arg: str | None = None):
  factor = arg or "f16"
  if factor not in ("f16", "f8"):
    raise ValueError(f"Unknown vqgan_imagenet argument {arg!r}; expected 'f16' or 'f8'.")
  model = models.vqgan(channel_multipliers=(1, 1, 2, 2, 4) if factor == "f16" else (1, 2, 2, 4),
                       quantizer={"name": "vq", "codebook_size": 1024, "commitment_cost": 1.0,
                                  "codebook_cost": 0.25},  # the port's weights of the two terms
                       dtype="bfloat16")
  return common.imagenet_tokenizer("vqgan", model)
