"""MaskGIT on the embedded photos: a small class-conditional masked token transformer trained on the quickstart
tokenizer's tokens (one class per photo, 12 classes; the held-out tokens are other crops of the same 9 training
photos), minutes on 2 CPU cores. Train the tokenizer first:

  python -m jaxtok.main --config=experiments/quickstart.py --workdir=workdirs/quickstart
  python -m jaxtok.main --config=experiments/maskgit_photos.py --workdir=workdirs/maskgit_photos
  python -m jaxtok.sample --config=experiments/maskgit_photos.py --workdir=workdirs/maskgit_photos

`model.vocab_size` and `model.sequence_length` are 0: taken from the tokens (quickstart's codebook and token count),
so a change of the quickstart tokenizer needs no edit here. `:smoke` shrinks everything for tests and expects the
tokenizer of `conv_vq_photos.py:smoke` (tests point `tokenizer.workdir` at it). The figures in the README were
measured on the conv VQ tokenizer's 8x8 grids: `--config.tokenizer.config=experiments/conv_vq_photos.py
--config.tokenizer.workdir=workdirs/conv_vq_photos`.
"""
import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.model_name = "maskgit"
  config.model = ml_collections.ConfigDict()
  config.model.vocab_size = 0  # 0 = from the tokens
  config.model.sequence_length = 0  # 0 = from the tokens
  config.model.num_classes = 12  # jaxtok.data.photos.PHOTOS
  config.model.width = 128
  config.model.depth = 3
  config.model.num_heads = 4
  config.model.mlp_dim = 256
  config.model.dropout_rate = 0.0
  config.model.dtype = "float32"

  config.tokenizer = ml_collections.ConfigDict()
  config.tokenizer.config = "experiments/quickstart.py"
  config.tokenizer.workdir = "workdirs/quickstart"
  config.tokenizer.step = -1  # the latest

  config.tokens = ml_collections.ConfigDict()
  config.tokens.num_train_images = 8192
  config.tokens.num_eval_images = 512

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 50
  config.optimizer.end_learning_rate_fraction = 0.1
  config.optimizer.weight_decay = 0.03
  config.optimizer.beta1 = 0.9
  config.optimizer.beta2 = 0.96
  config.optimizer.grad_clip_norm = 1.0

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 800
  config.train.batch_size = 64
  config.train.ema_decay = 0.99
  config.train.log_every_steps = 25
  config.train.mask_schedule = "cosine"
  config.train.label_smoothing = 0.1
  config.train.class_dropout = 0.1

  config.sampling = ml_collections.ConfigDict()
  config.sampling.num_steps = 8
  config.sampling.schedule = "cosine"
  config.sampling.temperature = 1.0
  config.sampling.choice_temperature = 4.5
  config.sampling.guidance_scale = 0.0
  config.sampling.top_k = 0
  config.sampling.top_p = 1.0

  config.eval = ml_collections.ConfigDict()
  config.eval.every_steps = 400
  config.eval.batch_size = 128
  config.eval.samples_per_class = 8
  config.eval.inception_weights_path = ""

  config.mesh = ml_collections.ConfigDict()
  config.mesh.ici_sizes = (-1, 1, 1)
  config.mesh.dcn_sizes = (1, 1, 1)
  config.mesh.rules_preset = "data_parallel"
  config.mesh.extra_rules = ()

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 400
  config.checkpoint.keep = 2

  if arg == "smoke":
    config.tokenizer.config = "experiments/conv_vq_photos.py:smoke"
    config.tokenizer.workdir = "workdirs/conv_vq_photos_smoke"
    config.model.width = 16
    config.model.depth = 1
    config.model.num_heads = 2
    config.model.mlp_dim = 32
    config.tokens.num_train_images = 64
    config.tokens.num_eval_images = 16
    config.train.num_steps = 6
    config.train.batch_size = 8
    config.train.log_every_steps = 2
    config.sampling.num_steps = 4
    config.eval.every_steps = 6
    config.eval.batch_size = 8
    config.eval.samples_per_class = 2
    config.checkpoint.every_steps = 2
  elif arg:
    raise ValueError(f"Unknown maskgit_photos argument {arg!r}; expected nothing or 'smoke'.")
  return config
