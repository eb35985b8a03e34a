"""The MaskGIT-VQGAN 2D baseline on the embedded photos, CPU-sized: 64x64 crops -> an 8x8 grid (f=8) of FSQ tokens with
32 codes: 64 tokens x 5 bits = 320 bits per image, equal to experiments/titok_photos.py's 32 tokens x 10 bits.

  python -m jaxtok.main --config=experiments/vqgan_photos.py --workdir=workdirs/vqgan_photos

Arguments: "" the baseline; "smoke" a few tiny steps.

Measured (seed 0, pinned photos protocol, EMA weights, 1000 steps of batch 32, `benchmarks/quality_cpu.py
--only=vqgan_photos`; 891 s on the shared 2-core box under a load of ~7-10): 16.37 dB eval PSNR against the
mean-colour baseline's 16.62 dB, codebook usage 100%; step 500: 15.94 dB. Edges and shapes show, colours are off
(pinkish) with blotches: below the baseline at this budget.
"""
import ml_collections

_VARIANTS = ("", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = arg or ""
  if arg not in _VARIANTS:
    raise ValueError(f"Unknown vqgan_photos argument {arg!r}; expected one of {_VARIANTS}.")
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.model_name = "vqgan"
  config.model = ml_collections.ConfigDict()
  config.model.base_channels = 16
  config.model.channel_multipliers = (1, 2, 2, 4)
  config.model.num_res_blocks = 1
  config.model.latent_dim = 2
  config.model.quantizer = ml_collections.ConfigDict({"name": "fsq", "levels": (8, 4)})
  config.model.dtype = "float32"

  config.data = ml_collections.ConfigDict()
  config.data.source = "photos"
  config.data.train_location = ""
  config.data.eval_location = ""
  config.data.train_split = "train"
  config.data.eval_split = "eval"
  config.data.image_size = 64
  config.data.crop_min_fraction = 0.15
  config.data.crop_max_fraction = 0.5
  config.data.random_flip = True
  config.data.batch_size = 32
  config.data.worker_count = 0

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 100
  config.optimizer.end_learning_rate_fraction = 0.1
  config.optimizer.weight_decay = 1e-4
  config.optimizer.beta1 = 0.9
  config.optimizer.beta2 = 0.99
  config.optimizer.grad_clip_norm = 1.0

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 1000
  config.train.reconstruction_loss = "l2"
  config.train.ema_decay = 0.99
  config.train.log_every_steps = 50

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
  config.checkpoint.every_steps = 500
  config.checkpoint.keep = 2

  if arg == "smoke":
    config.model.base_channels = 8
    config.model.channel_multipliers = (1, 2)
    config.data.image_size = 32
    config.data.batch_size = 4
    config.train.num_steps = 4
    config.train.log_every_steps = 2
    config.eval.every_steps = 4
    config.eval.num_images = 8
    config.eval.batch_size = 8
    config.eval.grid_images = 8
    config.checkpoint.every_steps = 4
  return config
