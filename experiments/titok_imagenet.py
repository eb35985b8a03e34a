"""TiTok at ImageNet scale (TPU / GPU): exactly the official TiTok-S-128, B-64 or L-32 (bytedance/1d-tokenizer
`configs/infer/TiTok/titok_{s128,b64,l32}.yaml`, `finetune_decoder=True`: the proxy-code head decoded to pixels by
the MaskGIT-VQGAN decoder), 256x256; parameter counts equal to the official ones (83,674,639 / 204,814,095 /
641,054,735; stage 1, `--config.model.decoder_output=proxy_codes`: 52,934,156 / 174,073,612 / 610,314,252).

  python -m jaxtok.main --config=experiments/titok_imagenet.py:B-64 --workdir=gs://.../titok_b64 \
      --config.losses.perceptual_weight=0.1 --config.losses.perceptual_weights_path=/path/to/lpips_vgg.npz

Arguments: "S-128", "B-64" (default) or "L-32", each optionally followed by ",flex" for FlexTok-style nested
dropout with causal latent attention (jaxtok's extension; without the legacy token projection, which mixes tokens).
Training here is end to end with pixel losses (officially: stage 1 trains the proxy-code head against a frozen
MaskGIT-VQGAN's codes, stage 2 fine-tunes the decoder); the released weights load with
`python -m jaxtok.convert --official=titok_l32 ...` (README, "Official weights"). Data: TFDS imagenet2012 (train /
validation), random crops of 0.8-1.0 of the short side resized to 256. Quantizer: VQ 4096 x 12 with l2-normalised
(cosine) lookup, as TiTok. bf16 computation. The adversarial loss (PatchGAN, hinge, adaptive weight) starts at step
200k of 500k.
"""
from jaxtok.configs import common
from jaxtok.configs import models

_SIZES = {"S-128": ("small", 128), "B-64": ("base", 64), "L-32": ("large", 32)}


def get_config(arg: str | None = None):
  name, _, variant = (arg or "B-64").partition(",")
  if name not in _SIZES or variant not in ("", "flex"):
    raise ValueError(f"Unknown titok_imagenet argument {arg!r}; expected one of {tuple(_SIZES)}, optionally "
                     "followed by ',flex'.")
  size, tokens = _SIZES[name]
  flex = variant == "flex"
  model = models.titok(num_latent_tokens=tokens, encoder_size=size, decoder_size=size,
                       quantizer={"name": "vq", "codebook_size": 4096, "distance": "cosine", "commitment_cost": 0.25,
                                  "codebook_cost": 1.0},
                       legacy_token_projection=not flex, latent_attention="causal" if flex else "full",
                       token_dropout="nested_dropout" if flex else "none", dtype="bfloat16")
  return common.imagenet_tokenizer("titok", model)
