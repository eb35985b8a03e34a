"""The runner sections of experiment configs, with the values the experiments share.

A tokenizer experiment is `tokenizer(model_name, model, data=..., optimizer=..., num_steps=..., ...)`; a generator
experiment `generator(...)`. Both return a locked ConfigDict holding every runner field (the runner checks them all,
see jaxtok/train/config_fields.py and generator_config_fields.py); the experiment then changes what differs.
"""
from typing import Any, Sequence

import ml_collections

ConfigDict = ml_collections.ConfigDict


def check_arg(experiment: str, arg: str | None, valid: Sequence[str]) -> str:
  """`arg` ('' for None) when it is '' or one of `valid`; raises ValueError naming them otherwise."""
  arg = arg or ""
  if arg and arg not in valid:
    raise ValueError(f"Unknown {experiment} argument {arg!r}; expected nothing or one of {tuple(valid)}.")
  return arg


def photos_data(*, image_size: int, crop_fractions: tuple[float, float], batch_size: int = 32) -> ConfigDict:
  """The embedded photos (9 train, 3 eval): random crops of `crop_fractions` of the short side, flipped."""
  return ConfigDict(dict(source="photos", train_location="", eval_location="", train_split="train",
                         eval_split="eval", image_size=image_size, crop_min_fraction=crop_fractions[0],
                         crop_max_fraction=crop_fractions[1], random_flip=True, batch_size=batch_size,
                         worker_count=0))


def imagenet_data() -> ConfigDict:
  """TFDS imagenet2012 at 256x256: random crops of 0.8-1.0 of the short side, batch 256, 16 grain workers."""
  return ConfigDict(dict(source="tfds", train_location="imagenet2012", eval_location="imagenet2012",
                         train_split="train", eval_split="validation", image_size=256, crop_min_fraction=0.8,
                         crop_max_fraction=1.0, random_flip=True, batch_size=256, worker_count=16))


def adamw(*, learning_rate: float, warmup_steps: int, end_learning_rate_fraction: float = 0.1,
          weight_decay: float = 1e-4, beta1: float = 0.9, beta2: float = 0.99,
          grad_clip_norm: float = 1.0) -> ConfigDict:
  """The `optimizer` section: AdamW, linear warmup, cosine decay, global-norm clipping."""
  return ConfigDict(dict(learning_rate=learning_rate, warmup_steps=warmup_steps,
                         end_learning_rate_fraction=end_learning_rate_fraction, weight_decay=weight_decay,
                         beta1=beta1, beta2=beta2, grad_clip_norm=grad_clip_norm))


def mesh(rules_preset: str = "data_parallel") -> ConfigDict:
  """Every device on the data axis (data_parallel) or on the fsdp axis (fsdp, fsdp_tensor)."""
  ici_sizes = (-1, 1, 1) if rules_preset == "data_parallel" else (1, -1, 1)
  return ConfigDict(dict(ici_sizes=ici_sizes, dcn_sizes=(1, 1, 1), rules_preset=rules_preset, extra_rules=()))


def _checkpoint(every_steps: int, keep: int) -> ConfigDict:
  return ConfigDict(dict(every_steps=every_steps, keep=keep))


def tokenizer(model_name: str, model: ConfigDict, *, data: ConfigDict, optimizer: ConfigDict, num_steps: int,
              log_every_steps: int, eval_every_steps: int, ema_decay: float = 0.99, eval_num_images: int = 192,
              eval_batch_size: int = 64, eval_crop: str = "random", adversarial_weight: float = 0.0,
              adversarial_start_step: int = 0, checkpoint_keep: int = 2) -> ConfigDict:
  """A tokenizer experiment: l2 reconstruction, no perceptual loss, checkpoints with every evaluation."""
  config = ConfigDict(dict(seed=0, model_name=model_name, model=model, data=data, optimizer=optimizer))
  config.train = ConfigDict(dict(num_steps=num_steps, reconstruction_loss="l2", ema_decay=ema_decay,
                                 log_every_steps=log_every_steps, params_from="",
                                 pixel_decoder_from="", proxy_codes_from=""))
  config.eval = ConfigDict(dict(every_steps=eval_every_steps, num_images=eval_num_images, batch_size=eval_batch_size,
                                grid_images=16, seed=1234, crop=eval_crop, inception_weights_path=""))
  config.losses = ConfigDict(dict(perceptual_weight=0.0, perceptual_weights_path="",
                                  adversarial_weight=adversarial_weight, adversarial_start_step=adversarial_start_step,
                                  discriminator_channels=64, discriminator_layers=3))
  config.mesh = mesh()
  config.checkpoint = _checkpoint(eval_every_steps, checkpoint_keep)
  return config.lock()


def imagenet_tokenizer(model_name: str, model: ConfigDict) -> ConfigDict:
  """A tokenizer trained on ImageNet at 256x256 (TPU / GPU): 500k steps of batch 256, AdamW 1e-4 (10k warmup), EMA
  0.999, the PatchGAN loss from step 200k, evaluated on the 50,000 centre-cropped validation images."""
  return tokenizer(model_name, model, data=imagenet_data(), optimizer=adamw(learning_rate=1e-4, warmup_steps=10_000),
                   num_steps=500_000, log_every_steps=100, eval_every_steps=10_000, ema_decay=0.999,
                   eval_num_images=50_000, eval_batch_size=256, eval_crop="center", adversarial_weight=0.1,
                   adversarial_start_step=200_000, checkpoint_keep=3)


def tokenizer_smoke(config: ConfigDict, *, num_steps: int, batch_size: int, checkpoint_every_steps: int) -> None:
  """Shrinks a tokenizer experiment to `num_steps` tiny steps for tests: logs every 2 steps, evaluates 8 crops at
  the end."""
  config.data.batch_size = batch_size
  config.train.num_steps = num_steps
  config.train.log_every_steps = 2
  config.eval.update(dict(every_steps=num_steps, num_images=8, batch_size=8, grid_images=8))
  config.checkpoint.every_steps = checkpoint_every_steps


def generator(model_name: str, model: ConfigDict, *, tokenizer_workdir: str, tokens: tuple[int, int],
              optimizer: ConfigDict, num_steps: int, batch_size: int, ema_decay: float, log_every_steps: int,
              eval_every_steps: int, eval_batch_size: int, samples_per_class: int, guidance_scale: float = 0.0,
              tokenizer_config: str = "", rules_preset: str = "data_parallel", checkpoint_every_steps: int = 0,
              checkpoint_keep: int = 2) -> ConfigDict:
  """A class-conditional generator trained on the tokens of the tokenizer in `tokenizer_workdir` (its recorded
  config unless `tokenizer_config` names one): `tokens` = (training, held-out) crops encoded once; label smoothing
  and class dropout 0.1; 8 cosine-schedule MaskGIT decoding steps at temperature 1. Checkpoints with every
  evaluation unless `checkpoint_every_steps` says otherwise."""
  config = ConfigDict(dict(seed=0, model_name=model_name, model=model, optimizer=optimizer))
  config.tokenizer = ConfigDict(dict(config=tokenizer_config, workdir=tokenizer_workdir, step=-1))
  config.tokens = ConfigDict(dict(num_train_images=tokens[0], num_eval_images=tokens[1]))
  config.train = ConfigDict(dict(num_steps=num_steps, batch_size=batch_size, ema_decay=ema_decay,
                                 log_every_steps=log_every_steps, mask_schedule="cosine", label_smoothing=0.1,
                                 class_dropout=0.1))
  config.sampling = ConfigDict(dict(num_steps=8, schedule="cosine", temperature=1.0, choice_temperature=4.5,
                                    guidance_scale=guidance_scale, top_k=0, top_p=1.0))
  config.eval = ConfigDict(dict(every_steps=eval_every_steps, batch_size=eval_batch_size,
                                samples_per_class=samples_per_class, inception_weights_path=""))
  config.mesh = mesh(rules_preset)
  config.checkpoint = _checkpoint(checkpoint_every_steps or eval_every_steps, checkpoint_keep)
  return config.lock()


def generator_smoke(config: ConfigDict, **model_fields: Any) -> None:
  """Shrinks a generator experiment to 6 steps of batch 8 on 64 + 16 token sequences for tests, the model to
  `model_fields`."""
  config.model.update(model_fields)
  config.tokens.update(dict(num_train_images=64, num_eval_images=16))
  config.train.update(dict(num_steps=6, batch_size=8, log_every_steps=2))
  config.sampling.num_steps = 4
  config.eval.update(dict(every_steps=6, batch_size=8, samples_per_class=2))
  config.checkpoint.every_steps = 2
