"""The generator task: train a class-conditional token generator on the tokens of a frozen tokenizer, with held-out
loss, samples and the token statistic as its evaluation.

1. Tokens: `tokens.num_train_images` training crops and `tokens.num_eval_images` held-out crops (same images, another
   seed) are encoded once with the tokenizer checkpoint of `tokenizer.workdir` into `<workdir>/tokens/{train,eval}.npz`
   (process 0; the others wait); existing files are reused. With `tokenizer.workdir = ""` the token files must exist
   and nothing is decoded.
2. Training: the model's own `loss(tokens, labels, ...)` on shuffled token batches (`jaxtok.train.generator_step`).
3. Evaluation (at step 0, the untrained model, and every `eval.every_steps`): the held-out loss and accuracy (EMA
   weights, no label smoothing or class dropout, fixed masking keys), `eval.samples_per_class` sequences per
   held-out class from the model's sampler (fixed key), and the token statistic `token_tv` (mean per-position total
   variation between sample and held-out token histograms, `jaxtok.metrics.token_statistics`) beside
   `token_tv_uniform` (uniform random tokens) and `token_tv_train_data` (as many training sequences: the
   finite-sample floor); and whether the samples show their class: `class_accuracy`, the fraction of samples that a
   naive Bayes classifier of per-position tokens fit on the training tokens assigns to the class they were drawn
   for (`jaxtok.metrics.token_classifier`), beside `class_accuracy_held_out` (the same classifier on the held-out
   real sequences: as recognisable as real crops) when its table fits in memory. Decoded samples form the
   `samples` grid, one labelled row per class.

`GeneratorTask` holds all of it; a generator kind subclasses it with its loss options and its sampler:
`MaskGIT` (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer") and `Autoregressive`.
"""
import dataclasses
import functools
import pathlib
from typing import Any, Callable

from absl import logging
import flax.linen as nn
import jax
from jax.experimental import multihost_utils
import numpy as np
import optax

from jaxtok import cli
from jaxtok import config_validation
from jaxtok import registry
from jaxtok.data import tokens as tokens_lib
from jaxtok.decoders import ar_sampling
from jaxtok.decoders import autoregressive as autoregressive_lib
from jaxtok.decoders import masked_sampling
from jaxtok.metrics import token_classifier
from jaxtok.metrics import token_statistics
from jaxtok.train import frozen_tokenizer
from jaxtok.train import generator_config_fields
from jaxtok.train import generator_step
from jaxtok.train import images
from jaxtok.train import task as task_lib
from jaxtok.train.state import TrainState


REFERENCE_SEQUENCES = 3  # held-out sequences decoded at the start of each class row of the sample grids


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
  """The fields of a config's `sampling` section, as static Python values."""
  num_steps: int
  schedule: str
  temperature: float
  choice_temperature: float
  guidance_scale: float
  top_k: int
  top_p: float

  @classmethod
  def from_config(cls, sampling_config: Any) -> "SamplingSettings":
    return cls(**{field.name: sampling_config[field.name] for field in dataclasses.fields(cls)})


class GeneratorTask:
  """See `jaxtok.train.task.Task`. Subclasses give `loss_options` and `sampler`."""
  fields = generator_config_fields.GENERATOR_FIELDS
  batch_fields = ("train.batch_size", "eval.batch_size")
  example_name = "sequences"
  evaluates_untrained = True
  discriminator = None

  def __init__(self, config: Any, workdir: pathlib.Path, mesh: jax.sharding.Mesh):
    self.config, self.workdir, self.mesh = config, workdir, mesh
    self.sampling = SamplingSettings.from_config(config.sampling)
    self._jitted_samplers = {}

  @classmethod
  def check_config(cls, config: Any) -> None:
    generator_config_fields.check_config(config)

  def loss_options(self, training: bool) -> dict[str, Any]:
    """Keyword arguments of `model.loss`: training options, or the plain held-out loss's (`training` False)."""
    raise NotImplementedError

  def sampler(self, variables: Any, key: jax.Array, class_labels: jax.Array,
              return_trajectory: bool) -> masked_sampling.SamplerOutput:
    """Samples token sequences `[b, L(, C)]` for `class_labels` `[b]` (traceable; `sample` jits it); a trajectory
    `[T, b, L(, C)]` or None."""
    raise NotImplementedError

  @functools.cached_property
  def tokenizer(self) -> frozen_tokenizer.FrozenTokenizer | None:
    """The frozen tokenizer of the config's `tokenizer` section, or None when `tokenizer.workdir` is ''."""
    if not self.config.tokenizer.workdir:
      return None
    tokenizer_config = cli.load_config_file(self.config.tokenizer.config) if self.config.tokenizer.config else None
    step = None if self.config.tokenizer.step < 0 else self.config.tokenizer.step
    return frozen_tokenizer.restore(tokenizer_config, self.config.tokenizer.workdir, step)

  @functools.cached_property
  def _tokens(self) -> tuple[tokens_lib.TokenSet, tokens_lib.TokenSet]:
    return prepare_tokens(self.config, self.workdir, self.tokenizer)

  @property
  def train_tokens(self) -> tokens_lib.TokenSet:
    return self._tokens[0]

  @property
  def eval_tokens(self) -> tokens_lib.TokenSet:
    return self._tokens[1]

  @functools.cached_property
  def model(self) -> nn.Module:
    fields = generator_config_fields.resolve_model_fields(self.config.model.to_dict(), self.train_tokens)
    return registry.build_model(self.config.model_name, fields)

  def example_batch(self, size: int) -> tuple[np.ndarray, ...]:
    return (np.zeros((size,) + self.train_tokens.tokens.shape[1:], np.int32), np.zeros((size,), np.int32))

  def start_state(self, state: TrainState) -> TrainState:
    return state

  def train_batches(self):
    return tokens_lib.token_batches(self.train_tokens, batch_size=self.config.train.batch_size // jax.process_count(),
                                    seed=self.config.seed, shard_index=jax.process_index(),
                                    shard_count=jax.process_count())

  def make_train_step(self, optimizer: optax.GradientTransformation,
                      learning_rate_fn: Callable[[jax.Array], jax.Array]) -> task_lib.TrainStep:
    return generator_step.make_train_step(self.model, optimizer, ema_decay=self.config.train.ema_decay,
                                          learning_rate_fn=learning_rate_fn, loss_kwargs=self.loss_options(True))

  @functools.cached_property
  def _eval_step(self):
    return generator_step.make_eval_step(self.model, self.loss_options(False))

  def held_out_loss(self, variables: dict[str, Any]) -> tuple[float, float]:
    """(loss, accuracy) of `variables` on the held-out tokens with the fixed masking keys."""
    size, held_out = self.config.eval.batch_size, self.eval_tokens
    params, model_state = variables["params"], {k: v for k, v in variables.items() if k != "params"}
    results = [self._eval_step(params, model_state, held_out.tokens[i * size:(i + 1) * size],
                               held_out.labels[i * size:(i + 1) * size], generator_step.eval_key(self.config.seed, i))
               for i in range(len(held_out.tokens) // size)]
    return generator_step.mean_over_batches(results)

  @property
  def held_out_classes(self) -> np.ndarray:
    """The classes of the held-out tokens, sorted: one row of samples each."""
    return np.unique(self.eval_tokens.labels)

  @property
  def trained_classes(self) -> np.ndarray:
    """The classes of the training tokens, sorted: the only ones the generator has learned."""
    return np.unique(self.train_tokens.labels)

  def class_label(self, label: int) -> str:
    """`label` with its class name when the tokens name their classes ("3 motorcycle_right")."""
    names = self.train_tokens.class_names
    return f"{label} {names[label]}" if label < len(names) else f"class {label}"

  def sample(self, variables: Any, key: jax.Array, class_labels: np.ndarray,
             return_trajectory: bool = False) -> masked_sampling.SamplerOutput:
    """The sampler, jitted, on `class_labels` `[b]`."""
    if return_trajectory not in self._jitted_samplers:
      self._jitted_samplers[return_trajectory] = jax.jit(
          functools.partial(self.sampler, return_trajectory=return_trajectory))
    return self._jitted_samplers[return_trajectory](variables, key, np.asarray(class_labels, np.int32))

  def token_statistics(self, samples: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The token statistic of `samples` `[n, L(, C)]` and of its uniform-token and training-data references (same
    count), and the class accuracies of the samples (drawn for `labels` `[n]`) and of the held-out sequences."""
    vocab, reference, count = self.train_tokens.codebook_size, self.eval_tokens.tokens, len(samples)
    rng = np.random.default_rng(self.config.seed)
    train = self.train_tokens.tokens
    train_subset = train[rng.choice(len(train), count, replace=count > len(train))]  # distinct while there are enough
    uniform = token_statistics.uniform_tokens(rng, samples.shape, vocab)
    statistics = {"token_tv": token_statistics.mean_position_tv(samples, reference, vocab),
                  "token_tv_uniform": token_statistics.mean_position_tv(uniform, reference, vocab),
                  "token_tv_train_data": token_statistics.mean_position_tv(train_subset, reference, vocab)}
    if self.class_classifier is not None:
      statistics.update(class_accuracy=token_classifier.accuracy(self.class_classifier, samples, labels),
                        class_accuracy_held_out=self.held_out_class_accuracy)
    return statistics

  @functools.cached_property
  def class_classifier(self) -> token_classifier.TokenClassifier | None:
    """The naive Bayes classifier of the training tokens, or None when its table would not fit in memory."""
    train, num_classes = self.train_tokens, self.model.num_classes
    positions = int(np.prod(train.tokens.shape[1:]))
    if not token_classifier.fits_in_memory(num_classes, positions, train.codebook_size):
      return None
    return token_classifier.fit(train.tokens, train.labels, num_classes, train.codebook_size)

  @functools.cached_property
  def held_out_class_accuracy(self) -> float:
    """`class_classifier`'s accuracy on the held-out sequences (fixed for a run: computed once)."""
    return token_classifier.accuracy(self.class_classifier, self.eval_tokens.tokens, self.eval_tokens.labels)

  def held_out_references(self, classes: np.ndarray) -> np.ndarray:
    """The first `REFERENCE_SEQUENCES` held-out sequences of each class `[classes, k, L(, C)]`, what samples of it
    should look like (a class with fewer repeats its last; one with none raises)."""
    held_out = self.eval_tokens
    rows = []
    for label in classes:
      mine = held_out.tokens[held_out.labels == label]
      if not len(mine):
        raise config_validation.ConfigError(f"The held-out tokens have no sequence of class {self.class_label(label)}.")
      rows.append(mine[np.minimum(np.arange(REFERENCE_SEQUENCES), len(mine) - 1)])
    return np.stack(rows)

  def sample_grid(self, tokens: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """One row per class labelled with its name: `REFERENCE_SEQUENCES` held-out sequences of the class decoded (its
    real crops as the tokenizer gives them back), a blank cell, then the decoded `tokens` `[classes * n, L(, C)]`."""
    references = self.held_out_references(classes)
    count = references.shape[0] * references.shape[1]
    decoded = self.tokenizer.decode(np.concatenate([references.reshape(count, *tokens.shape[1:]), tokens]))
    image_shape = decoded.shape[1:]
    blank = np.ones((len(classes), 1, *image_shape), decoded.dtype)  # a white cell: +1 in [-1, 1]
    rows = np.concatenate([decoded[:count].reshape(*references.shape[:2], *image_shape), blank,
                           decoded[count:].reshape(len(classes), -1, *image_shape)], axis=1)
    return images.class_grid(rows, [self.class_label(int(c)) for c in classes])

  def evaluate(self, variables: dict[str, Any], step: int, output_dir: pathlib.Path) -> task_lib.Evaluation:
    del step, output_dir
    loss, accuracy = self.held_out_loss(variables)
    classes = self.held_out_classes
    labels = np.repeat(classes, self.config.eval.samples_per_class)
    samples = np.asarray(self.sample(variables, jax.random.PRNGKey(self.config.seed + 2), labels).tokens)
    results = {"loss": loss, "accuracy": accuracy, **self.token_statistics(samples, labels)}
    decodable = self.tokenizer is not None and jax.process_index() == 0
    return task_lib.Evaluation(results, {"samples": self.sample_grid(samples, classes)} if decodable else {})

  def summary(self, eval_history: list[dict[str, float]]) -> dict[str, Any]:
    train, held_out = self.train_tokens, self.eval_tokens
    return {"untrained_eval": next((entry for entry in eval_history if entry["step"] == 0), {}),
            "model": {"vocab_size": self.model.vocab_size, "sequence_length": self.model.sequence_length,
                      "num_classes": self.model.num_classes},
            "tokens": {"train": len(train.tokens), "eval": len(held_out.tokens), "codebook_size": train.codebook_size,
                       "grid_shape": list(train.grid_shape), "tokenizer_workdir": train.tokenizer_workdir,
                       "tokenizer_step": train.tokenizer_step}}

  def save_curves(self, path: pathlib.Path, train_history: list[dict[str, float]],
                  eval_history: list[dict[str, float]]) -> None:
    images.save_generator_curves(path, train_history, eval_history)

  @classmethod
  def headline(cls, summary: dict[str, Any]) -> str:
    final, untrained = summary["final_eval"], summary["untrained_eval"]
    if not (final and untrained):
      return ""
    return (f"Step {summary['step']}: held-out masked-token loss {final['loss']:.4f} (untrained "
            f"{untrained['loss']:.4f}), accuracy {final['accuracy']:.3f}; token TV to held-out data "
            f"{final['token_tv']:.4f} (untrained {untrained['token_tv']:.4f}, uniform tokens "
            f"{final['token_tv_uniform']:.4f}, training data {final['token_tv_train_data']:.4f})"
            + (f"; samples of the right class {final['class_accuracy']:.3f} (held-out data "
               f"{final['class_accuracy_held_out']:.3f})" if "class_accuracy" in final else "") + ".")


class MaskGIT(GeneratorTask):
  """A MaskedTokenTransformer: masked-token loss on a `train.mask_schedule` fraction; MaskGIT iterative decoding
  (`sampling.num_steps` steps keeping the most confident tokens), classifier-free guidance when guidance_scale > 0."""

  def loss_options(self, training: bool) -> dict[str, Any]:
    train = self.config.train
    return {"schedule": train.mask_schedule, "label_smoothing": train.label_smoothing if training else 0.0,
            "class_dropout": train.class_dropout if training else 0.0}

  def sampler(self, variables: Any, key: jax.Array, class_labels: jax.Array,
              return_trajectory: bool) -> masked_sampling.SamplerOutput:
    model, settings = self.model, self.sampling
    return masked_sampling.maskgit_sample(
        lambda tokens, labels: model.apply(variables, tokens, labels), key, class_labels,
        sequence_length=model.sequence_length, mask_id=model.mask_id,
        num_codebooks=model.num_codebooks if model.num_codebooks > 1 else None, num_steps=settings.num_steps,
        schedule=settings.schedule, temperature=settings.temperature, choice_temperature=settings.choice_temperature,
        guidance_scale=settings.guidance_scale, null_class=model.null_class if settings.guidance_scale > 0 else None,
        top_k=settings.top_k, top_p=settings.top_p, return_trajectory=return_trajectory)


class Autoregressive(GeneratorTask):
  """A CausalTokenTransformer: next-token loss; left-to-right sampling with its KV cache (temperature, top_k, top_p
  and guidance_scale apply; the masked-decoding fields do not). No trajectory: tokens simply appear in order."""

  def loss_options(self, training: bool) -> dict[str, Any]:
    train = self.config.train
    return {"label_smoothing": train.label_smoothing if training else 0.0,
            "class_dropout": train.class_dropout if training else 0.0}

  def sampler(self, variables: Any, key: jax.Array, class_labels: jax.Array,
              return_trajectory: bool) -> masked_sampling.SamplerOutput:
    del return_trajectory
    model, settings = self.model, self.sampling
    output = ar_sampling.sample(
        autoregressive_lib.as_logits_fn(model, variables), key, class_labels, sequence_length=model.sequence_length,
        temperature=settings.temperature, top_k=settings.top_k, top_p=settings.top_p,
        guidance_scale=settings.guidance_scale, null_class=model.num_classes if settings.guidance_scale > 0 else None)
    return masked_sampling.SamplerOutput(tokens=output.tokens, trajectory=None)


def prepare_tokens(config: Any, workdir: pathlib.Path, tokenizer: frozen_tokenizer.FrozenTokenizer | None,
                   ) -> tuple[tokens_lib.TokenSet, tokens_lib.TokenSet]:
  """Loads `<workdir>/tokens/{train,eval}.npz`, extracting them first (on process 0, with `tokenizer`) when
  missing."""
  paths = {split: workdir / "tokens" / f"{split}.npz" for split in tokens_lib.SPLITS}
  counts = {"train": config.tokens.num_train_images, "eval": config.tokens.num_eval_images}
  seeds = {"train": config.seed, "eval": config.seed + 1}
  if jax.process_index() == 0:
    for split, path in paths.items():
      if path.exists():
        continue
      if tokenizer is None:
        raise config_validation.ConfigError(f"No token file {path} and no tokenizer to make it: set "
                                            "'tokenizer.workdir'.")
      logging.info("Encoding %d %s crops with the tokenizer in %s.", counts[split], split, config.tokenizer.workdir)
      frozen_tokenizer.extract_tokens(tokenizer, split, counts[split], seeds[split], path,
                                      batch_size=config.eval.batch_size)
  multihost_utils.sync_global_devices("jaxtok generator tokens ready")
  train, held_out = tokens_lib.load_tokens(paths["train"]), tokens_lib.load_tokens(paths["eval"])
  for split, token_set in (("train", train), ("eval", held_out)):
    if len(token_set.tokens) != counts[split]:
      raise config_validation.ConfigError(f"{paths[split]} holds {len(token_set.tokens)} sequences but "
                                          f"'tokens.num_{split}_images' = {counts[split]}; delete it to re-extract.")
  if held_out.tokens.shape[1:] != train.tokens.shape[1:] or held_out.codebook_size != train.codebook_size:
    raise config_validation.ConfigError(f"The eval tokens {held_out.tokens.shape} / {held_out.codebook_size} codes "
                                        f"do not match the train tokens {train.tokens.shape} / {train.codebook_size}.")
  return train, held_out
