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

from jaxtok.configs import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  if arg:
    raise ValueError(f"maskgit_imagenet takes no argument, got {arg!r}.")
  config = ml_collections.ConfigDict()
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
  return common.generator(
      "maskgit", config.model, tokenizer_workdir="workdirs/titok_imagenet_b64", tokens=(1_281_024, 50_176),
      optimizer=common.adamw(learning_rate=2e-4, warmup_steps=10_000, end_learning_rate_fraction=0.0,
                             weight_decay=0.03, beta2=0.96),
      num_steps=500_000, batch_size=2048, ema_decay=0.9999, log_every_steps=100, eval_every_steps=10_000,
      eval_batch_size=1024, samples_per_class=2, guidance_scale=2.0, rules_preset="fsdp", checkpoint_every_steps=5_000,
      checkpoint_keep=3)
