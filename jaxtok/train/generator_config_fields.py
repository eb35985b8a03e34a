"""Every field of a generator experiment config (a model_name whose registry entry names the generator task), with
what it means.

Generator configs (`experiments/maskgit_*.py`, `ar_photos.py`) set all of them; `check_config` rejects unknown,
misspelled or missing fields, and `resolve_model_fields` checks the model's sizes against the pre-extracted tokens.
"""
from typing import Any

from jaxtok import config_validation
from jaxtok import registry
from jaxtok.data import tokens as tokens_lib
from jaxtok.decoders import schedules
from jaxtok.train import config_fields

GENERATOR_FIELDS = {
    "seed": "int: seeds initialisation, masking, dropout, the token order and sampling",
    "model_name": "str: a generator registered in jaxtok.registry.MODELS (maskgit | autoregressive)",
    "model": "dict: fields of that model's linen module; vocab_size / sequence_length = 0 take the tokens' values",
    "tokenizer": {
        "config": "str: the tokenizer's experiment config file (path[:arg]); '' = the config recorded in its workdir",
        "workdir": "str: the tokenizer's training workdir (its checkpoint encodes and decodes; '' = the token files "
                   "exist already and nothing is decoded)",
        "step": "int: tokenizer checkpoint step, -1 = the latest",
    },
    "tokens": {
        "num_train_images": "int: training crops encoded once into <workdir>/tokens/train.npz",
        "num_eval_images": "int: held-out crops (same images, another seed) encoded into <workdir>/tokens/eval.npz",
    },
    "optimizer": config_fields.RUNNER_FIELDS["optimizer"],
    "train": {
        "num_steps": "int: total optimizer steps (the schedule's length)",
        "batch_size": "int: global batch of token sequences",
        "ema_decay": "float: decay of the EMA of weights used for evaluation and sampling (0 = no EMA)",
        "log_every_steps": "int: write scalars and update the progress bar every this many steps",
        "mask_schedule": "str: masking schedule of training, a jaxtok.decoders.schedules name (masked generators)",
        "label_smoothing": "float: label smoothing of the training cross-entropy, in [0, 1)",
        "class_dropout": "float: probability of replacing the class by the null class (for guidance)",
    },
    "sampling": {
        "num_steps": "int: decoding steps (masked generators; autoregressive decodes one token per step)",
        "schedule": "str: masking schedule of decoding, a jaxtok.decoders.schedules name",
        "temperature": "float: temperature of the token distribution",
        "choice_temperature": "float: Gumbel noise on MaskGIT's confidences (annealed to 0)",
        "guidance_scale": "float: classifier-free guidance weight (0 = no guidance, one pass per step)",
        "top_k": "int: keep the k most likely tokens (0 = all)",
        "top_p": "float: nucleus filtering mass (1 = off)",
    },
    "eval": {
        "every_steps": "int: evaluate (held-out loss, samples, token statistic, PNG grid) every this many steps",
        "batch_size": "int: held-out sequences per evaluation batch (num_eval_images must be a multiple)",
        "samples_per_class": "int: sequences sampled per class present in the held-out tokens",
        "inception_weights_path": "str: reserved for generation FID; must be '' (not computed by this runner yet)",
    },
    "mesh": config_fields.RUNNER_FIELDS["mesh"],
    "checkpoint": config_fields.RUNNER_FIELDS["checkpoint"],
}


def _check_positive(config: Any) -> None:
  positive = [("train.num_steps", config.train.num_steps), ("train.batch_size", config.train.batch_size),
              ("train.log_every_steps", config.train.log_every_steps), ("eval.every_steps", config.eval.every_steps),
              ("eval.batch_size", config.eval.batch_size), ("eval.samples_per_class", config.eval.samples_per_class),
              ("tokens.num_train_images", config.tokens.num_train_images),
              ("tokens.num_eval_images", config.tokens.num_eval_images),
              ("sampling.num_steps", config.sampling.num_steps),
              ("checkpoint.every_steps", config.checkpoint.every_steps), ("checkpoint.keep", config.checkpoint.keep)]
  for path, value in positive:
    if value < 1:
      raise config_validation.ConfigError(f"Config field {path!r} must be a positive integer, got {value!r}.")


def check_config(config: Any) -> None:
  """Raises ConfigError naming the valid fields for an unknown, misspelled, missing or out-of-range field."""
  config_validation.check_fields(config, GENERATOR_FIELDS, open_sections=("model",))
  registry.build_model(config.model_name, config.model)
  _check_positive(config)
  for path, value in (("train.mask_schedule", config.train.mask_schedule),
                      ("sampling.schedule", config.sampling.schedule)):
    if value not in schedules.SCHEDULES:
      raise config_validation.ConfigError(f"Config field {path!r} must be one of {schedules.SCHEDULES}, got {value!r}.")
  ranges = [("train.ema_decay", config.train.ema_decay, 0.0, 1.0), ("train.label_smoothing",
            config.train.label_smoothing, 0.0, 1.0), ("train.class_dropout", config.train.class_dropout, 0.0, 1.0001),
            ("sampling.top_p", config.sampling.top_p, 1e-9, 1.0001)]
  for path, value, low, high in ranges:
    if not low <= value < high:
      raise config_validation.ConfigError(f"Config field {path!r} = {value!r} is out of range [{low}, {high:.4g}).")
  if config.sampling.temperature <= 0 or config.sampling.top_k < 0 or config.sampling.guidance_scale < 0:
    raise config_validation.ConfigError("Config fields 'sampling.temperature' > 0, 'sampling.top_k' >= 0 and "
                                        "'sampling.guidance_scale' >= 0 are required, got "
                                        f"{config.sampling.temperature!r}, {config.sampling.top_k!r}, "
                                        f"{config.sampling.guidance_scale!r}.")
  if config.tokens.num_eval_images % config.eval.batch_size:
    raise config_validation.ConfigError(f"Config field 'tokens.num_eval_images' = {config.tokens.num_eval_images} "
                                        f"must be a multiple of 'eval.batch_size' = {config.eval.batch_size}.")
  if config.eval.inception_weights_path:
    raise config_validation.ConfigError("Config field 'eval.inception_weights_path' must be '': generation FID is "
                                        "not computed by the generator runner yet.")


def resolve_model_fields(model_fields: dict[str, Any], train_tokens: tokens_lib.TokenSet) -> dict[str, Any]:
  """The model's fields with vocab_size / sequence_length = 0 filled from the tokens; raises ConfigError on a mismatch.

  num_classes must exceed every label (the null class of guidance is num_classes itself).
  """
  fields = dict(model_fields)
  from_tokens = {"vocab_size": train_tokens.codebook_size, "sequence_length": train_tokens.sequence_length}
  if "num_codebooks" in fields or train_tokens.num_codebooks is not None:
    from_tokens["num_codebooks"] = train_tokens.num_codebooks or 1
  for name, value in from_tokens.items():
    if not fields.get(name):
      fields[name] = value
    elif fields[name] != value:
      raise config_validation.ConfigError(f"Config field 'model.{name}' = {fields[name]} does not match the tokens' "
                                          f"{name} = {value} (tokenizer {train_tokens.tokenizer_workdir}); set it to "
                                          f"{value} or 0 (= take it from the tokens).")
  max_label = int(train_tokens.labels.max())
  if fields["num_classes"] <= max_label:
    raise config_validation.ConfigError(f"Config field 'model.num_classes' = {fields['num_classes']} must exceed the "
                                        f"largest class label of the tokens, {max_label}.")
  return fields
