"""Autoregressive sampling with a KV cache: prefill, then one jit-compiled `lax.scan` over decode steps.

Ancestral sampling as in VQGAN / LlamaGen with temperature, top-k and top-p (`logit_filters`) and classifier-free
guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance"; applied to AR image models by LlamaGen, Sun et al.
2024): guided logits are `cond + scale * (cond - uncond)`, both halves evaluated in one batched call.

Models are plain functions bundled in a `TokenModel`, so jaxtok's `CausalTokenTransformer`
(`autoregressive.as_logits_fn`), any user's model and small analytic models (`markov.markov_model`) drive the same
samplers here and in `speculative.py`. Randomness is per example: example i draws with `fold_in(key, i)`, so it does
not depend on the batch it is in.

LlamaGen's sampling (`autoregressive/models/generate.py`) is `llamagen_sampling`: a `TokenModel` whose logits are
the log of generate.py's probabilities, so that `sample` and every speculative sampler, run with their defaults
(temperature 1, no top-k / top-p, no guidance), draw from exactly that distribution. It differs from `guided` +
`distribution` in: the guided logits `uncond + cfg_scale * (cond - uncond)`, on only when cfg_scale > 1 (jaxtok's
`cond + g * (cond - uncond)` is the same for g = cfg_scale - 1 up to rounding); guidance switched off after
`cfg_interval` tokens; and `logit_filters.llamagen_filter` (temperature floored at 1e-5, Hugging Face top-p).
"""
import dataclasses
import functools
import time
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from jaxtok.decoders import logit_filters


@flax.struct.dataclass
class TokenModel:
  """An autoregressive model as pure functions of its parameters (a pytree) and a cache (any pytree).

  Attributes:
    params: the model's parameters (e.g. flax variables).
    init: `(params, class_labels [b] int32, capacity: int) -> (logits [b, vocab], cache)`: a cache able to hold
      `capacity` tokens with none yet, and the logits of token 0.
    logits_fn: `(params, tokens [b, n] int32, cache) -> (logits [b, n, vocab], cache)`: appends n >= 1 tokens after
      each example's cached tokens; `logits[:, j]` predicts the token that follows `tokens[:, j]`.
    rollback: `(cache, num_tokens [b] int32) -> cache` keeping the first `num_tokens` tokens of each example.
    tree_logits_fn: optional, for tree verification (`tree_speculative`): `(params, tokens [b, nodes], parents, cache)
      -> (logits [b, nodes, vocab], cache)` appends a token tree after each example's tokens (node i at depth d sits
      at token index `num_tokens + d` and sees the cached tokens and its ancestors); `parents` is a static tuple as in
      `sparse_attention.mask.TreeMask` (-1: child of the cached tokens, parents precede children).
    keep_path: optional, with tree_logits_fn: `(cache, num_tokens [b], path [b, n] node indices, count [b]) -> cache`
      keeping the first num_tokens tokens followed by the tree nodes `path[:, :count]`, in that order.
  """
  params: Any
  init: Callable = flax.struct.field(pytree_node=False)
  logits_fn: Callable = flax.struct.field(pytree_node=False)
  rollback: Callable = flax.struct.field(pytree_node=False)
  tree_logits_fn: Callable | None = flax.struct.field(pytree_node=False, default=None)
  keep_path: Callable | None = flax.struct.field(pytree_node=False, default=None)


@flax.struct.dataclass
class SamplerOutput:
  """Tokens and statistics of one sampling call.

  Attributes:
    tokens: `[b, L]` int32.
    target_calls: batched calls of the (target) model, prefill included.
    draft_calls: batched calls of a draft model (0 without one).
    accepted: `[b]` int32 draft tokens accepted per example (0 for plain sampling).
    proposed: `[b]` int32 draft tokens verified per example.
    wall_time: seconds of the call, measured on the host after `block_until_ready` (compile included on a first call).
  """
  tokens: jax.Array
  target_calls: jax.Array
  draft_calls: jax.Array
  accepted: jax.Array
  proposed: jax.Array
  wall_time: float = flax.struct.field(pytree_node=False, default=0.0)

  @property
  def acceptance_rate(self) -> float:
    """Accepted over proposed draft tokens, over the batch (0 when nothing was proposed)."""
    return float(jnp.sum(self.accepted) / jnp.maximum(jnp.sum(self.proposed), 1))

  @property
  def tokens_per_call(self) -> float:
    """Tokens per example over batched target calls (1 for plain sampling)."""
    return self.tokens.shape[1] / float(self.target_calls)


def distribution(logits: jax.Array, *, temperature: float, top_k: int = 0, top_p: float = 1.0) -> jax.Array:
  """Sampling distribution `[..., vocab]` float32 of logits `[..., vocab]`: softmax of the filtered logits, or for
  temperature 0 (greedy) the one-hot of the argmax, so that one acceptance rule serves sampling and greedy decoding."""
  if temperature == 0:
    return jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1], dtype=jnp.float32)
  filtered = logit_filters.filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p)
  return jax.nn.softmax(filtered, axis=-1)


def draw(keys: jax.Array, probabilities: jax.Array) -> jax.Array:
  """One token per example: keys `[b]`, probabilities `[b, vocab]` -> `[b]` int32."""
  tokens = jax.vmap(lambda key, p: jax.random.categorical(key, jnp.log(p)))(keys, probabilities)
  return tokens.astype(jnp.int32)


def example_keys(key: jax.Array, batch: int) -> jax.Array:
  """`[batch]` keys, `fold_in(key, i)` for example i."""
  return jax.vmap(jax.random.fold_in, (None, 0))(key, jnp.arange(batch))


def step_keys(keys: jax.Array, step: jax.Array) -> jax.Array:
  """`[batch]` keys of one step: `fold_in(keys[i], step)`."""
  return jax.vmap(jax.random.fold_in, (0, None))(keys, step)


@dataclasses.dataclass(frozen=True)
class PairedNull:
  """Per-example null conditions: the null label of an example labelled l is l + offset. LlamaGen t2i pairs each
  caption with the unconditional caption under that caption's padding mask (`llamagen_gpt.as_token_model`)."""
  offset: int

  def __call__(self, class_labels: jax.Array) -> jax.Array:
    return class_labels + self.offset


def null_labels(null_class: int | Callable[[jax.Array], jax.Array], class_labels: jax.Array) -> jax.Array:
  """The labels `[b]` of the unconditional half: `null_class` everywhere, or `null_class(class_labels)`."""
  if callable(null_class):
    return null_class(class_labels).astype(class_labels.dtype)
  return jnp.full_like(class_labels, null_class)


@functools.lru_cache(maxsize=None)
def _guided_functions(init, logits_fn, rollback, guidance_scale: float, null_class):
  """Functions of a guided model; cached so the same model and scale give the same (jit-cacheable) functions."""

  def combine(logits):
    cond, uncond = jnp.split(logits, 2, axis=0)
    return cond + guidance_scale * (cond - uncond)

  def guided_init(params, class_labels, capacity):
    logits, cache = init(params, jnp.concatenate([class_labels, null_labels(null_class, class_labels)]), capacity)
    return combine(logits), cache

  def guided_logits_fn(params, tokens, cache):
    logits, cache = logits_fn(params, jnp.concatenate([tokens, tokens]), cache)
    return combine(logits), cache

  def guided_rollback(cache, num_tokens):
    return rollback(cache, jnp.concatenate([num_tokens, num_tokens]))

  return guided_init, guided_logits_fn, guided_rollback


def guided(model: TokenModel, guidance_scale: float, null_class: int | Callable | None) -> TokenModel:
  """Classifier-free guidance as a model: logits `cond + guidance_scale * (cond - uncond)`, the conditional and
  null-class halves stacked into one batched call. guidance_scale 0 returns the model unchanged.

  null_class: the unconditional label, or a hashable callable mapping the labels `[b]` to per-example null labels
  (e.g. `PairedNull`)."""
  if guidance_scale == 0:
    return model
  if null_class is None:
    raise ValueError(f"guidance_scale={guidance_scale} needs null_class (the unconditional label), got None.")
  null_class = null_class if callable(null_class) else int(null_class)
  functions = _guided_functions(model.init, model.logits_fn, model.rollback, float(guidance_scale), null_class)
  return TokenModel(model.params, *functions)


@flax.struct.dataclass
class CountedCache:
  """A wrapped model's cache and the tokens `[b]` each example has appended (which guidance needs to know)."""
  inner: Any
  num_tokens: jax.Array


@dataclasses.dataclass(frozen=True)
class _LlamaGenSettings:
  cfg_scale: float
  null_class: Any
  cfg_interval: float
  temperature: float
  top_k: int
  top_p: float

  @property
  def guided(self) -> bool:
    return self.cfg_scale > 1.0  # generate.py runs the null half only then


def _llamagen_logits(settings: _LlamaGenSettings, logits: jax.Array, token_index: jax.Array) -> jax.Array:
  """Guided then filtered logits. logits: `[2b or b, ..., vocab]`; token_index: `[b, ...]` index of the predicted
  token (0 for the prefill), guidance applying while `cfg_interval == -1 or index <= cfg_interval + 1`."""
  if settings.guided:
    cond, uncond = jnp.split(logits, 2, axis=0)
    mixed = uncond + (cond - uncond) * settings.cfg_scale
    if settings.cfg_interval > -1:
      mixed = jnp.where((token_index <= settings.cfg_interval + 1)[..., None], mixed, cond)
    logits = mixed
  return logit_filters.llamagen_filter(logits, temperature=settings.temperature, top_k=settings.top_k,
                                       top_p=settings.top_p)


def _node_depths(parents: tuple[int, ...]) -> np.ndarray:
  """Depth of each node of a `tree_logits_fn` token tree, `[nodes]` (0 for children of the cached tokens)."""
  depths = np.zeros(len(parents), np.int32)
  for node, parent in enumerate(parents):
    depths[node] = depths[parent] + 1 if parent >= 0 else 0
  return depths


@functools.lru_cache(maxsize=None)
def _llamagen_functions(model_functions: tuple, settings: _LlamaGenSettings) -> tuple:
  init, logits_fn, rollback, tree_logits_fn, keep_path = model_functions
  both = (lambda x: jnp.concatenate([x, x])) if settings.guided else (lambda x: x)

  def wrapped_init(params, class_labels, capacity):
    labels = class_labels
    if settings.guided:
      labels = jnp.concatenate([class_labels, null_labels(settings.null_class, class_labels)])
    logits, cache = init(params, labels, capacity)
    zeros = jnp.zeros(class_labels.shape, jnp.int32)
    return _llamagen_logits(settings, logits, zeros), CountedCache(cache, zeros)

  def wrapped_logits_fn(params, tokens, cache):
    logits, inner = logits_fn(params, both(tokens), cache.inner)
    index = cache.num_tokens[:, None] + jnp.arange(1, tokens.shape[1] + 1)[None]
    return _llamagen_logits(settings, logits, index), CountedCache(inner, cache.num_tokens + tokens.shape[1])

  def wrapped_rollback(cache, num_tokens):
    return CountedCache(rollback(cache.inner, both(num_tokens)), jnp.minimum(cache.num_tokens, num_tokens))

  def wrapped_tree_logits_fn(params, tokens, parents, cache):
    logits, inner = tree_logits_fn(params, both(tokens), parents, cache.inner)
    index = cache.num_tokens[:, None] + jnp.asarray(_node_depths(parents))[None] + 1
    return _llamagen_logits(settings, logits, index), CountedCache(inner, cache.num_tokens + tokens.shape[1])

  def wrapped_keep_path(cache, num_tokens, path, count):
    inner = keep_path(cache.inner, both(num_tokens), both(path), both(count))
    return CountedCache(inner, num_tokens + count)

  has_tree = tree_logits_fn is not None and keep_path is not None
  return (wrapped_init, wrapped_logits_fn, wrapped_rollback, wrapped_tree_logits_fn if has_tree else None,
          wrapped_keep_path if has_tree else None)


def llamagen_sampling(model: TokenModel, *, null_class: int | Callable | None = None, cfg_scale: float = 1.0,
                      cfg_interval: float = -1, temperature: float = 1.0, top_k: int = 0,
                      top_p: float = 1.0) -> TokenModel:
  """LlamaGen's `generate.generate` sampling distribution as a `TokenModel`.

  Its logits are `logit_filters.llamagen_filter` of the guided logits `uncond + cfg_scale * (cond - uncond)`
  (both halves fed the same tokens, the null half labelled `null_class`), so `sample(model, ...)` and every
  speculative sampler with their default temperature 1, top_k 0, top_p 1 and no guidance_scale draw from exactly
  generate.py's distribution (temperature 0 in those samplers: its greedy decoding). Token 0 comes from the prefill
  logits; guidance is on for token t while `cfg_interval == -1 or t <= cfg_interval + 1` (generate.py's
  `decode_n_tokens` switches it off after its step `cfg_interval`), and only when cfg_scale > 1. Tree verification
  works when `model` has tree functions.

  Args:
    model: the conditional model (e.g. `llamagen_gpt.as_token_model(...)`).
    null_class: the unconditional label or a callable giving per-example null labels (`PairedNull`); needed when
      cfg_scale > 1.
    cfg_scale, cfg_interval, temperature, top_k, top_p: as generate.py's arguments (`sample_c2i.py` defaults:
      cfg_scale 4.0, cfg_interval -1, temperature 1.0, top_k 2000, top_p 1.0).
  """
  if cfg_scale > 1.0 and null_class is None:
    raise ValueError(f"cfg_scale={cfg_scale} > 1 needs null_class (the unconditional label), got None.")
  if top_k < 0 or not 0 < top_p <= 1 or temperature < 0:
    raise ValueError(f"llamagen_sampling needs temperature >= 0, top_k >= 0 and top_p in (0, 1], got "
                     f"temperature={temperature}, top_k={top_k}, top_p={top_p}.")
  null_class = null_class if callable(null_class) or null_class is None else int(null_class)
  settings = _LlamaGenSettings(float(cfg_scale), null_class, float(cfg_interval), float(temperature), int(top_k),
                               float(top_p))
  functions = (model.init, model.logits_fn, model.rollback, model.tree_logits_fn, model.keep_path)
  return TokenModel(model.params, *_llamagen_functions(functions, settings))


def check_sampling_arguments(class_labels, *, sequence_length: int, temperature: float, top_k: int, top_p: float):
  """ValueErrors for arguments every sampler shares."""
  if class_labels.ndim != 1 or not jnp.issubdtype(class_labels.dtype, jnp.integer):
    raise ValueError(f"class_labels must be integer [batch], got {class_labels.dtype} {class_labels.shape}.")
  if sequence_length < 1:
    raise ValueError(f"sequence_length must be >= 1, got {sequence_length}.")
  if temperature < 0:
    raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}.")
  if top_k < 0:
    raise ValueError(f"top_k must be >= 0 (0 = off), got {top_k}.")
  if not 0 < top_p <= 1:
    raise ValueError(f"top_p must lie in (0, 1], got {top_p}.")


def write_window(buffer: jax.Array, window: jax.Array, start: jax.Array) -> jax.Array:
  """Writes window `[b, n]` into buffer `[b, length]` at per-example start `[b]`."""
  return jax.vmap(lambda row, new, at: jax.lax.dynamic_update_slice(row, new, (at,)))(buffer, window, start)


def timed(sampler: Callable[..., SamplerOutput], *args, **kwargs) -> SamplerOutput:
  """Runs a jitted sampler, waits for its result and records the wall time in `SamplerOutput.wall_time`.

  The samplers also run inside a caller's `jax.jit` / `jax.vmap`; wall_time then measures only the tracing.
  """
  start = time.perf_counter()
  output = jax.block_until_ready(sampler(*args, **kwargs))
  return output.replace(wall_time=time.perf_counter() - start)


@functools.partial(jax.jit, static_argnames=("sequence_length", "temperature", "top_k", "top_p"))
def _sample(model, key, class_labels, *, sequence_length, temperature, top_k, top_p) -> SamplerOutput:
  batch = class_labels.shape[0]
  keys = example_keys(key, batch)
  to_distribution = functools.partial(distribution, temperature=temperature, top_k=top_k, top_p=top_p)
  logits, cache = model.init(model.params, class_labels, sequence_length)
  first = draw(step_keys(keys, 0), to_distribution(logits))

  def step(carry, index):
    previous, cache = carry
    logits, cache = model.logits_fn(model.params, previous[:, None], cache)
    token = draw(step_keys(keys, index), to_distribution(logits[:, 0]))
    return (token, cache), token

  _, rest = jax.lax.scan(step, (first, cache), jnp.arange(1, sequence_length))
  tokens = jnp.concatenate([first[:, None], rest.T], axis=1)
  zeros = jnp.zeros((batch,), jnp.int32)
  return SamplerOutput(tokens, jnp.int32(sequence_length), jnp.int32(0), zeros, zeros)


def sample(model: TokenModel, key: jax.Array, class_labels: jax.Array, *, sequence_length: int,
           temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, guidance_scale: float = 0.0,
           null_class: int | None = None) -> SamplerOutput:
  """Samples `[b, sequence_length]` tokens: prefill, then a jitted scan of single-token decode steps.

  Args:
    model: the `TokenModel` (e.g. `autoregressive.as_logits_fn(model, variables)`).
    key: PRNG key; example i uses `fold_in(key, i)`, and token t of it `fold_in(fold_in(key, i), t)`.
    class_labels: `[b]` int32.
    sequence_length: L, tokens per example.
    temperature: 0 is greedy (argmax); otherwise logits / temperature.
    top_k, top_p: filters of `logit_filters` (0 and 1 switch them off).
    guidance_scale, null_class: classifier-free guidance (see `guided`); 0 switches it off.

  Returns:
    `SamplerOutput` with tokens `[b, L]` int32, `target_calls` = L and the host-measured wall time.
  """
  check_sampling_arguments(class_labels, sequence_length=sequence_length, temperature=temperature, top_k=top_k,
                           top_p=top_p)
  model = guided(model, guidance_scale, null_class)
  return timed(_sample, model, key, class_labels, sequence_length=sequence_length, temperature=float(temperature),
               top_k=top_k, top_p=float(top_p))
