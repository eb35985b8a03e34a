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
import ml_collections

_SIZES = {"S-128": ("small", 128), "B-64": ("base", 64), "L-32": ("large", 32)}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  name, _, variant = (arg or "B-64").partition(",")
  if name not in _SIZES or variant not in ("", "flex"):
    raise ValueError(f"Unknown titok_imagenet argument {arg!r}; expected one of {tuple(_SIZES)}, optionally "
                     "followed by ',flex'.")
  size, tokens = _SIZES[name]
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.model_name = "titok"
  config.model = ml_collections.ConfigDict()
  config.model.image_size = 256
  config.model.patch_size = 16
  config.model.num_latent_tokens = tokens
  config.model.token_dim = 12
  config.model.encoder_size = size
  config.model.decoder_size = size
  config.model.quantizer = ml_collections.ConfigDict({"name": "vq", "codebook_size": 4096, "distance": "cosine",
                                                      "commitment_cost": 0.25, "codebook_cost": 1.0})
  config.model.decoder_output = "proxy_codes_to_pixels"
  config.model.proxy_codebook_size = 1024
  config.model.pixel_code_dim = 256
  config.model.pixel_decoder_channels = 128
  config.model.pixel_decoder_multipliers = (1, 1, 2, 2, 4)
  config.model.pixel_decoder_res_blocks = 2
  config.model.legacy_token_projection = variant != "flex"
  config.model.pixel_range = (-1.0, 1.0)
  config.model.latent_attention = "causal" if variant == "flex" else "full"
  config.model.token_dropout = "nested_dropout" if variant == "flex" else "none"
  config.model.length_distribution = "powers_of_two"
  config.model.tail_drop_probability = 0.5
  config.model.dtype = "bfloat16"
  config.model.attention_implementation = "dense"
  config.model.patch_position = "learned"
  config.model.input_embedding_scale = 1.0

  config.data = ml_collections.ConfigDict()
  config.data.source = "tfds"
  config.data.train_location = "imagenet2012"
  config.data.eval_location = "imagenet2012"
  config.data.train_split = "train"
  config.data.eval_split = "validation"
  config.data.image_size = 256
  config.data.crop_min_fraction = 0.8
  config.data.crop_max_fraction = 1.0
  config.data.random_flip = True
  config.data.batch_size = 256
  config.data.worker_count = 16

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.learning_rate = 1e-4
  config.optimizer.warmup_steps = 10_000
  config.optimizer.end_learning_rate_fraction = 0.1
  config.optimizer.weight_decay = 1e-4
  config.optimizer.beta1 = 0.9
  config.optimizer.beta2 = 0.99
  config.optimizer.grad_clip_norm = 1.0

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 500_000
  config.train.reconstruction_loss = "l2"
  config.train.ema_decay = 0.999
  config.train.log_every_steps = 100

  config.eval = ml_collections.ConfigDict()
  config.eval.every_steps = 10_000
  config.eval.num_images = 50_000
  config.eval.batch_size = 256
  config.eval.grid_images = 16
  config.eval.seed = 1234
  config.eval.crop = "center"
  config.eval.inception_weights_path = ""  # set to report rFID

  config.losses = ml_collections.ConfigDict()
  config.losses.perceptual_weight = 0.0
  config.losses.perceptual_weights_path = ""
  config.losses.adversarial_weight = 0.1
  config.losses.adversarial_start_step = 200_000
  config.losses.discriminator_channels = 64
  config.losses.discriminator_layers = 3

  config.mesh = ml_collections.ConfigDict()
  config.mesh.ici_sizes = (-1, 1, 1)
  config.mesh.dcn_sizes = (1, 1, 1)
  config.mesh.rules_preset = "data_parallel"
  config.mesh.extra_rules = ()

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 10_000
  config.checkpoint.keep = 3
  return config
