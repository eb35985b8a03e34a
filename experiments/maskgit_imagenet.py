"""MaskGIT at ImageNet scale (TPU / GPU; not trained here): the reference masked token transformer of Chang et al.
2022, "MaskGIT: Masked Generative Image Transformer" (24 layers, width 768, 16 heads) on the 64 tokens (4096 codes) of
a TiTok-B-64 (Yu et al. 2024, "An Image is Worth 32 Tokens for Reconstruction and Generation"), 1000 classes.

  python -m jaxtok.main --config=experiments/titok_imagenet.py:B-64 --workdir=gs://.../titok_b64
  python -m jaxtok.main --config=experiments/maskgit_imagenet.py --workdir=gs://.../maskgit_b64 \
      --config.tokenizer.workdir=gs://.../titok_b64

Tokens: 1.28M training crops of the tokenizer's ImageNet pipeline, encoded once; 50k held-out crops of the same
training images. bf16 computation, float32 parameters; classifier-free guidance at sampling.
"""
import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  if arg:
    raise ValueError(f"maskgit_imagenet takes no argument, got {arg!r}.")
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.model_name = "maskgit"
  config.model = ml_collections.ConfigDict()
  config.model.vocab_size = 4096
  config.model.sequence_length = 64
  config.model.num_classes = 1000
  config.model.width = 768
  config.model.depth = 24
  config.model.num_heads = 16
  config.model.mlp_dim = 3072
  config.model.dropout_rate = 0.1
  config.model.dtype = "bfloat16"

  config.tokenizer = ml_collections.ConfigDict()
  config.tokenizer.config = "experiments/titok_imagenet.py:B-64"
  config.tokenizer.workdir = "workdirs/titok_imagenet_b64"
  config.tokenizer.step = -1

  config.tokens = ml_collections.ConfigDict()
  config.tokens.num_train_images = 1_281_024
  config.tokens.num_eval_images = 50_176

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.learning_rate = 2e-4
  config.optimizer.warmup_steps = 10_000
  config.optimizer.end_learning_rate_fraction = 0.0
  config.optimizer.weight_decay = 0.03
  config.optimizer.beta1 = 0.9
  config.optimizer.beta2 = 0.96
  config.optimizer.grad_clip_norm = 1.0

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 500_000
  config.train.batch_size = 2048
  config.train.ema_decay = 0.9999
  config.train.log_every_steps = 100
  config.train.mask_schedule = "cosine"
  config.train.label_smoothing = 0.1
  config.train.class_dropout = 0.1

  config.sampling = ml_collections.ConfigDict()
  config.sampling.num_steps = 8
  config.sampling.schedule = "cosine"
  config.sampling.temperature = 1.0
  config.sampling.choice_temperature = 4.5
  config.sampling.guidance_scale = 2.0
  config.sampling.top_k = 0
  config.sampling.top_p = 1.0

  config.eval = ml_collections.ConfigDict()
  config.eval.every_steps = 10_000
  config.eval.batch_size = 1024
  config.eval.samples_per_class = 2
  config.eval.inception_weights_path = ""

  config.mesh = ml_collections.ConfigDict()
  config.mesh.ici_sizes = (1, -1, 1)  # fully sharded data parallel
  config.mesh.dcn_sizes = (1, 1, 1)
  config.mesh.rules_preset = "fsdp"
  config.mesh.extra_rules = ()

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 5_000
  config.checkpoint.keep = 3
  return config
