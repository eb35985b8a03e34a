"""Quickstart: TiTok with 32 tokens on the embedded photos, about 10 minutes on 2 CPU cores.

  python -m jaxtok.main --config=experiments/quickstart.py --workdir=workdirs/quickstart

32x32 crops -> 16 patches of 8x8 -> 32 latent tokens of an FSQ with 1024 codes (10 bits per token, 320 bits per
image), ViT encoder and decoder of width 128 and depth 2, in the official TiTok layout (class token, ln_pre, exact
GELU, LayerNorm eps 1e-5, the legacy token projection) with the official non-legacy pixel head. Two departures from
the official model, both jaxtok's named options: `patch_position = "sincos"` (fixed 2D sine-cosine patch positions,
official: learned) and `input_embedding_scale = 0.1` (see `jaxtok/tokenizers/titok.py`).

Measured (seed 0, pinned photos protocol, EMA weights, `benchmarks/quality_cpu.py --only=quickstart`; 593 s on the
shared 2-core box under a load of ~10): 20.51 dB eval PSNR against the mean-colour baseline's 18.21 dB (+2.3 dB),
codebook usage 62.9%; 19.36 dB at step 1000, 20.09 at 1500. The former defaults (patch 4, learned positions, 600
steps) reached 17.28 dB, usage 39.8%: below the baseline. Its 2D baseline is experiments/conv_vq_photos.py.
`:smoke` shrinks it to a few steps.
"""
import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.model_name = "titok"
  config.model = ml_collections.ConfigDict()
  config.model.image_size = 32
  config.model.patch_size = 8
  config.model.num_latent_tokens = 32
  config.model.token_dim = 4
  config.model.encoder_size = "tiny"
  config.model.decoder_size = "tiny"
  config.model.quantizer = ml_collections.ConfigDict({"name": "fsq", "levels": (8, 8, 8, 2)})
  config.model.decoder_output = "pixels"
  config.model.proxy_codebook_size = 1024
  config.model.legacy_token_projection = True
  config.model.latent_attention = "full"
  config.model.token_dropout = "none"
  config.model.length_distribution = "powers_of_two"
  config.model.tail_drop_probability = 0.5
  config.model.dtype = "float32"
  config.model.attention_implementation = "dense"
  config.model.patch_position = "sincos"
  config.model.input_embedding_scale = 0.1

  config.data = ml_collections.ConfigDict()
  config.data.source = "photos"
  config.data.train_location = ""
  config.data.eval_location = ""
  config.data.train_split = "train"
  config.data.eval_split = "eval"
  config.data.image_size = 32
  config.data.crop_min_fraction = 0.1
  config.data.crop_max_fraction = 0.4
  config.data.random_flip = True
  config.data.batch_size = 32
  config.data.worker_count = 0

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 50
  config.optimizer.end_learning_rate_fraction = 0.1
  config.optimizer.weight_decay = 1e-4
  config.optimizer.beta1 = 0.9
  config.optimizer.beta2 = 0.99
  config.optimizer.grad_clip_norm = 1.0

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 2000
  config.train.reconstruction_loss = "l2"
  config.train.ema_decay = 0.99
  config.train.log_every_steps = 100

  config.eval = ml_collections.ConfigDict()
  config.eval.every_steps = 500
  config.eval.num_images = 192
  config.eval.batch_size = 64
  config.eval.grid_images = 16
  config.eval.seed = 1234
  config.eval.crop = "random"
  config.eval.inception_weights_path = ""  # set to report rFID

  config.losses = ml_collections.ConfigDict()
  config.losses.perceptual_weight = 0.0
  config.losses.perceptual_weights_path = ""
  config.losses.adversarial_weight = 0.0
  config.losses.adversarial_start_step = 0
  config.losses.discriminator_channels = 64
  config.losses.discriminator_layers = 3

  config.mesh = ml_collections.ConfigDict()
  config.mesh.ici_sizes = (-1, 1, 1)  # data parallel over every device
  config.mesh.dcn_sizes = (1, 1, 1)
  config.mesh.rules_preset = "data_parallel"
  config.mesh.extra_rules = ()

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 1000
  config.checkpoint.keep = 2

  if arg == "smoke":
    config.model.encoder_size = config.model.decoder_size = "micro"
    config.model.num_latent_tokens = 8
    config.data.batch_size = 8
    config.train.num_steps = 6
    config.train.log_every_steps = 2
    config.eval.every_steps = 6
    config.eval.num_images = 8
    config.eval.batch_size = 8
    config.eval.grid_images = 8
    config.checkpoint.every_steps = 2
  elif arg:
    raise ValueError(f"Unknown quickstart argument {arg!r}; expected nothing or 'smoke'.")
  return config
