"""An analytic autoregressive model, a class-conditional Markov chain with position-dependent transitions.

Its sequence distribution is known in closed form, which makes it the reference model of the exactness tests of the
samplers (speculative sampling, Leviathan et al. 2023, must reproduce the target's distribution exactly), and a minimal
example of a user model behind `ar_sampling.TokenModel`: a Markov chain needs no memory of the past beyond the token
it is fed, so its cache is just the number of tokens so far (which selects the transition table).
"""
import flax.struct
import jax
import jax.numpy as jnp

from jaxtok.decoders import ar_sampling
from jaxtok.decoders import tree_speculative


@flax.struct.dataclass
class MarkovParams:
  """initial_logits: `[classes, vocab]`, logits of token 0 per class; transition_logits: `[positions, vocab, vocab]`,
  `transition_logits[i, a]` the logits of token i + 1 after token i = a (positions past the end reuse the last)."""
  initial_logits: jax.Array
  transition_logits: jax.Array


@flax.struct.dataclass
class MarkovCache:
  """lengths: `[b]` int32 tokens so far."""
  lengths: jax.Array


def _init(params: MarkovParams, class_labels: jax.Array, capacity: int) -> tuple[jax.Array, MarkovCache]:
  del capacity  # The chain holds no per-token state.
  return params.initial_logits[class_labels], MarkovCache(jnp.zeros(class_labels.shape, jnp.int32))


def _logits_fn(params: MarkovParams, tokens: jax.Array, cache: MarkovCache) -> tuple[jax.Array, MarkovCache]:
  positions = cache.lengths[:, None] + jnp.arange(tokens.shape[1])[None]
  last_position = params.transition_logits.shape[0] - 1
  logits = params.transition_logits[jnp.minimum(positions, last_position), tokens]
  return logits, MarkovCache(cache.lengths + tokens.shape[1])


def _rollback(cache: MarkovCache, num_tokens: jax.Array) -> MarkovCache:
  return cache.replace(lengths=jnp.minimum(num_tokens, cache.lengths))


def _tree_logits_fn(params: MarkovParams, tokens: jax.Array, parents: tuple[int, ...],
                    cache: MarkovCache) -> tuple[jax.Array, MarkovCache]:
  depths = jnp.asarray(tree_speculative.tree_depths(parents))
  positions = jnp.minimum(cache.lengths[:, None] + depths[None], params.transition_logits.shape[0] - 1)
  return params.transition_logits[positions, tokens], MarkovCache(cache.lengths + tokens.shape[1])


def _keep_path(cache: MarkovCache, num_tokens: jax.Array, path: jax.Array, count: jax.Array) -> MarkovCache:
  del cache, path  # The chain holds no per-token state.
  return MarkovCache(num_tokens + count)


def markov_model(initial_logits: jax.Array, transition_logits: jax.Array) -> ar_sampling.TokenModel:
  """The chain as a `TokenModel`. initial_logits `[classes, vocab]`, transition_logits `[positions, vocab, vocab]`."""
  if initial_logits.ndim != 2 or transition_logits.ndim != 3 or transition_logits.shape[1:] != (
      initial_logits.shape[1],) * 2:
    raise ValueError(f"expected initial_logits [classes, V] and transition_logits [positions, V, V], got "
                     f"{initial_logits.shape} and {transition_logits.shape}.")
  params = MarkovParams(jnp.asarray(initial_logits, jnp.float32), jnp.asarray(transition_logits, jnp.float32))
  return ar_sampling.TokenModel(params=params, init=_init, logits_fn=_logits_fn, rollback=_rollback,
                                tree_logits_fn=_tree_logits_fn, keep_path=_keep_path)
