"""Class-conditional causal transformer over image tokens, with a static-shape KV cache for decoding.

The autoregressive image generator of VQGAN ("Taming Transformers", Esser et al. 2021) and LlamaGen ("Autoregressive
Model Beats Diffusion", Sun et al. 2024): a decoder-only transformer reads a class token, then the image's tokens in
order (1D TiTok tokens as they come, 2D grids in raster order), and predicts each token from the class and the tokens
before it. The class `num_classes` is the null class of classifier-free guidance (Ho & Salimans 2022); `loss` drops
labels to it with probability `class_dropout`.

Sequence positions: 0 is the class token, position i + 1 holds token i. `__call__` is the teacher-forced pass;
`init_cache`, `prefill` and `decode` run the same network incrementally over a `kv_cache.KVCache` without recomputing
the prefix, and `as_logits_fn` wraps them as the `ar_sampling.TokenModel` every sampler of `jaxtok.decoders` takes.
"""
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxtok import nn as jnn
from jaxtok.decoders import ar_sampling
from jaxtok.decoders import tree_speculative
from jaxtok.kernels.sparse_attention import mask as mask_lib
from jaxtok.nn import kv_cache


class CausalTokenTransformer(nn.Module):
  """Decoder-only transformer: class token, then tokens 0..L-1; float32 logits `[batch, L, vocab]`.

  Attributes:
    vocab_size: tokens take values in [0, vocab_size).
    sequence_length: L, tokens per image.
    num_classes: class labels in [0, num_classes]; num_classes itself is the null (unconditional) class.
    width, depth, num_heads, mlp_dim: transformer size (num_heads divides width).
    dropout_rate: dropout in the blocks when training.
    dtype: computation dtype, "float32" or "bfloat16" (parameters and logits are float32).
  """
  vocab_size: int
  sequence_length: int
  num_classes: int
  width: int = 768
  depth: int = 12
  num_heads: int = 12
  mlp_dim: int = 3072
  dropout_rate: float = 0.0
  dtype: str = "float32"

  @property
  def num_codebooks(self) -> int:
    """Tokens are single-codebook `[batch, L]` (the generator runner reads this)."""
    return 1

  def setup(self):
    if self.width % self.num_heads:
      raise ValueError(f"num_heads must divide width, got width={self.width}, num_heads={self.num_heads}.")
    computation = jnn.compute_dtype(self.dtype)
    self.class_embedding = jnn.embedding(self, "class_embedding", (self.num_classes + 1, self.width),
                                         ("vocab", "embed"))
    self.token_embedding = jnn.embedding(self, "token_embedding", (self.vocab_size, self.width), ("vocab", "embed"))
    self.position_embedding = jnn.embedding(self, "position_embedding", (self.sequence_length + 1, self.width),
                                            ("position", "embed"))
    self.blocks = [jnn.TransformerBlock(self.num_heads, self.mlp_dim, dropout_rate=self.dropout_rate,
                                        dtype=computation, name=f"block{depth}") for depth in range(self.depth)]
    self.final_norm = jnn.layer_norm(computation, "final_norm")
    self.output = jnn.dense(self.vocab_size, ("embed", "vocab"), computation, "output")

  def __call__(self, tokens: jax.Array, class_labels: jax.Array, *, train: bool = False) -> jax.Array:
    """Teacher-forced pass: tokens `[b, L]` int32, class_labels `[b]` int32 -> logits `[b, L, vocab]` float32, where
    `logits[:, i]` predicts token i from the class and tokens `< i`."""
    self._check_tokens(tokens, class_labels)
    inputs = jnp.concatenate([self.class_embedding[class_labels][:, None], self.token_embedding[tokens[:, :-1]]], 1)
    x = inputs + self.position_embedding[None, :self.sequence_length]
    mask = jnp.tril(jnp.ones((self.sequence_length, self.sequence_length), bool))[None, None]
    return self._logits(x, mask, deterministic=not train)[0]

  def loss(self, tokens: jax.Array, class_labels: jax.Array, *, train: bool = True, label_smoothing: float = 0.0,
           class_dropout: float = 0.1) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Next-token cross-entropy (mean over batch and positions) and `{"loss", "accuracy"}` metrics.

    Labels are replaced by the null class with probability `class_dropout` (rng stream "masking"); dropout in the
    blocks uses the "dropout" stream when `train`. tokens `[b, L]` int32, class_labels `[b]` int32.
    """
    self._check_tokens(tokens, class_labels)
    if class_dropout > 0:
      dropped = jax.random.bernoulli(self.make_rng("masking"), class_dropout, class_labels.shape)
      class_labels = jnp.where(dropped, self.num_classes, class_labels)
    logits = self(tokens, class_labels, train=train)
    targets = optax.smooth_labels(jax.nn.one_hot(tokens, self.vocab_size), label_smoothing)
    loss = jnp.mean(optax.softmax_cross_entropy(logits, targets))
    accuracy = jnp.mean(jnp.argmax(logits, -1) == tokens)
    return loss, {"loss": loss, "accuracy": accuracy}

  def init_cache(self, batch: int, max_length: int) -> kv_cache.KVCache:
    """An empty cache for `max_length` positions (class token included: L + 1 holds a whole sequence)."""
    head_dim = self.width // self.num_heads
    return kv_cache.create(self.depth, batch, max_length, self.num_heads, head_dim, jnn.compute_dtype(self.dtype))

  def prefill(self, class_labels: jax.Array, cache: kv_cache.KVCache) -> tuple[jax.Array, kv_cache.KVCache]:
    """Writes the class token (position 0) into an empty cache; returns the logits of token 0 `[b, vocab]` float32
    and the cache with lengths 1."""
    if class_labels.ndim != 1 or class_labels.shape[0] != cache.lengths.shape[0]:
      raise ValueError(f"class_labels must be [batch={cache.lengths.shape[0]}], got shape {class_labels.shape}.")
    x = self.class_embedding[class_labels][:, None] + self._positions(cache, 1)
    logits, cache = self._logits(x, kv_cache.attention_mask(cache, 1), cache=cache)
    return logits[:, 0], kv_cache.advance(cache, 1)

  def decode(self, tokens: jax.Array, cache: kv_cache.KVCache) -> tuple[jax.Array, kv_cache.KVCache]:
    """Appends n >= 1 tokens to each example at its own cache length and returns their logits.

    Args:
      tokens: `[b, n]` int32; `tokens[:, j]` goes to position `cache.lengths + j` (token index `lengths - 1 + j`).
      cache: holds the class token and the tokens before these; `lengths + n <= max_length`.

    Returns:
      logits `[b, n, vocab]` float32, `logits[:, j]` predicting the token after `tokens[:, j]`, and the cache with
      lengths + n. Positions past L (speculative drafts beyond the end) reuse the last position embedding.
    """
    if tokens.ndim != 2 or tokens.shape[0] != cache.lengths.shape[0]:
      raise ValueError(f"tokens must be [batch={cache.lengths.shape[0]}, n], got shape {tokens.shape}.")
    x = self.token_embedding[tokens] + self._positions(cache, tokens.shape[1])
    logits, cache = self._logits(x, kv_cache.attention_mask(cache, tokens.shape[1]), cache=cache)
    return logits, kv_cache.advance(cache, tokens.shape[1])

  def decode_tree(self, tokens: jax.Array, cache: kv_cache.KVCache,
                  parents: tuple[int, ...]) -> tuple[jax.Array, kv_cache.KVCache]:
    """Appends a token tree after each example's cached positions and returns every node's logits.

    Args:
      tokens: `[b, nodes]` int32, node i's token.
      cache: as in `decode`; `lengths + nodes <= max_length`.
      parents: static, `parents[i]` the parent node of node i, -1 for a child of the cached prefix (as
        `sparse_attention.mask.TreeMask`, whose ancestry gives the attention among nodes).

    Returns:
      logits `[b, nodes, vocab]` float32 (node i's predicts the token after the path to node i) and the cache with
      all nodes written at `lengths + i` and lengths + nodes; `kv_cache.keep_positions` then keeps one path.
    """
    if tokens.ndim != 2 or tokens.shape != (cache.lengths.shape[0], len(parents)):
      raise ValueError(f"tokens must be [batch={cache.lengths.shape[0]}, nodes={len(parents)}], got {tokens.shape}.")
    ancestry = jnp.asarray(mask_lib.dense(mask_lib.TreeMask(parents, 0))[0])  # [nodes, nodes]
    depths = jnp.asarray(tree_speculative.tree_depths(parents))
    x = self.token_embedding[tokens] + jnp.take(self.position_embedding, cache.lengths[:, None] + depths[None],
                                                axis=0, mode="clip")
    relative = jnp.arange(cache.max_length)[None] - cache.lengths[:, None]  # [b, max_length], node index of a key
    in_tree = (relative >= 0) & (relative < len(parents))
    sees_node = jax.vmap(lambda r: ancestry[:, jnp.clip(r, 0, len(parents) - 1)])(relative)  # [b, nodes, max_length]
    mask = (relative < 0)[:, None] | (in_tree[:, None] & sees_node)
    logits, cache = self._logits(x, mask[:, None], cache=cache)
    return logits, kv_cache.advance(cache, len(parents))

  def _positions(self, cache: kv_cache.KVCache, n: int) -> jax.Array:
    positions = cache.lengths[:, None] + jnp.arange(n)[None]
    return jnp.take(self.position_embedding, positions, axis=0, mode="clip")

  def _logits(self, x, mask, *, deterministic=True, cache=None) -> tuple[jax.Array, kv_cache.KVCache | None]:
    x = x.astype(jnn.compute_dtype(self.dtype))
    for layer, block in enumerate(self.blocks):
      if cache is None:
        x = block(x, mask, deterministic)
      else:
        x, cache = block(x, mask, deterministic, cache=cache, layer=layer)
    return self.output(self.final_norm(x)).astype(jnp.float32), cache

  def _check_tokens(self, tokens: jax.Array, class_labels: jax.Array):
    if tokens.ndim != 2 or tokens.shape[1] != self.sequence_length or not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise ValueError(f"tokens must be integer [batch, {self.sequence_length}], got {tokens.dtype} {tokens.shape}.")
    if class_labels.shape != tokens.shape[:1]:
      raise ValueError(f"class_labels must be [batch={tokens.shape[0]}], got shape {class_labels.shape}.")


@functools.lru_cache(maxsize=None)
def _decoding_functions(model: CausalTokenTransformer):
  """One set of functions per model configuration, so that jitted samplers hit their compile cache across calls."""

  def init(variables, class_labels, capacity):
    cache = model.init_cache(class_labels.shape[0], capacity + 1)
    return model.apply(variables, class_labels, cache, method="prefill")

  def logits_fn(variables, tokens, cache):
    return model.apply(variables, tokens, cache, method="decode")

  def rollback(cache, num_tokens):
    return kv_cache.rollback(cache, num_tokens + 1)

  def tree_logits_fn(variables, tokens, parents, cache):
    return model.apply(variables, tokens, cache, parents, method="decode_tree")

  def keep_path(cache, num_tokens, path, count):
    return kv_cache.keep_positions(cache, num_tokens + 1, path, count)

  return init, logits_fn, rollback, tree_logits_fn, keep_path


def as_logits_fn(model: CausalTokenTransformer, variables: Any) -> ar_sampling.TokenModel:
  """The model and its variables as the `TokenModel` the samplers take (the cache also holds the class token)."""
  return ar_sampling.TokenModel(variables, *_decoding_functions(model))
