"""MaskGIT generators at ImageNet scale (TPU / GPU; not trained here) on the tokens of a TiTok (Yu et al. 2024, "An
Image is Worth 32 Tokens for Reconstruction and Generation"), 1000 classes, 4096 codes.

  python -m jaxtok.main --config=experiments/titok_imagenet.py:B-64 --workdir=gs://.../titok_b64
  python -m jaxtok.main --config=experiments/maskgit_imagenet.py:B-64 --workdir=gs://.../maskgit_b64 \
      --config.tokenizer.workdir=gs://.../titok_b64

Arguments: the official generators of 1d-tokenizer, exactly (parameter counts equal to the unit, tested), each with
its TiTok inference YAML's `generator` section and `configs/training/generator/maskgit.yaml`'s training recipe:
- "L-32": `ImageBert` (post-LN BERT, width 768, 24 layers, 16 heads, MLP 3072) on 32 tokens, 177,202,432 parameters;
- "B-64" (default): the same `ImageBert` on 64 tokens, 177,227,008 parameters;
- "S-128": `UViTBert` (U-ViT, width 1024, 20 layers + a middle one, 16 heads, MLP 4096) on 128 tokens, 294,990,848;
- "jaxtok-B-64": jaxtok's pre-LN `MaskedTokenTransformer` of the same size on 64 tokens (its own design, not the
  official model).

Training: AdamW (lr 2e-4, betas 0.9 / 0.96, weight decay 0.03), 10k warmup steps then cosine to 1e-5, batch 2048,
500k steps, gradient clipping 1.0, EMA 0.9999, label smoothing 0.1, class dropout 0.1, arccos masking, bf16
computation with float32 parameters. Departures of jaxtok's runner from the official recipe: the loss is the
cross-entropy of masked tokens only (the official `MLMLoss` also weighs unmasked tokens by 0.1) and the masked count
is ceil(ratio L) (official: round, at least 1).

Sampling: the official values are `OFFICIAL_SAMPLING[arg]` (the arguments of `jaxtok.convert.maskgit.
generate_like_official`, which samples exactly as the official script does). The runner's `sampling` section has no
guidance decay or official token sampling yet; it gets the official schedule, step count, temperature and scale.
"""
import ml_collections

_OFFICIAL = {  # name -> (model_name, sequence_length, width, depth, mlp_dim)
    "L-32": ("image_bert", 32, 768, 24, 3072),
    "B-64": ("image_bert", 64, 768, 24, 3072),
    "S-128": ("uvit_bert", 128, 1024, 20, 4096),
    "jaxtok-B-64": ("maskgit", 64, 768, 24, 3072),
}
# The TiTok inference YAMLs' generator sampling (sample_imagenet_titok.py sets softmax_temperature_annealing).
_ANNEALED = dict(guidance_scale_pow=3.0, softmax_temperature_annealing=True)
OFFICIAL_SAMPLING = {
    "L-32": dict(num_sample_steps=8, randomize_temperature=9.5, guidance_scale=4.5, guidance_decay="linear",
                 **_ANNEALED),
    "B-64": dict(num_sample_steps=8, randomize_temperature=11.0, guidance_scale=3.0, guidance_decay="linear",
                 **_ANNEALED),
    "S-128": dict(num_sample_steps=64, randomize_temperature=2.8, guidance_scale=6.9, guidance_decay="power-cosine",
                  **_ANNEALED),
}
_TOKENIZERS = {"L-32": "L-32", "B-64": "B-64", "S-128": "S-128", "jaxtok-B-64": "B-64"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  name = arg or "B-64"
  if name not in _OFFICIAL:
    raise ValueError(f"Unknown maskgit_imagenet argument {arg!r}; expected one of {tuple(_OFFICIAL)}.")
  model_name, sequence_length, width, depth, mlp_dim = _OFFICIAL[name]
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.model_name = model_name
  config.model = ml_collections.ConfigDict()
  config.model.vocab_size = 4096
  config.model.sequence_length = sequence_length
  config.model.num_classes = 1000
  config.model.width = width
  config.model.depth = depth
  config.model.num_heads = 16
  config.model.mlp_dim = mlp_dim
  if model_name != "uvit_bert":  # the official U-ViT blocks have no dropout
    config.model.dropout_rate = 0.1
  config.model.dtype = "bfloat16"

  tokenizer = _TOKENIZERS[name]
  config.tokenizer = ml_collections.ConfigDict()
  config.tokenizer.config = f"experiments/titok_imagenet.py:{tokenizer}"
  config.tokenizer.workdir = f"workdirs/titok_imagenet_{tokenizer.lower().replace('-', '')}"
  config.tokenizer.step = -1

  config.tokens = ml_collections.ConfigDict()
  config.tokens.num_train_images = 1_281_024
  config.tokens.num_eval_images = 50_176

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.learning_rate = 2e-4
  config.optimizer.warmup_steps = 10_000
  config.optimizer.end_learning_rate_fraction = 1e-5 / 2e-4
  config.optimizer.weight_decay = 0.03
  config.optimizer.beta1 = 0.9
  config.optimizer.beta2 = 0.96
  config.optimizer.grad_clip_norm = 1.0

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 500_000
  config.train.batch_size = 2048
  config.train.ema_decay = 0.9999
  config.train.log_every_steps = 100
  config.train.mask_schedule = "arccos"
  config.train.label_smoothing = 0.1
  config.train.class_dropout = 0.1

  sampling = OFFICIAL_SAMPLING.get(name, OFFICIAL_SAMPLING["B-64"])
  config.sampling = ml_collections.ConfigDict()
  config.sampling.num_steps = sampling["num_sample_steps"]
  config.sampling.schedule = "arccos"
  config.sampling.temperature = 1.0
  config.sampling.choice_temperature = sampling["randomize_temperature"]
  config.sampling.guidance_scale = sampling["guidance_scale"]
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
