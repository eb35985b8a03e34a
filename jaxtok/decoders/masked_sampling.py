"""Samplers of masked token models: MaskGIT's iterative parallel decoding and discrete-diffusion samplers that remask.

All samplers start from an all-mask sequence and run `num_steps` steps as one `lax.scan` (static shapes, no host
round trip; jit the sampler with `functools.partial` around `logits_fn`). At every step the model gives logits of
every unit (a position's codebook for multi-codebook tokens; `length * num_codebooks` units in all), filtered by
`logit_filters.filter_logits` (temperature, top-k, top-p); each masked unit draws a candidate token; units are ranked
by a confidence and the `schedules.num_masked_after_step` least confident are (re)masked.

- `maskgit_sample` (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer", section 3.2, iterative
  decoding): confidence = log p(candidate) under the filtered distribution it was drawn from, plus
  choice_temperature * (1 - (s + 1) / T) * Gumbel noise; decoded units are never remasked, so each step fixes
  exactly the number of units the schedule says. A unit order independent of the draws (choice temperature large)
  leaves every unit's marginal exactly the model's for an input-independent model; confidence order favours likely
  tokens (a draw of low probability is remasked and drawn again).
- `remasking_sample`, discrete diffusion with revisable tokens:
  * "easy_first": the adaptive decoding order of Discrete Diffusion VLA (Liang et al. 2025, "Discrete Diffusion VLA:
    Bringing Discrete Diffusion to Action Decoding in Vision-Language-Action Policies", section 3): the most
    confident units first, confidence the probability or the top-1 minus top-2 probability margin, no remasking.
  * "low_confidence": every step re-scores all units, decoded ones included (their confidence is the probability of
    their current token under the new context), and keeps the most confident; a decoded unit whose confidence fell
    below the newly decoded ones is remasked (low-confidence remasking of LLaDA, Nie et al. 2025, "Large Language
    Diffusion Models", extended to decoded tokens as in RDM, Zheng et al. 2023, "A Reparameterized Discrete Diffusion
    Model for Text Generation"). The number masked after each step still follows the schedule.
  * "secondary": easy-first decoding plus Discrete Diffusion VLA's secondary re-masking: after a step (not the last),
    a unit committed in an earlier step is remasked when its current probability is below `remask_threshold`
    (threshold check) or has dropped by more than `remask_drop` from its probability when committed (residual-drop
    check). More units than the schedule's may then stay masked; the last step decodes them all.
  Confidences of decoded units read the model's prediction at visible positions: meaningful for a model trained to
  predict visible tokens too (BERT-style corruption); a model trained on masked positions only gives them no
  training signal there.

Classifier-free guidance (Ho & Salimans 2022): with `null_class` given, every step runs the conditional and the
null-class pass in ONE call of `logits_fn` (batch concatenated) and uses cond + w_s * (cond - uncond), w_s from
`guidance_scale` and `guidance_schedule`. Randomness: example i uses `fold_in(key, i)`, then `fold_in(., step)`, so
its result does not depend on the batch it is in.
"""
import functools
import math
from typing import Callable

import einops
import flax.struct
import jax
import jax.numpy as jnp

from jaxtok.decoders import logit_filters
from jaxtok.decoders import schedules

LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]
GUIDANCE_SCHEDULES = ("constant", "linear", "cosine")
REMASKING_STRATEGIES = ("easy_first", "low_confidence", "secondary")
SCORES = ("probability", "margin")


@flax.struct.dataclass
class SamplerOutput:
  """tokens: `[batch, length(, num_codebooks)]` int32; trajectory: `[num_steps, batch, length(, num_codebooks)]`
  int32 (mask id where masked) after each step, or None."""
  tokens: jax.Array
  trajectory: jax.Array | None = None


@flax.struct.dataclass
class _Settings:
  """The choices of one sampler run; all static but the secondary re-masking thresholds (may be traced)."""
  mask_id: int = flax.struct.field(pytree_node=False)
  num_steps: int = flax.struct.field(pytree_node=False)
  strategy: str = flax.struct.field(pytree_node=False)
  score: str = flax.struct.field(pytree_node=False)
  temperature: float = flax.struct.field(pytree_node=False)
  top_k: int = flax.struct.field(pytree_node=False)
  top_p: float = flax.struct.field(pytree_node=False)
  choice_temperature: float = flax.struct.field(pytree_node=False)
  remask_threshold: float | jax.Array = 0.0
  remask_drop: float | jax.Array = 1.0


def guidance_scale_at(step: jax.Array, num_steps: int, scale: float, schedule: str) -> jax.Array:
  """Guidance weight at step `step` of `num_steps`, r = (step + 1) / num_steps: constant w, linear w r, or cosine
  w (1 - cos(pi r)) / 2 (weak guidance early, full at the end, as in MUSE-style samplers)."""
  if schedule not in GUIDANCE_SCHEDULES:
    raise ValueError(f"guidance_schedule must be one of {GUIDANCE_SCHEDULES}, got {schedule!r}.")
  ratio = (jnp.asarray(step, jnp.float32) + 1.0) / num_steps
  if schedule == "constant":
    return jnp.asarray(scale, jnp.float32)
  if schedule == "linear":
    return scale * ratio
  return scale * 0.5 * (1.0 - jnp.cos(jnp.pi * ratio))


def guided_logits(conditional: jax.Array, unconditional: jax.Array, scale: float | jax.Array) -> jax.Array:
  """Classifier-free guidance: conditional + scale * (conditional - unconditional), float32."""
  conditional, unconditional = conditional.astype(jnp.float32), unconditional.astype(jnp.float32)
  return conditional + scale * (conditional - unconditional)


def unit_confidence(log_probs: jax.Array, tokens: jax.Array, score: str) -> jax.Array:
  """Confidence of `tokens` `[units]` under `log_probs` `[units, vocab]`: "probability" -> log p(token); "margin"
  -> p(token) - the largest probability of another token (the confidence gap of Discrete Diffusion VLA)."""
  chosen = jnp.take_along_axis(log_probs, tokens[:, None], axis=-1)[:, 0]
  if score == "probability":
    return chosen
  top_two, top_indices = jax.lax.top_k(jnp.exp(log_probs), 2)
  best_other = jnp.where(top_indices[:, 0] == tokens, top_two[:, 1], top_two[:, 0])
  return jnp.exp(chosen) - best_other


def _ranks_descending(values: jax.Array) -> jax.Array:
  """Rank of each entry of `values` `[n]` in descending order (0 = largest; ties by index)."""
  order = jnp.argsort(-values, stable=True)
  return jnp.zeros_like(order).at[order].set(jnp.arange(values.shape[0], dtype=order.dtype))


def _example_step(settings: _Settings, step: jax.Array, num_masked: jax.Array, key: jax.Array, logits: jax.Array,
                  units: jax.Array, committed_probability: jax.Array) -> tuple[jax.Array, jax.Array]:
  """One step for one example: logits `[units, vocab]`, units `[units]` int32 -> (units, committed_probability)."""
  sample_key, choice_key = jax.random.split(key)
  filtered = logit_filters.filter_logits(logits, temperature=settings.temperature, top_k=settings.top_k,
                                         top_p=settings.top_p)
  log_probs = jax.nn.log_softmax(filtered, axis=-1)
  is_masked = units == settings.mask_id
  candidates = jnp.where(is_masked, jax.random.categorical(sample_key, filtered, axis=-1), units)
  noise_scale = settings.choice_temperature * (1.0 - (step + 1.0) / settings.num_steps)
  confidence = (unit_confidence(log_probs, candidates, settings.score)
                + noise_scale * jax.random.gumbel(choice_key, units.shape))
  if settings.strategy != "low_confidence":
    confidence = jnp.where(is_masked, confidence, jnp.inf)
  keep = _ranks_descending(confidence) < units.shape[0] - num_masked
  probability = jnp.exp(jnp.take_along_axis(log_probs, candidates[:, None], axis=-1)[:, 0])
  if settings.strategy == "secondary":
    doubtful = (probability < settings.remask_threshold) | (committed_probability - probability
                                                            > settings.remask_drop)
    keep &= ~(~is_masked & doubtful & (step < settings.num_steps - 1))
  committed_probability = jnp.where(keep & is_masked, probability, committed_probability)
  return jnp.where(keep, candidates, settings.mask_id), committed_probability


def _validate(class_labels, sequence_length, mask_id, num_codebooks, num_steps, temperature, guidance_scale,
              null_class) -> None:
  if class_labels.ndim != 1 or not jnp.issubdtype(class_labels.dtype, jnp.integer):
    raise ValueError(f"class_labels must be [batch] int, got shape {class_labels.shape} dtype {class_labels.dtype}.")
  if sequence_length < 1 or (num_codebooks is not None and num_codebooks < 1):
    raise ValueError(f"sequence_length and num_codebooks must be >= 1, got {sequence_length}, {num_codebooks}.")
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}.")
  if not temperature > 0:
    raise ValueError(f"temperature must be > 0, got {temperature}.")
  if null_class is None and not (isinstance(guidance_scale, (int, float)) and guidance_scale == 0):
    raise ValueError(f"guidance_scale={guidance_scale} needs null_class (the unconditional label), got None.")
  if mask_id < 0:
    raise ValueError(f"mask_id must be >= 0, got {mask_id}.")


def _sample(logits_fn: LogitsFn, key: jax.Array, class_labels: jax.Array, *, sequence_length: int,
            num_codebooks: int | None, schedule: str, guidance_scale: float, guidance_schedule: str,
            null_class: int | None, return_trajectory: bool, settings: _Settings) -> SamplerOutput:
  """The step loop shared by all samplers, as one `lax.scan`."""
  _validate(class_labels, sequence_length, settings.mask_id, num_codebooks, settings.num_steps,
            settings.temperature, guidance_scale, null_class)
  batch = class_labels.shape[0]
  shape = (batch, sequence_length) + (() if num_codebooks is None else (num_codebooks,))
  num_units = math.prod(shape[1:])
  counts = jnp.asarray(schedules.masked_counts(settings.num_steps, num_units, schedule))
  guidance_scale_at(0, settings.num_steps, guidance_scale, guidance_schedule)  # validates the schedule name early
  example_keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(batch))

  def model_logits(tokens, step):
    if null_class is None:
      logits = logits_fn(tokens, class_labels)
    else:
      null_labels = jnp.full_like(class_labels, null_class)
      both = logits_fn(jnp.concatenate([tokens, tokens]), jnp.concatenate([class_labels, null_labels]))
      scale = guidance_scale_at(step, settings.num_steps, guidance_scale, guidance_schedule)
      logits = guided_logits(both[:batch], both[batch:], scale)
    if logits.shape[:-1] != shape or not 0 < logits.shape[-1] <= settings.mask_id:
      raise ValueError(f"logits_fn must return [*{shape}, vocab] with vocab <= mask_id={settings.mask_id}, got "
                       f"{logits.shape}.")
    return einops.rearrange(logits.astype(jnp.float32), "b ... v -> b (...) v")

  def step_fn(carry, step):
    tokens, committed_probability = carry
    step_keys = jax.vmap(lambda example_key: jax.random.fold_in(example_key, step))(example_keys)
    units, committed_probability = jax.vmap(functools.partial(_example_step, settings, step, counts[step]))(
        step_keys, model_logits(tokens, step), tokens.reshape(batch, num_units), committed_probability)
    tokens = units.reshape(shape)
    return (tokens, committed_probability), (tokens if return_trajectory else None)

  initial = (jnp.full(shape, settings.mask_id, jnp.int32), jnp.zeros((batch, num_units), jnp.float32))
  (tokens, _), trajectory = jax.lax.scan(step_fn, initial, jnp.arange(settings.num_steps))
  return SamplerOutput(tokens=tokens, trajectory=trajectory)


def maskgit_sample(logits_fn: LogitsFn, key: jax.Array, class_labels: jax.Array, *, sequence_length: int,
                   mask_id: int, num_codebooks: int | None = None, num_steps: int = 8, schedule: str = "cosine",
                   temperature: float = 1.0, choice_temperature: float = 4.5, guidance_scale: float = 0.0,
                   guidance_schedule: str = "constant", null_class: int | None = None, top_k: int = 0,
                   top_p: float = 1.0, return_trajectory: bool = False) -> SamplerOutput:
  """MaskGIT iterative decoding.

  Args:
    logits_fn: `(tokens [b, L(, C)] int32, class_labels [b] int32) -> logits [b, L(, C), vocab]`, vocab <= mask_id.
    key: PRNG key.
    class_labels: `[batch]` int.
    sequence_length: L. num_codebooks: C, or None for `[b, L]` tokens.
    mask_id: the mask token id.
    num_steps: T <= L * C. schedule: a `schedules.SCHEDULES` name.
    temperature, top_k, top_p: filters of the token distribution (`logit_filters.filter_logits`).
    choice_temperature: Gumbel noise on the confidences, annealed linearly to 0 over the steps.
    guidance_scale, guidance_schedule, null_class: classifier-free guidance, on whenever null_class is given (two
      passes per step); guidance_scale may then be traced.
    return_trajectory: also return the tokens after every step.

  Returns:
    `SamplerOutput`.
  """
  settings = _Settings(mask_id=mask_id, num_steps=num_steps, strategy="maskgit", score="probability",
                       temperature=temperature, top_k=top_k, top_p=top_p, choice_temperature=choice_temperature,
                       remask_threshold=0.0, remask_drop=1.0)
  return _sample(logits_fn, key, class_labels, sequence_length=sequence_length, num_codebooks=num_codebooks,
                 schedule=schedule, guidance_scale=guidance_scale, guidance_schedule=guidance_schedule,
                 null_class=null_class, return_trajectory=return_trajectory, settings=settings)


def remasking_sample(logits_fn: LogitsFn, key: jax.Array, class_labels: jax.Array, *, sequence_length: int,
                     mask_id: int, num_codebooks: int | None = None, strategy: str = "low_confidence",
                     score: str = "probability", num_steps: int = 8, schedule: str = "cosine",
                     temperature: float = 1.0, choice_temperature: float = 0.0, guidance_scale: float = 0.0,
                     guidance_schedule: str = "constant", null_class: int | None = None, top_k: int = 0,
                     top_p: float = 1.0, remask_threshold: float = 0.1, remask_drop: float = 0.3,
                     return_trajectory: bool = False) -> SamplerOutput:
  """Discrete diffusion sampling with adaptive order and remasking (see the module docstring).

  Args as `maskgit_sample`, plus:
    strategy: "easy_first", "low_confidence" or "secondary".
    score: "probability" (log p of the token) or "margin" (top-1 minus top-2 probability) ranks the units.
    choice_temperature: Gumbel noise on the confidences, annealed to 0 (default 0: deterministic easy first).
    remask_threshold, remask_drop: the secondary re-masking checks (probabilities, "secondary" only; may be traced).
  """
  if strategy not in REMASKING_STRATEGIES:
    raise ValueError(f"strategy must be one of {REMASKING_STRATEGIES}, got {strategy!r}.")
  if score not in SCORES:
    raise ValueError(f"score must be one of {SCORES}, got {score!r}.")
  settings = _Settings(mask_id=mask_id, num_steps=num_steps, strategy=strategy, score=score,
                       temperature=temperature, top_k=top_k, top_p=top_p, choice_temperature=choice_temperature,
                       remask_threshold=remask_threshold, remask_drop=remask_drop)
  return _sample(logits_fn, key, class_labels, sequence_length=sequence_length, num_codebooks=num_codebooks,
                 schedule=schedule, guidance_scale=guidance_scale, guidance_schedule=guidance_schedule,
                 null_class=null_class, return_trajectory=return_trajectory, settings=settings)
