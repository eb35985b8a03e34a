"""A small convolutional VQ autoencoder on the embedded photos, minutes on 2 CPU cores: the fast 2D baseline of the
quickstart's TiTok (and the tokenizer the runner's tests train).

  python -m jaxtok.main --config=experiments/conv_vq_photos.py --workdir=workdirs/conv_vq_photos

32x32 crops -> an 8x8 grid of tokens from a 512-code VQ (9 bits per token, 576 bits per image).
`:smoke` shrinks it to a few steps for tests.
"""
import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.model_name = "conv_vq_autoencoder"
  config.model = ml_collections.ConfigDict()
  config.model.channels = (32, 64)
  config.model.blocks_per_level = 1
  config.model.latent_dim = 32
  config.model.quantizer = ml_collections.ConfigDict()
  config.model.quantizer.name = "vq"
  config.model.quantizer.codebook_size = 512
  config.model.quantizer.distance = "l2"
  config.model.quantizer.commitment_cost = 0.25

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
  config.optimizer.learning_rate = 2e-3
  config.optimizer.warmup_steps = 50
  config.optimizer.end_learning_rate_fraction = 0.1
  config.optimizer.weight_decay = 1e-4
  config.optimizer.beta1 = 0.9
  config.optimizer.beta2 = 0.99
  config.optimizer.grad_clip_norm = 1.0

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 600
  config.train.reconstruction_loss = "l2"
  config.train.ema_decay = 0.99
  config.train.log_every_steps = 25

  config.eval = ml_collections.ConfigDict()
  config.eval.every_steps = 300
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
  config.checkpoint.every_steps = 300
  config.checkpoint.keep = 2

  if arg == "smoke":
    config.model.channels = (8, 16)
    config.model.latent_dim = 8
    config.model.quantizer.codebook_size = 16
    config.data.batch_size = 8
    config.train.num_steps = 6
    config.train.log_every_steps = 2
    config.eval.every_steps = 6
    config.eval.num_images = 8
    config.eval.batch_size = 8
    config.eval.grid_images = 8
    config.checkpoint.every_steps = 2
  elif arg:
    raise ValueError(f"Unknown conv_vq_photos argument {arg!r}; expected nothing or 'smoke'.")
  return config
