"""Flexible-length 1D tokenization: which prefix of the K latent tokens each example keeps, and the attention masks.

Two training schemes teach a 1D tokenizer to reconstruct from any prefix of its tokens:
- "nested_dropout" (FlexTok's `MaskedNestedDropout`): every example keeps the first k of K tokens, k drawn by
  `length_distribution`, one of FlexTok's `size_sampling_mode`s: "powers_of_two" (its "pow2") uniform over
  {1, 2, 4, ..., K}; "uniform" over {1, ..., K}; "uniform_powers_of_two" (its "uniform_pow2") uniform over
  {1, ..., K} rounded up to the next of {1, 2, 4, ..., K}, so half the examples of a power-of-two K keep all K.
  The encoder attends causally among the latent tokens, so token i summarises only what tokens < i left out
  (coarse to fine).
- "tail_drop" (One-D-Piece): with probability `tail_drop_probability` an example keeps the first k tokens, k uniform
  in {1, ..., K}; otherwise it keeps all K. Used with causal or full encoder attention.
The decoder sees the dropped tokens as absent keys (`decoder_mask`), which is exactly what decoding the k-token
prefix alone computes, so a model trained this way reconstructs from any prefix at inference.

Everything here is a pure function of shapes and keys.
"""
import jax
import jax.numpy as jnp
import numpy as np

TOKEN_DROPOUTS = ("none", "nested_dropout", "tail_drop")
LENGTH_DISTRIBUTIONS = ("powers_of_two", "uniform", "uniform_powers_of_two")
LATENT_ATTENTIONS = ("full", "causal")


def prefix_lengths(num_tokens: int, distribution: str) -> np.ndarray:
  """The prefix lengths nested dropout draws from: `[1, ..., K]` ("uniform") or `[1, 2, 4, ..., K]` (K always
  included) for the other two distributions."""
  if distribution == "uniform":
    return np.arange(1, num_tokens + 1)
  if distribution in ("powers_of_two", "uniform_powers_of_two"):
    powers = [2**i for i in range(int(np.log2(num_tokens)) + 1)]
    return np.array(sorted(set(powers) | {num_tokens}))
  raise ValueError(f"length distribution must be one of {LENGTH_DISTRIBUTIONS}, got {distribution!r}.")


def sample_keep_lengths(key: jax.Array, batch: int, num_tokens: int, scheme: str, *,
                        length_distribution: str = "powers_of_two",
                        tail_drop_probability: float = 0.5) -> jax.Array:
  """Tokens kept per example, int32 `[batch]` in [1, num_tokens], drawn by `scheme` (see the module docstring)."""
  if scheme == "none":
    return jnp.full((batch,), num_tokens, jnp.int32)
  if scheme == "nested_dropout":
    choices = jnp.asarray(prefix_lengths(num_tokens, length_distribution), jnp.int32)
    if length_distribution != "uniform_powers_of_two":
      return jax.random.choice(key, choices, (batch,))
    uniform = jax.random.randint(key, (batch,), 1, num_tokens + 1, jnp.int32)
    return choices[jnp.searchsorted(choices, uniform, side="left")]
  if scheme == "tail_drop":
    drop_key, length_key = jax.random.split(key)
    dropped = jax.random.bernoulli(drop_key, tail_drop_probability, (batch,))
    lengths = jax.random.randint(length_key, (batch,), 1, num_tokens + 1, jnp.int32)
    return jnp.where(dropped, lengths, num_tokens)
  raise ValueError(f"token dropout must be one of {TOKEN_DROPOUTS}, got {scheme!r}.")


def keep_mask(keep_lengths: jax.Array, num_tokens: int) -> jax.Array:
  """keep_lengths `[batch]` -> bool `[batch, num_tokens]`, True for the kept prefix."""
  return jnp.arange(num_tokens)[None, :] < keep_lengths[:, None]


def encoder_mask(num_context: int, num_latents: int, latent_attention: str) -> np.ndarray | None:
  """Self-attention mask over `[context; latents]` (context: TiTok's class token and patches), bool
  `[1, C + K, C + K]` (True = attend), or None for "full".

  "causal": context tokens attend to the context only (so no latent leaks into another through them); latent i
  attends to the whole context and to latents 0..i.
  """
  if latent_attention == "full":
    return None
  if latent_attention != "causal":
    raise ValueError(f"latent_attention must be one of {LATENT_ATTENTIONS}, got {latent_attention!r}.")
  total = num_context + num_latents
  mask = np.zeros((total, total), bool)
  mask[:, :num_context] = True
  mask[num_context:, num_context:] = np.tril(np.ones((num_latents, num_latents), bool))
  return mask[None]


def decoder_mask(num_context: int, kept: jax.Array) -> jax.Array:
  """Self-attention mask over `[context; latents]` hiding dropped latents as keys.

  Args:
    num_context: tokens before the latents (TiTok's class token and mask tokens), all always visible.
    kept: bool `[batch, K]`, True for the latents an example keeps.

  Returns:
    bool `[batch, 1, C + K, C + K]`.
  """
  keys = jnp.concatenate([jnp.ones((kept.shape[0], num_context), bool), kept], axis=1)
  return jnp.broadcast_to(keys[:, None, None, :], (kept.shape[0], 1, keys.shape[1], keys.shape[1]))
