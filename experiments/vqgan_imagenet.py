"""The MaskGIT-VQGAN 2D baseline at ImageNet scale: 256x256 images -> a 16x16 grid (f16) of tokens from a 1024 x 256
VQ, exactly the official model TiTok distils from (bytedance/1d-tokenizer `PretrainedTokenizer`, 54,515,587
parameters); "f8" is jaxtok's variant with one level fewer (32x32 tokens).

  python -m jaxtok.main --config=experiments/vqgan_imagenet.py:f16 --workdir=gs://.../vqgan_f16 \
      --config.losses.perceptual_weight=0.1 --config.losses.perceptual_weights_path=/path/to/lpips_vgg.npz

Arguments: "f16" (default) or "f8". Data and schedule as experiments/titok_imagenet.py.
"""
import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  factor = arg or "f16"
  if factor not in ("f16", "f8"):
    raise ValueError(f"Unknown vqgan_imagenet argument {arg!r}; expected 'f16' or 'f8'.")
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.model_name = "vqgan"
  config.model = ml_collections.ConfigDict()
  config.model.base_channels = 128
  config.model.channel_multipliers = (1, 1, 2, 2, 4) if factor == "f16" else (1, 2, 2, 4)
  config.model.num_res_blocks = 2
  config.model.latent_dim = 256
  config.model.quantizer = ml_collections.ConfigDict({"name": "vq", "codebook_size": 1024, "commitment_cost": 1.0,
                                                      "codebook_cost": 0.25})  # the port's weights of the two terms
  config.model.pixel_range = (-1.0, 1.0)
  config.model.dtype = "bfloat16"

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
