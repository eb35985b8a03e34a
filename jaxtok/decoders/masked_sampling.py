"""Samplers of masked token models: MaskGIT's iterative parallel decoding and discrete-diffusion samplers that remask.

All samplers start from an all-mask sequence and run `num_steps` steps as one `lax.scan` (static shapes, no host
round trip; jit the sampler with `functools.partial` around `logits_fn`). At every step s of T (r = (s + 1) / T)
the model gives logits of every unit (a position's codebook for multi-codebook tokens; `length * num_codebooks` units
in all), guided (`guidance`), optionally divided by an annealed softmax temperature, filtered by
`logit_filters.filter_logits` (temperature, top-k, top-p); each masked unit draws a candidate token; units are ranked
by a confidence and the `schedules.masked_counts` least confident are (re)masked.

- `maskgit_sample` (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer", section 3.2, iterative
  decoding). Decoded units are never remasked. Its options, jaxtok's default first, then the official one of
  1d-tokenizer's `ImageBert.generate` / `UViTBert.generate` (Yu et al. 2024, TiTok; `jaxtok.convert.maskgit.
  generate_like_official` sets them all):
  * `schedule`: any `schedules.SCHEDULES` name, default "cosine"; official "arccos".
  * `count_rule`: "fix_at_least_one" (every step fixes >= 1 unit; T <= units) or official "maskgit"
    (max(1, min(masked - 1, floor(units * ratio))), a step may fix none; the last step decodes all).
  * `token_sampling`: "categorical" draws each candidate from the filtered distribution; official
    "annealed_gumbel" takes argmax(logits + tau_s Gumbel), tau_s = choice_temperature (1 - r): a draw at temperature
    tau_s, greedy at the last step.
  * `confidence`: "log_probability" = log p(candidate) under the filtered distribution; official "logit" = the
    candidate's (filtered) logit, which also carries the per-unit normaliser. Either gets tau_s * Gumbel noise
    (fresh noise, not the token draw's); tau_s = choice_temperature (1 - r) in both (official
    `randomize_temperature`).
  * `softmax_temperature_annealing`: official option (True in its ImageNet sampling script): logits / (0.5 + 0.8
    (1 - r)) before the filters; default False.
  * `guidance_schedule`: see `guidance` ("constant", official "linear" g s / T and "power-cosine" with
    `guidance_power`, jaxtok's "linear-inclusive" g (s + 1) / T and "cosine").
  Remaining differences from the official code: ties of the confidence at the cut-off mask exactly the scheduled
  count here (the official `confidence <= cut_off` masks every tied unit); the Gumbel noise comes from JAX's PRNG,
  so only `choice_temperature=0` reproduces the official tokens exactly (otherwise the same distribution); the
  official code runs the unconditional pass only when the weight is non-zero, jaxtok always runs both (same result).
  With the defaults, a unit order independent of the draws (choice temperature large) leaves every unit's marginal
  exactly the model's for an input-independent model; confidence order favours likely tokens.
- `remasking_sample`, discrete diffusion with revisable tokens (categorical draws, "fix_at_least_one" counts):
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
null-class pass in ONE call of `logits_fn` (batch concatenated) and mixes them with the step's weight
(`guidance.guidance_weights`). Randomness: example i uses `fold_in(key, i)`, then `fold_in(., step)`, so its result
does not depend on the batch it is in.
"""
import functools
import math
from typing import Callable

import einops
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from jaxtok.decoders import guidance
from jaxtok.decoders import logit_filters
from jaxtok.decoders import schedules

LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]
REMASKING_STRATEGIES = ("easy_first", "low_confidence", "secondary")
SCORES = ("probability", "margin")
TOKEN_SAMPLINGS = ("categorical", "annealed_gumbel")
CONFIDENCES = ("log_probability", "logit")


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
  schedule: str = flax.struct.field(pytree_node=False)
  count_rule: str = flax.struct.field(pytree_node=False, default="fix_at_least_one")
  token_sampling: str = flax.struct.field(pytree_node=False, default="categorical")
  softmax_temperature_annealing: bool = flax.struct.field(pytree_node=False, default=False)
  remask_threshold: float | jax.Array = 0.0
  remask_drop: float | jax.Array = 1.0


def unit_confidence(log_probs: jax.Array, tokens: jax.Array, score: str) -> jax.Array:
  """Confidence of `tokens` `[units]` under `log_probs` `[units, vocab]`: "probability" -> log p(token); "margin"
  -> p(token) - the largest probability of another token (the confidence gap of Discrete Diffusion VLA)."""
  chosen = jnp.take_along_axis(log_probs, tokens[:, None], axis=-1)[:, 0]
  if score == "probability":
    return chosen
  top_two, top_indices = jax.lax.top_k(jnp.exp(log_probs), 2)
  best_other = jnp.where(top_indices[:, 0] == tokens, top_two[:, 1], top_two[:, 0])
  return jnp.exp(chosen) - best_other


def step_tables(num_steps: int, choice_temperature: float,
                softmax_temperature_annealing: bool) -> dict[str, jax.Array]:
  """Per-step constants `[num_steps]` float32, computed in float64 on the host as the official code does:
  "noise_scale" = choice_temperature (1 - r), "softmax_temperature" = 0.5 + 0.8 (1 - r) when annealed, else 1."""
  ratio = (np.arange(num_steps, dtype=np.float64) + 1.0) / num_steps
  softmax_temperature = 0.5 + 0.8 * (1.0 - ratio) if softmax_temperature_annealing else np.ones_like(ratio)
  return {"noise_scale": jnp.asarray(choice_temperature * (1.0 - ratio), jnp.float32),
          "softmax_temperature": jnp.asarray(softmax_temperature, jnp.float32)}


def _ranks_descending(values: jax.Array) -> jax.Array:
  """Rank of each entry of `values` `[n]` in descending order (0 = largest; ties by index)."""
  order = jnp.argsort(-values, stable=True)
  return jnp.zeros_like(order).at[order].set(jnp.arange(values.shape[0], dtype=order.dtype))


def draw_candidates(key: jax.Array, filtered: jax.Array, noise_scale: float | jax.Array,
                    token_sampling: str) -> jax.Array:
  """Candidate tokens `[...]` int32 of filtered logits `[..., vocab]`: "categorical" draws from softmax(filtered);
  "annealed_gumbel" is argmax(filtered + noise_scale * Gumbel), a draw from softmax(filtered / noise_scale) (Gumbel
  max), the argmax at noise_scale 0."""
  if token_sampling == "categorical":
    return jax.random.categorical(key, filtered, axis=-1)
  return jnp.argmax(filtered + noise_scale * jax.random.gumbel(key, filtered.shape), axis=-1)


def _example_step(settings: _Settings, step: jax.Array, num_masked: jax.Array, noise_scale: jax.Array,
                  key: jax.Array, logits: jax.Array, units: jax.Array,
                  committed_probability: jax.Array) -> tuple[jax.Array, jax.Array]:
  """One step for one example: logits `[units, vocab]`, units `[units]` int32 -> (units, committed_probability)."""
  sample_key, choice_key = jax.random.split(key)
  filtered = logit_filters.filter_logits(logits, temperature=settings.temperature, top_k=settings.top_k,
                                         top_p=settings.top_p)
  log_probs = jax.nn.log_softmax(filtered, axis=-1)
  is_masked = units == settings.mask_id
  candidates = jnp.where(is_masked, draw_candidates(sample_key, filtered, noise_scale, settings.token_sampling), units)
  if settings.score == "logit":
    score = jnp.take_along_axis(filtered, candidates[:, None], axis=-1)[:, 0]
  else:
    score = unit_confidence(log_probs, candidates, settings.score)
  confidence = score + noise_scale * jax.random.gumbel(choice_key, units.shape)
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


def _validate(class_labels, sequence_length, num_codebooks, guidance_scale, null_class, settings: _Settings) -> None:
  if class_labels.ndim != 1 or not jnp.issubdtype(class_labels.dtype, jnp.integer):
    raise ValueError(f"class_labels must be [batch] int, got shape {class_labels.shape} dtype {class_labels.dtype}.")
  if sequence_length < 1 or (num_codebooks is not None and num_codebooks < 1):
    raise ValueError(f"sequence_length and num_codebooks must be >= 1, got {sequence_length}, {num_codebooks}.")
  if settings.num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {settings.num_steps}.")
  if not settings.temperature > 0:
    raise ValueError(f"temperature must be > 0, got {settings.temperature}.")
  if not 0 < settings.top_p <= 1:
    raise ValueError(f"top_p must lie in (0, 1] (1 = off), got {settings.top_p}.")
  if settings.choice_temperature < 0:
    raise ValueError(f"choice_temperature must be >= 0, got {settings.choice_temperature}.")
  if null_class is None and not (isinstance(guidance_scale, (int, float)) and guidance_scale == 0):
    raise ValueError(f"guidance_scale={guidance_scale} needs null_class (the unconditional label), got None.")
  if settings.mask_id < 0:
    raise ValueError(f"mask_id must be >= 0, got {settings.mask_id}.")


def _sample(logits_fn: LogitsFn, key: jax.Array, class_labels: jax.Array, *, sequence_length: int,
            num_codebooks: int | None, guidance_scale: float, guidance_schedule: str, guidance_power: float,
            null_class: int | None, return_trajectory: bool, settings: _Settings) -> SamplerOutput:
  """The step loop shared by all samplers, as one `lax.scan`."""
  _validate(class_labels, sequence_length, num_codebooks, guidance_scale, null_class, settings)
  batch = class_labels.shape[0]
  shape = (batch, sequence_length) + (() if num_codebooks is None else (num_codebooks,))
  num_units = math.prod(shape[1:])
  tables = step_tables(settings.num_steps, settings.choice_temperature, settings.softmax_temperature_annealing)
  tables["num_masked"] = jnp.asarray(schedules.masked_counts(settings.num_steps, num_units, settings.schedule,
                                                             settings.count_rule))
  tables["guidance_weight"] = guidance.guidance_weights(settings.num_steps, guidance_scale, guidance_schedule,
                                                        guidance_power)
  example_keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(batch))

  def model_logits(tokens, table):
    if null_class is None:
      logits = logits_fn(tokens, class_labels)
    else:
      null_labels = jnp.full_like(class_labels, null_class)
      both = logits_fn(jnp.concatenate([tokens, tokens]), jnp.concatenate([class_labels, null_labels]))
      logits = guidance.guided_logits(both[:batch], both[batch:], table["guidance_weight"], guidance_schedule)
    if logits.shape[:-1] != shape or not 0 < logits.shape[-1] <= settings.mask_id:
      raise ValueError(f"logits_fn must return [*{shape}, vocab] with vocab <= mask_id={settings.mask_id}, got "
                       f"{logits.shape}.")
    logits = logits.astype(jnp.float32) / table["softmax_temperature"]
    return einops.rearrange(logits, "b ... v -> b (...) v")

  def step_fn(carry, step_and_table):
    (tokens, committed_probability), (step, table) = carry, step_and_table
    step_keys = jax.vmap(lambda example_key: jax.random.fold_in(example_key, step))(example_keys)
    one_step = functools.partial(_example_step, settings, step, table["num_masked"], table["noise_scale"])
    units, committed_probability = jax.vmap(one_step)(step_keys, model_logits(tokens, table),
                                                      tokens.reshape(batch, num_units), committed_probability)
    tokens = units.reshape(shape)
    return (tokens, committed_probability), (tokens if return_trajectory else None)

  initial = (jnp.full(shape, settings.mask_id, jnp.int32), jnp.zeros((batch, num_units), jnp.float32))
  (tokens, _), trajectory = jax.lax.scan(step_fn, initial, (jnp.arange(settings.num_steps), tables))
  return SamplerOutput(tokens=tokens, trajectory=trajectory)


def maskgit_sample(logits_fn: LogitsFn, key: jax.Array, class_labels: jax.Array, *, sequence_length: int,
                   mask_id: int, num_codebooks: int | None = None, num_steps: int = 8, schedule: str = "cosine",
                   count_rule: str = "fix_at_least_one", temperature: float = 1.0, choice_temperature: float = 4.5,
                   token_sampling: str = "categorical", confidence: str = "log_probability",
                   softmax_temperature_annealing: bool = False, guidance_scale: float = 0.0,
                   guidance_schedule: str = "constant", guidance_power: float = 3.0, null_class: int | None = None,
                   top_k: int = 0, top_p: float = 1.0, return_trajectory: bool = False) -> SamplerOutput:
  """MaskGIT iterative decoding (the options and their official values: see the module docstring).

  Args:
    logits_fn: `(tokens [b, L(, C)] int32, class_labels [b] int32) -> logits [b, L(, C), vocab]`, vocab <= mask_id.
    key: PRNG key.
    class_labels: `[batch]` int.
    sequence_length: L. num_codebooks: C, or None for `[b, L]` tokens.
    mask_id: the mask token id.
    num_steps: T (<= L * C under count_rule "fix_at_least_one"). schedule: a `schedules.SCHEDULES` name.
    count_rule: a `schedules.COUNT_RULES` name.
    temperature, top_k, top_p: filters of the token distribution (`logit_filters.filter_logits`).
    choice_temperature: tau, Gumbel noise on the confidences (and on the logits for "annealed_gumbel"), annealed
      linearly to 0 over the steps as tau (1 - (s + 1) / T).
    token_sampling: "categorical" or "annealed_gumbel". confidence: "log_probability" or "logit".
    softmax_temperature_annealing: divide the logits by 0.5 + 0.8 (1 - (s + 1) / T) at step s.
    guidance_scale, guidance_schedule, guidance_power, null_class: classifier-free guidance (`guidance`), on
      whenever null_class is given (two passes per step); guidance_scale may then be traced.
    return_trajectory: also return the tokens after every step.

  Returns:
    `SamplerOutput`.
  """
  if token_sampling not in TOKEN_SAMPLINGS:
    raise ValueError(f"token_sampling must be one of {TOKEN_SAMPLINGS}, got {token_sampling!r}.")
  if confidence not in CONFIDENCES:
    raise ValueError(f"confidence must be one of {CONFIDENCES}, got {confidence!r}.")
  settings = _Settings(mask_id=mask_id, num_steps=num_steps, strategy="maskgit",
                       score="probability" if confidence == "log_probability" else "logit", temperature=temperature,
                       top_k=top_k, top_p=top_p, choice_temperature=choice_temperature, schedule=schedule,
                       count_rule=count_rule, token_sampling=token_sampling,
                       softmax_temperature_annealing=bool(softmax_temperature_annealing))
  return _sample(logits_fn, key, class_labels, sequence_length=sequence_length, num_codebooks=num_codebooks,
                 guidance_scale=guidance_scale, guidance_schedule=guidance_schedule, guidance_power=guidance_power,
                 null_class=null_class, return_trajectory=return_trajectory, settings=settings)


def remasking_sample(logits_fn: LogitsFn, key: jax.Array, class_labels: jax.Array, *, sequence_length: int,
                     mask_id: int, num_codebooks: int | None = None, strategy: str = "low_confidence",
                     score: str = "probability", num_steps: int = 8, schedule: str = "cosine",
                     temperature: float = 1.0, choice_temperature: float = 0.0, guidance_scale: float = 0.0,
                     guidance_schedule: str = "constant", guidance_power: float = 3.0,
                     null_class: int | None = None, top_k: int = 0, top_p: float = 1.0,
                     remask_threshold: float = 0.1, remask_drop: float = 0.3,
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
                       schedule=schedule, remask_threshold=remask_threshold, remask_drop=remask_drop)
  return _sample(logits_fn, key, class_labels, sequence_length=sequence_length, num_codebooks=num_codebooks,
                 guidance_scale=guidance_scale, guidance_schedule=guidance_schedule, guidance_power=guidance_power,
                 null_class=null_class, return_trajectory=return_trajectory, settings=settings)
