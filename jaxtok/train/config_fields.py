"""Every field of an experiment config that the runner reads, with what it means.

Experiment configs (`experiments/*.py`) set all of them; `check_config` rejects unknown, misspelled or missing
fields. The `model` section is checked against the fields of the model named by `model_name` (jaxtok.registry).
"""
from typing import Any

from jaxtok import config_validation
from jaxtok import registry
from jaxtok.data import pipeline
from jaxtok.losses import settings as loss_settings
from jaxtok.train import proxy_codes
from jaxtok.train import step
from jaxtok.train import warm_start

RUNNER_FIELDS = {
    "seed": "int: seeds parameter initialisation, training randomness and the data order",
    "model_name": "str: a model registered in jaxtok.registry.MODELS",
    "model": "dict: fields of that model's linen module (checked against the model)",
    "data": {
        "source": "str: photos (embedded) | image_folder | array_record | tfds",
        "train_location": "str: '' for photos; folder, ArrayRecord path(s) or TFDS name for the others",
        "eval_location": "str: as train_location, for the evaluation split",
        "train_split": "str: 'train' for photos; the TFDS split name for tfds; ignored otherwise",
        "eval_split": "str: 'eval' for photos; the TFDS split name for tfds; ignored otherwise",
        "image_size": "int: side of the square crops fed to the model (32, 64, 128, 256, ...)",
        "crop_min_fraction": "float: smallest crop side as a fraction of the image's short side",
        "crop_max_fraction": "float: largest crop side as a fraction of the image's short side",
        "random_flip": "bool: mirror training crops left-right at random",
        "batch_size": "int: global training batch size",
        "worker_count": "int: grain worker processes (0 = read in the main process)",
    },
    "optimizer": {
        "learning_rate": "float: peak learning rate",
        "warmup_steps": "int: linear warmup steps from 0 to the peak",
        "end_learning_rate_fraction": "float: final learning rate of the cosine decay, as a fraction of the peak",
        "weight_decay": "float: AdamW decoupled weight decay",
        "beta1": "float: Adam first-moment decay",
        "beta2": "float: Adam second-moment decay",
        "grad_clip_norm": "float: clip gradients to this global norm (0 = off)",
    },
    "train": {
        "num_steps": "int: total optimizer steps (the schedule's length)",
        "reconstruction_loss": "str: l2 | l1",
        "ema_decay": "float: decay of the EMA of weights used for evaluation (0 = no EMA)",
        "log_every_steps": "int: write scalars and update the progress bar every this many steps",
        "pixel_decoder_from": "str: '' or the workdir of a trained MaskGIT-VQGAN: a fresh TiTok run (decoder_output "
                              "proxy_codes_to_pixels) starts its pixel decoder and codebook there (jaxtok.train."
                              "warm_start, the two-stage recipe)",
        "params_from": "str: '' or the workdir of a trained run: a fresh run starts each weight that run has at the "
                       "same path (evaluation weights; e.g. TiTok's stage 2 from its stage 1, jaxtok.train.warm_start)",
        "proxy_codes_from": "str: '' or the workdir of a trained MaskGIT-VQGAN: a TiTok with decoder_output "
                            "proxy_codes learns its codes (TiTok's stage 1, jaxtok.train.proxy_codes)",
    },
    "eval": {
        "every_steps": "int: evaluate every this many steps (and at the end)",
        "num_images": "int: evaluation crops (fixed across evaluations)",
        "batch_size": "int: evaluation batch size",
        "grid_images": "int: images shown in the reconstruction PNG grid",
        "seed": "int: seed of the fixed evaluation crops",
        "crop": "str: random (seeded random windows with data's crop fractions) | center (full-short-side centre "
                "square, one per image: the ImageNet protocol)",
        "inception_weights_path": "str: .npz of InceptionV3 FID weights (jaxtok.metrics.fid layout) to report rFID; "
                                  "'' = no rFID",
    },
    "losses": loss_settings.FIELDS,
    "mesh": {
        "ici_sizes": "(data, fsdp, tensor): mesh axis sizes within a slice/host set; one may be -1 (= the rest)",
        "dcn_sizes": "(data, fsdp, tensor): axis sizes across TPU slices (multi-slice); (1, 1, 1) otherwise",
        "rules_preset": "str: logical-axis rules, data_parallel | fsdp | fsdp_tensor (see jaxtok.sharding)",
        "extra_rules": "tuple of (logical axis, mesh axis or None) pairs overriding the preset, "
                       "e.g. (('codebook', 'tensor'),)",
    },
    "checkpoint": {
        "every_steps": "int: save an orbax checkpoint every this many steps (and at the end)",
        "keep": "int: how many recent checkpoints to keep",
    },
}


def check_config(config: Any) -> None:
  """Raises ConfigError (a ValueError) naming the valid fields if `config` has an unknown, misspelled or missing field."""
  config_validation.check_fields(config, RUNNER_FIELDS, open_sections=("model",))
  registry.build_model(config.model_name, config.model)
  positive = [("train.num_steps", config.train.num_steps), ("data.batch_size", config.data.batch_size),
              ("eval.every_steps", config.eval.every_steps), ("checkpoint.every_steps", config.checkpoint.every_steps),
              ("checkpoint.keep", config.checkpoint.keep), ("train.log_every_steps", config.train.log_every_steps),
              ("eval.num_images", config.eval.num_images), ("eval.batch_size", config.eval.batch_size)]
  for path, value in positive:
    if value < 1:
      raise config_validation.ConfigError(f"Config field {path!r} must be a positive integer, got {value!r}.")
  choices = [("data.source", config.data.source, pipeline.SOURCE_NAMES),
             ("eval.crop", config.eval.crop, pipeline.EVAL_CROPS),
             ("train.reconstruction_loss", config.train.reconstruction_loss, step.RECONSTRUCTION_LOSSES)]
  for path, value, valid in choices:
    if value not in valid:
      raise config_validation.ConfigError(f"Config field {path!r} must be one of {valid}, got {value!r}.")
  if config.losses.perceptual_weight < 0 or config.losses.adversarial_weight < 0:
    raise config_validation.ConfigError("Config fields 'losses.perceptual_weight' and 'losses.adversarial_weight' "
                                        f"must be >= 0, got {config.losses.perceptual_weight!r} and "
                                        f"{config.losses.adversarial_weight!r}.")
  if config.losses.perceptual_weight > 0 and not config.losses.perceptual_weights_path:
    raise config_validation.ConfigError("Config field 'losses.perceptual_weights_path' must name an .npz file when "
                                        "'losses.perceptual_weight' > 0.")
  proxy_codes.check_config(config)
  if config.train.pixel_decoder_from:
    warm_start.check_titok(config)
  if not 0.0 <= config.train.ema_decay < 1.0:
    raise config_validation.ConfigError(f"Config field 'train.ema_decay' must lie in [0, 1), got {config.train.ema_decay!r}.")
