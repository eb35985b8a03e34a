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

from jaxtok.configs import common

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
  name = common.check_arg("maskgit_imagenet", arg or "B-64", tuple(_OFFICIAL))
  model_name, sequence_length, width, depth, mlp_dim = _OFFICIAL[name]
  model = ml_collections.ConfigDict(dict(vocab_size=4096, sequence_length=sequence_length, num_classes=1000,
                                         width=width, depth=depth, num_heads=16, mlp_dim=mlp_dim, dtype="bfloat16"))
  if model_name != "uvit_bert":  # the official U-ViT blocks have no dropout
    model.dropout_rate = 0.1
  tokenizer = _TOKENIZERS[name]
  sampling = OFFICIAL_SAMPLING.get(name, OFFICIAL_SAMPLING["B-64"])
  config = common.generator(
      model_name, model, tokenizer_workdir=f"workdirs/titok_imagenet_{tokenizer.lower().replace('-', '')}",
      tokenizer_config=f"experiments/titok_imagenet.py:{tokenizer}", tokens=(1_281_024, 50_176),
      optimizer=common.adamw(learning_rate=2e-4, warmup_steps=10_000, end_learning_rate_fraction=1e-5 / 2e-4,
                             weight_decay=0.03, beta2=0.96),
      num_steps=500_000, batch_size=2048, ema_decay=0.9999, log_every_steps=100, eval_every_steps=10_000,
      eval_batch_size=1024, samples_per_class=2, guidance_scale=sampling["guidance_scale"], rules_preset="fsdp",
      checkpoint_every_steps=5_000, checkpoint_keep=3)
  config.train.mask_schedule = "arccos"
  config.sampling.update(dict(num_steps=sampling["num_sample_steps"], schedule="arccos",
                              choice_temperature=sampling["randomize_temperature"]))
  return config
