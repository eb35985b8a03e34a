"""Speculative decoding of autoregressive token models: draft-and-verify, Speculative Jacobi and Grouped decoding.

- `speculative_sample`: lossless draft-and-verify (Leviathan et al. 2023, "Fast Inference from Transformers via
  Speculative Decoding"; Chen et al. 2023, "Accelerating LLM Decoding with Speculative Sampling"). A draft model
  samples gamma tokens from q; the target scores all of them in one call; draft token i is accepted with probability
  min(1, p(x) / q(x)); the first rejected one is replaced by a sample of normalize(max(0, p - q)), and when all are
  accepted a bonus token comes from p. The output distribution is EXACTLY the target's.
- `jacobi_sample`: Speculative Jacobi Decoding (Teng et al. 2024, "Accelerating Auto-regressive Text-to-Image
  Generation with Training-free Speculative Jacobi Decoding"). No draft model: a window of draft tokens is refined by
  the target itself (each draft is resampled from the target's prediction under the previous drafts, a Jacobi
  iteration) and verified with the same probabilistic rule, so sampling stays exact, not only greedy decoding.
- `grouped_sample`: Grouped Speculative Decoding (So et al. 2025, "Grouped Speculative Decoding for Autoregressive
  Image Generation") on the Jacobi loop: a draft is accepted with probability min(1, p(G) / q(G)) for a group G of
  target candidates deemed visually equivalent to it (`NucleusGroup`, `EmbeddingGroup`). THIS VARIANT IS NOT EXACT:
  it trades fidelity to the target's distribution for more accepted tokens per call.

Batches run in lock step: every round costs one batched target call, and each example advances by its own number of
accepted tokens (its caches are rolled back per example). Each sampler is one jitted `lax.while_loop` over rounds;
the public functions time it on the host. Models are `ar_sampling.TokenModel`s.
"""
import functools

import flax.struct
import jax
import jax.numpy as jnp

from jaxtok.decoders import ar_sampling

INIT_STRATEGIES = ("random", "repeat_last")


def acceptance_probability(target_probability: jax.Array, draft_probability: jax.Array) -> jax.Array:
  """min(1, p(x) / q(x)) of drafted tokens x sampled from q (so q(x) > 0); any shape."""
  return jnp.minimum(1.0, target_probability / jnp.maximum(draft_probability, jnp.finfo(jnp.float32).tiny))


def residual_distribution(target: jax.Array, draft: jax.Array) -> jax.Array:
  """normalize(max(0, p - q)) `[..., vocab]`, the distribution of the replacement of a rejected draft; p itself
  where p <= q everywhere (never reached on a rejection in exact arithmetic, only through rounding)."""
  residual = jnp.maximum(target - draft, 0.0)
  mass = jnp.sum(residual, axis=-1, keepdims=True)
  return jnp.where(mass > 0, residual / jnp.where(mass > 0, mass, 1.0), target)


def accepted_prefix_length(accepted: jax.Array) -> jax.Array:
  """Leading True count of `[b, gamma]` bool -> `[b]` int32."""
  return jnp.sum(jnp.cumprod(accepted.astype(jnp.int32), axis=1), axis=1)


def _select(probabilities: jax.Array, tokens: jax.Array) -> jax.Array:
  """probabilities `[b, n, vocab]` at tokens `[b, n]` -> `[b, n]`."""
  return jnp.take_along_axis(probabilities, tokens[..., None], axis=-1)[..., 0]


def _row(array: jax.Array, index: jax.Array) -> jax.Array:
  """array `[b, n, ...]` at per-example index `[b]` -> `[b, ...]`."""
  return jax.vmap(lambda rows, i: rows[i])(array, index)


@flax.struct.dataclass
class NucleusGroup:
  """The dynamic group of GSD: the target's most likely tokens up to cumulative probability `mass` (its nucleus),
  when the draft is among them; otherwise the draft alone (the exact rule)."""
  mass: float = 0.5

  def __call__(self, target: jax.Array, drafts: jax.Array) -> jax.Array:
    """target `[..., vocab]`, drafts `[...]` -> bool `[..., vocab]` group of each draft (always containing it)."""
    descending = jnp.flip(jnp.sort(target, axis=-1), axis=-1)
    mass_before = jnp.cumsum(descending, axis=-1) - descending
    threshold = jnp.min(jnp.where(mass_before < self.mass, descending, jnp.inf), axis=-1, keepdims=True)
    nucleus = target >= threshold
    draft = jax.nn.one_hot(drafts, target.shape[-1], dtype=bool)
    draft_in_nucleus = jnp.any(nucleus & draft, axis=-1, keepdims=True)
    return jnp.where(draft_in_nucleus, nucleus, draft)


@flax.struct.dataclass
class EmbeddingGroup:
  """The tokens whose codebook embeddings lie within `radius` (Euclidean) of the draft's: a static visual-similarity
  group. codebook: `[vocab, dim]` (e.g. the tokenizer's quantizer codebook)."""
  codebook: jax.Array
  radius: float

  def __call__(self, target: jax.Array, drafts: jax.Array) -> jax.Array:
    del target  # The group depends on the codebook only.
    distances = jnp.linalg.norm(self.codebook[drafts][..., None, :] - self.codebook, axis=-1)
    return distances <= self.radius


def group_acceptance_probability(target: jax.Array, draft: jax.Array, tokens: jax.Array, group_rule) -> jax.Array:
  """min(1, p(G) / q(G)) with G = group_rule(p, tokens): target, draft `[b, n, vocab]`, tokens `[b, n]` -> `[b, n]`."""
  group = group_rule(target, tokens)
  return acceptance_probability(jnp.sum(jnp.where(group, target, 0.0), -1), jnp.sum(jnp.where(group, draft, 0.0), -1))


def check_same_vocabulary(target: ar_sampling.TokenModel, draft: ar_sampling.TokenModel, class_labels: jax.Array,
                          capacity: int) -> None:
  """ValueError unless the draft's logits are over the target's vocabulary (read from the shapes of their `init`
  under `jax.eval_shape`: nothing is computed)."""
  def vocab(model):
    logits = jax.eval_shape(lambda params, labels: model.init(params, labels, capacity)[0], model.params, class_labels)
    return logits.shape[-1]

  target_vocab, draft_vocab = vocab(target), vocab(draft)
  if target_vocab != draft_vocab:
    raise ValueError(f"the draft must share the target's vocabulary: target vocab {target_vocab}, draft vocab "
                     f"{draft_vocab}.")


def _check(class_labels, *, sequence_length, temperature, top_k, top_p, name, value):
  ar_sampling.check_sampling_arguments(class_labels, sequence_length=sequence_length, temperature=temperature,
                                       top_k=top_k, top_p=top_p)
  if value < 1:
    raise ValueError(f"{name} must be >= 1, got {value}.")


@functools.partial(jax.jit, static_argnames=("sequence_length", "gamma", "temperature", "top_k", "top_p"))
def _speculative(target: ar_sampling.TokenModel, draft: ar_sampling.TokenModel, key, class_labels, *, sequence_length,
                 gamma, temperature, top_k, top_p) -> ar_sampling.SamplerOutput:
  batch = class_labels.shape[0]
  keys = ar_sampling.example_keys(key, batch)
  to_distribution = functools.partial(ar_sampling.distribution, temperature=temperature, top_k=top_k, top_p=top_p)
  capacity = sequence_length + 2 * (gamma + 1)
  target_logits, target_cache = target.init(target.params, class_labels, capacity)
  _, draft_cache = draft.init(draft.params, class_labels, capacity)
  first = ar_sampling.draw(ar_sampling.step_keys(keys, 0), to_distribution(target_logits))
  tokens = jnp.zeros((batch, capacity), jnp.int32).at[:, 0].set(first)
  zeros = jnp.zeros((batch,), jnp.int32)
  # num_tokens: tokens decided so far; the last one is pending, not yet in either cache.
  state = dict(tokens=tokens, num_tokens=zeros + 1, last=first, target_cache=target_cache, draft_cache=draft_cache,
               accepted=zeros, proposed=zeros, round=jnp.int32(0))

  def propose(carry, index):
    previous, cache, round_keys = carry
    logits, cache = draft.logits_fn(draft.params, previous[:, None], cache)
    q = to_distribution(logits[:, 0])
    token = ar_sampling.draw(jax.vmap(jax.random.fold_in, (0, None))(round_keys, index), q)
    return (token, cache, round_keys), (token, q)

  def body(state):
    active = state["num_tokens"] < sequence_length
    round_keys = ar_sampling.step_keys(keys, state["round"] + 1)
    (last_draft, draft_cache, _), (drafts, q) = jax.lax.scan(propose, (state["last"], state["draft_cache"],
                                                                        round_keys), jnp.arange(gamma))
    drafts, q = drafts.T, jnp.moveaxis(q, 0, 1)  # [b, gamma], [b, gamma, vocab]
    _, draft_cache = draft.logits_fn(draft.params, last_draft[:, None], draft_cache)
    logits, target_cache = target.logits_fn(target.params, jnp.concatenate([state["last"][:, None], drafts], 1),
                                            state["target_cache"])
    p = to_distribution(logits)  # [b, gamma + 1, vocab]
    uniforms = jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, gamma), (gamma,)))(round_keys)
    accepted = accepted_prefix_length(uniforms < acceptance_probability(_select(p[:, :gamma], drafts),
                                                                         _select(q, drafts)))
    q_padded = jnp.concatenate([q, jnp.zeros_like(q[:, :1])], axis=1)  # residual(p, 0) = p: the bonus token
    replacement = residual_distribution(_row(p, accepted), _row(q_padded, accepted))
    new_token = ar_sampling.draw(jax.vmap(jax.random.fold_in, (0, None))(round_keys, gamma + 1), replacement)
    window = jnp.where(jnp.arange(gamma + 1)[None] == accepted[:, None], new_token[:, None],
                       jnp.concatenate([drafts, drafts[:, :1]], 1))
    kept = jnp.where(active, state["num_tokens"] + accepted, state["num_tokens"] - 1)
    written = ar_sampling.write_window(state["tokens"], window, state["num_tokens"])
    return dict(tokens=jnp.where(active[:, None], written, state["tokens"]),
                num_tokens=jnp.where(active, state["num_tokens"] + accepted + 1, state["num_tokens"]),
                last=jnp.where(active, new_token, state["last"]),
                target_cache=target.rollback(target_cache, kept), draft_cache=draft.rollback(draft_cache, kept),
                accepted=state["accepted"] + jnp.where(active, accepted, 0),
                proposed=state["proposed"] + jnp.where(active, gamma, 0), round=state["round"] + 1)

  state = jax.lax.while_loop(lambda s: jnp.any(s["num_tokens"] < sequence_length), body, state)
  return ar_sampling.SamplerOutput(state["tokens"][:, :sequence_length], state["round"] + 1,
                                   state["round"] * (gamma + 1) + 1, state["accepted"], state["proposed"])


def speculative_sample(target: ar_sampling.TokenModel, draft: ar_sampling.TokenModel, key: jax.Array,
                       class_labels: jax.Array, *, sequence_length: int, gamma: int = 4, temperature: float = 1.0,
                       top_k: int = 0, top_p: float = 1.0, guidance_scale: float = 0.0,
                       null_class: int | None = None) -> ar_sampling.SamplerOutput:
  """Lossless draft-and-verify sampling: exactly the target's distribution (after temperature / top-k / top-p / CFG).

  Token 0 comes from the target's prefill. Each round the draft proposes gamma tokens (gamma + 1 draft calls, the last
  one caching the final draft), the target scores [pending token, drafts] in one call of n = gamma + 1, each example
  keeps its accepted prefix plus one replacement or bonus token, and both caches roll back to it.
  Temperature 0 is greedy: the output is exactly the target's greedy sequence.

  Args:
    target, draft: `TokenModel`s over the same vocabulary (guided alike when guidance_scale != 0).
    key: PRNG key; example i uses `fold_in(key, i)`.
    class_labels: `[b]` int32.
    sequence_length: L.
    gamma: draft tokens per round.
    temperature, top_k, top_p, guidance_scale, null_class: as in `ar_sampling.sample`, applied to both models.

  Returns:
    `SamplerOutput`: tokens `[b, L]`, target calls (prefill + rounds), draft calls, per-example accepted / proposed
    drafts, wall time.
  """
  _check(class_labels, sequence_length=sequence_length, temperature=temperature, top_k=top_k, top_p=top_p,
         name="gamma", value=gamma)
  check_same_vocabulary(target, draft, class_labels, sequence_length)
  return ar_sampling.timed(_speculative, ar_sampling.guided(target, guidance_scale, null_class),
                           ar_sampling.guided(draft, guidance_scale, null_class), key, class_labels,
                           sequence_length=sequence_length, gamma=gamma, temperature=float(temperature), top_k=top_k,
                           top_p=float(top_p))


def _initial_window(key, last, window, vocab, strategy) -> tuple[jax.Array, jax.Array]:
  """Fresh drafts `[window]` and the distributions they were drawn from `[window, vocab]`, for one example."""
  if strategy == "random":
    return jax.random.randint(key, (window,), 0, vocab, jnp.int32), jnp.full((window, vocab), 1.0 / vocab)
  return jnp.full((window,), last, jnp.int32), jax.nn.one_hot(jnp.full((window,), last), vocab, dtype=jnp.float32)


@functools.partial(jax.jit, static_argnames=("sequence_length", "window", "init_strategy", "temperature", "top_k",
                                             "top_p"))
def _jacobi(model: ar_sampling.TokenModel, group_rule, key, class_labels, *, sequence_length, window, init_strategy,
            temperature, top_k, top_p) -> ar_sampling.SamplerOutput:
  batch = class_labels.shape[0]
  keys = ar_sampling.example_keys(key, batch)
  to_distribution = functools.partial(ar_sampling.distribution, temperature=temperature, top_k=top_k, top_p=top_p)
  capacity = sequence_length + 2 * (window + 1)
  logits, cache = model.init(model.params, class_labels, capacity)
  vocab = logits.shape[-1]
  first = ar_sampling.draw(ar_sampling.step_keys(keys, 0), to_distribution(logits))
  fresh = jax.vmap(functools.partial(_initial_window, window=window, vocab=vocab, strategy=init_strategy))
  drafts, q = fresh(jax.vmap(jax.random.fold_in, (0, None))(ar_sampling.step_keys(keys, 0), 1), first)
  zeros = jnp.zeros((batch,), jnp.int32)
  state = dict(tokens=jnp.zeros((batch, capacity), jnp.int32).at[:, 0].set(first), num_tokens=zeros + 1, last=first,
               drafts=drafts, q=q, cache=cache, accepted=zeros, proposed=zeros, round=jnp.int32(0))

  def body(state):
    active = state["num_tokens"] < sequence_length
    round_keys = ar_sampling.step_keys(keys, state["round"] + 1)
    fold = lambda salt: jax.vmap(jax.random.fold_in, (0, None))(round_keys, salt)
    drafts, q = state["drafts"], state["q"]
    logits, cache = model.logits_fn(model.params, jnp.concatenate([state["last"][:, None], drafts], 1),
                                    state["cache"])
    p = to_distribution(logits)  # [b, window + 1, vocab]; p[:, j] is the target at draft j given drafts < j.
    if group_rule is None:
      probability = acceptance_probability(_select(p[:, :window], drafts), _select(q, drafts))
    else:
      probability = group_acceptance_probability(p[:, :window], q, drafts, group_rule)
    uniforms = jax.vmap(lambda k: jax.random.uniform(k, (window,)))(fold(0))
    accepted = accepted_prefix_length(uniforms < probability)
    q_padded = jnp.concatenate([q, jnp.zeros_like(q[:, :1])], axis=1)
    new_token = ar_sampling.draw(fold(1), residual_distribution(_row(p, accepted), _row(q_padded, accepted)))
    # Jacobi update: the drafts after the new token are redrawn from this call's predictions, then fresh ones follow.
    refreshed = jax.vmap(lambda j: ar_sampling.draw(ar_sampling.step_keys(fold(2), j), p[:, j]))(
        jnp.arange(window + 1)).T
    fresh_drafts, fresh_q = fresh(fold(3), new_token)
    pool = jnp.concatenate([refreshed[:, 1:], fresh_drafts], 1)  # candidates for positions 1 .. 2 * window
    pool_q = jnp.concatenate([p[:, 1:], fresh_q], 1)
    shift = lambda rows, start: jax.lax.dynamic_slice_in_dim(rows, start, window)
    window_tokens = jnp.where(jnp.arange(window + 1)[None] == accepted[:, None], new_token[:, None],
                              jnp.concatenate([drafts, drafts[:, :1]], 1))
    keep = lambda new, old: jnp.where(active.reshape((-1,) + (1,) * (jnp.ndim(old) - 1)), new, old)
    written = ar_sampling.write_window(state["tokens"], window_tokens, state["num_tokens"])
    return dict(tokens=keep(written, state["tokens"]),
                num_tokens=keep(state["num_tokens"] + accepted + 1, state["num_tokens"]),
                last=keep(new_token, state["last"]),
                drafts=keep(jax.vmap(shift)(pool, accepted), drafts), q=keep(jax.vmap(shift)(pool_q, accepted), q),
                cache=model.rollback(cache, keep(state["num_tokens"] + accepted, state["num_tokens"] - 1)),
                accepted=state["accepted"] + keep(accepted, 0), proposed=state["proposed"] + keep(window, 0),
                round=state["round"] + 1)

  state = jax.lax.while_loop(lambda s: jnp.any(s["num_tokens"] < sequence_length), body, state)
  return ar_sampling.SamplerOutput(state["tokens"][:, :sequence_length], state["round"] + 1, jnp.int32(0),
                                   state["accepted"], state["proposed"])


def _jacobi_family(model, key, class_labels, group_rule, *, sequence_length, window, init_strategy, temperature,
                   top_k, top_p, guidance_scale, null_class) -> ar_sampling.SamplerOutput:
  _check(class_labels, sequence_length=sequence_length, temperature=temperature, top_k=top_k, top_p=top_p,
         name="window", value=window)
  if init_strategy not in INIT_STRATEGIES:
    raise ValueError(f"init_strategy must be one of {INIT_STRATEGIES}, got {init_strategy!r}.")
  return ar_sampling.timed(_jacobi, ar_sampling.guided(model, guidance_scale, null_class), group_rule, key,
                           class_labels, sequence_length=sequence_length, window=window, init_strategy=init_strategy,
                           temperature=float(temperature), top_k=top_k, top_p=float(top_p))


def jacobi_sample(model: ar_sampling.TokenModel, key: jax.Array, class_labels: jax.Array, *, sequence_length: int,
                  window: int = 8, init_strategy: str = "random", temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0, guidance_scale: float = 0.0,
                  null_class: int | None = None) -> ar_sampling.SamplerOutput:
  """Speculative Jacobi Decoding: exact sampling from the model with a self-refined window of drafts.

  Each round is one model call on [pending token, window drafts]. Draft j, drawn from a known distribution q_j (its
  initialisation, or the model's prediction in an earlier round under then-current drafts), is accepted with
  probability min(1, p_j / q_j) in order; the first rejection is replaced from normalize(max(0, p - q)) (a bonus
  token from p if all pass). Drafts behind it are redrawn from this call's predictions (the Jacobi step) and new
  drafts from `init_strategy` fill the window. A draft's value never influences an earlier acceptance test, so the
  output is exactly the model's distribution; at temperature 0 it is exactly greedy decoding.

  Args:
    model: the `TokenModel`.
    key, class_labels, sequence_length, temperature, top_k, top_p, guidance_scale, null_class: as in
      `ar_sampling.sample`.
    window: drafts verified per call.
    init_strategy: new drafts are "random" (uniform tokens, as Teng et al.) or "repeat_last" (the newest token).

  Returns:
    `SamplerOutput` (draft_calls 0: the model drafts for itself within its verification call).
  """
  return _jacobi_family(model, key, class_labels, None, sequence_length=sequence_length, window=window,
                        init_strategy=init_strategy, temperature=temperature, top_k=top_k, top_p=top_p,
                        guidance_scale=guidance_scale, null_class=null_class)


def grouped_sample(model: ar_sampling.TokenModel, key: jax.Array, class_labels: jax.Array, *, sequence_length: int,
                   group_rule=NucleusGroup(), window: int = 8, init_strategy: str = "random",
                   temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, guidance_scale: float = 0.0,
                   null_class: int | None = None) -> ar_sampling.SamplerOutput:
  """Grouped Speculative Decoding: Jacobi drafting, accepting a draft for its group of equivalent candidates.

  NOT EXACT: a draft x is accepted with probability min(1, p(G) / q(G)), G = group_rule(p, x) a set of tokens
  containing x that the rule deems visually equivalent, which accepts more often than min(1, p(x) / q(x)); the samples
  follow a distribution that puts group-level, not token-level, mass where the target does. It trades exactness for
  tokens per call; with singleton groups it is `jacobi_sample`.

  Args:
    group_rule: a pytree callable `(p [b, n, vocab], drafts [b, n]) -> bool [b, n, vocab]` whose groups contain the
      drafts: `NucleusGroup(mass)` (dynamic, the target's top candidates) or `EmbeddingGroup(codebook, radius)`.
    other arguments: as in `jacobi_sample`.
  """
  return _jacobi_family(model, key, class_labels, group_rule, sequence_length=sequence_length, window=window,
                        init_strategy=init_strategy, temperature=temperature, top_k=top_k, top_p=top_p,
                        guidance_scale=guidance_scale, null_class=null_class)
