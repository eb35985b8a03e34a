"""LlamaGen's GPT (Sun et al. 2024, "Autoregressive Model Beats Diffusion: Llama for Scalable Image Generation";
FoundationVision/LlamaGen `autoregressive/models/gpt.py`), layer for layer, with a static KV cache.

A Llama decoder over [condition tokens; image tokens]: pre-norm blocks of RMSNorm (eps 1e-5, float32), bias-free
attention with a fused q | k | v projection and LlamaGen's 2D RoPE (`jaxtok.nn.rope_2d`: the condition positions
have cos = sin = 0, so their queries and keys are zero), a SwiGLU feed-forward (hidden `find_multiple(int(8d/3),
256)`), a final RMSNorm and an untied output head; no absolute positions. The condition is a class (c2i: a table of
`num_classes + 1` rows, the last the null class of classifier-free guidance) or a caption (t2i: 120 flan-t5-xl
embeddings, left-padded, through a 2-layer GELU-tanh MLP; the null caption is the `uncond_embedding` constant, and
padded caption positions are masked out of every attention row but their own).

Sequence positions: 0 .. T-1 hold the condition (T = `num_condition_tokens`), image token i sits at T + i; the
logits at position T - 1 + i predict token i. `__call__` is the teacher-forced pass (inference only: the official
training dropouts are not reproduced); `init_cache` / `prefill` / `decode` / `decode_tree` run the same network
incrementally, and `as_token_model` wraps them as the `ar_sampling.TokenModel` that every jaxtok sampler drives
(`ar_sampling.llamagen_sampling` adds generate.py's guidance and filters).
"""
import functools
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from jaxtok.decoders import ar_sampling
from jaxtok.decoders import tree_speculative
from jaxtok.kernels.sparse_attention import mask as mask_lib
from jaxtok.nn import attention
from jaxtok.nn import dtypes
from jaxtok.nn import kv_cache
from jaxtok.nn import partitioned
from jaxtok.nn import rope_2d
from jaxtok.nn.rms_norm import RMSNorm
from jaxtok.nn.swiglu import SwiGLU
from jaxtok.nn.swiglu import swiglu_hidden_dim

# Official `GPT_models`: name -> (depth, num_heads, width).
LLAMAGEN_GPT_MODELS = {
    "GPT-B": (12, 12, 768), "GPT-L": (24, 16, 1024), "GPT-XL": (36, 20, 1280), "GPT-XXL": (48, 24, 1536),
    "GPT-XXXL": (48, 40, 2560), "GPT-1B": (22, 32, 2048), "GPT-3B": (24, 32, 3200), "GPT-7B": (32, 32, 4096),
}
CONDITIONS = ("class", "caption")
_INIT = nn.initializers.normal(0.02)  # the official initializer_range


@flax.struct.dataclass
class LlamaGenCache:
  """kv: the keys/values of every layer; key_valid: `[batch, max_length]` bool, False at padded caption positions."""
  kv: kv_cache.KVCache
  key_valid: jax.Array


def attention_mask(query_positions: jax.Array, key_valid: jax.Array) -> jax.Array:
  """`[b, 1, n, keys]` bool: a query at position p sees the valid keys at positions <= p, and always itself.

  query_positions: `[b, n]` int32; key_valid: `[b, keys]` bool (the official t2i mask: causal, padded caption
  columns removed, the diagonal put back)."""
  keys = jnp.arange(key_valid.shape[1])[None, None, :]
  queries = query_positions[:, :, None]
  return ((keys <= queries) & key_valid[:, None, :] | (keys == queries))[:, None]


class LlamaGenBlock(nn.Module):
  """`h = x + wo(attention(rope(q), rope(k), v))` over `attention_norm(x)`, then `h + feed_forward(ffn_norm(h))`."""
  num_heads: int
  mlp_dim: int
  norm_eps: float = 1e-5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, cos_sin: jax.Array, mask: jax.Array, cache: kv_cache.KVCache | None = None,
               layer: int = 0) -> tuple[jax.Array, kv_cache.KVCache | None]:
    """x: `[b, n, width]`; cos_sin: `[b, n, head_dim / 2, 2]` RoPE rows; mask: `[b, 1, n, keys]` (keys = n without a
    cache, its max_length with one, where the n new keys/values are written at its lengths, not advanced)."""
    width = x.shape[-1]
    head_dim = width // self.num_heads
    x = partitioned.constrain_activation(x, ("batch", "length", "embed"))
    normed = RMSNorm(self.norm_eps, self.dtype, name="attention_norm")(x)
    wqkv = self.param("wqkv", partitioned.kernel(("embed", None, "heads", "head_dim"), _INIT),
                      (width, 3, self.num_heads, head_dim), jnp.float32)
    queries, keys, values = jnp.einsum("bnd,dthk->tbnhk", normed, wqkv.astype(self.dtype))
    queries, keys = rope_2d.apply_rope(queries, cos_sin), rope_2d.apply_rope(keys, cos_sin)
    if cache is not None:
      cache = kv_cache.write_layer(cache, layer, keys, values)
      keys, values = cache.keys[layer], cache.values[layer]
    attended = attention.attend(queries, keys, values, mask)
    x = x + attention.HeadsProjection(width, self.num_heads, head_dim, to_heads=False, use_bias=False,
                                      dtype=self.dtype, name="wo")(attended)
    feed_forward = SwiGLU(self.mlp_dim, dtype=self.dtype, name="feed_forward")
    return x + feed_forward(RMSNorm(self.norm_eps, self.dtype, name="ffn_norm")(x)), cache


class LlamaGenGPT(nn.Module):
  """LlamaGen's class- or caption-conditional GPT; float32 logits `[batch, L, vocab]`.

  Attributes:
    vocab_size: tokens in [0, vocab_size) (16384, the VQ codebook).
    sequence_length: L image tokens, a square grid in raster order (256 = 16 x 16 at 256 px with VQ-16).
    width, depth, num_heads: transformer size (`LLAMAGEN_GPT_MODELS`); num_heads divides width, head_dim by 4.
    condition: "class" (c2i) or "caption" (t2i).
    num_classes: class labels in [0, num_classes]; num_classes is the null class (c2i).
    caption_dim: T5 embedding width (2048, flan-t5-xl; t2i).
    num_condition_tokens: T, 1 for c2i, 120 for t2i (the official cls_token_num).
    multiple_of, ffn_dim_multiplier: the SwiGLU width rule (`swiglu_hidden_dim`).
    rope_base, norm_eps: 10000 and 1e-5 in every official model.
    dtype: computation dtype, "float32" or "bfloat16" (parameters and logits are float32).
  """
  vocab_size: int = 16384
  sequence_length: int = 256
  width: int = 768
  depth: int = 12
  num_heads: int = 12
  condition: str = "class"
  num_classes: int = 1000
  caption_dim: int = 2048
  num_condition_tokens: int = 1
  multiple_of: int = 256
  ffn_dim_multiplier: float | None = None
  rope_base: float = 10000.0
  norm_eps: float = 1e-5
  dtype: str = "float32"

  @property
  def num_codebooks(self) -> int:
    return 1

  @property
  def grid_size(self) -> int:
    return int(round(self.sequence_length**0.5))

  def setup(self):
    self._check_fields()
    computation = dtypes.compute_dtype(self.dtype)
    if self.condition == "class":
      self.class_embedding = self.param("class_embedding", partitioned.kernel(("vocab", "embed"), _INIT),
                                        (self.num_classes + 1, self.width), jnp.float32)
    else:
      dense = lambda features, axes, name: nn.Dense(features, use_bias=False, dtype=computation, name=name,
                                                    kernel_init=partitioned.kernel(axes, _INIT))
      self.caption_fc1 = dense(self.width, (None, "mlp"), "caption_fc1")
      self.caption_fc2 = dense(self.width, ("mlp", "embed"), "caption_fc2")
      self.uncond_embedding = self.variable(
          "constants", "uncond_embedding", lambda: jax.random.normal(
              self.make_rng("params"), (self.num_condition_tokens, self.caption_dim)) / self.caption_dim**0.5)
    self.token_embedding = self.param("token_embedding", partitioned.kernel(("vocab", "embed"), _INIT),
                                      (self.vocab_size, self.width), jnp.float32)
    mlp_dim = swiglu_hidden_dim(self.width, self.multiple_of, self.ffn_dim_multiplier)
    self.blocks = [LlamaGenBlock(self.num_heads, mlp_dim, self.norm_eps, computation, name=f"block{index}")
                   for index in range(self.depth)]
    self.norm = RMSNorm(self.norm_eps, computation, name="norm")
    self.output = nn.Dense(self.vocab_size, use_bias=False, dtype=computation, name="output",
                           kernel_init=partitioned.kernel(("embed", "vocab"), _INIT))

  def _check_fields(self):
    if self.condition not in CONDITIONS:
      raise ValueError(f"condition must be one of {CONDITIONS}, got {self.condition!r}.")
    if self.width % self.num_heads or (self.width // self.num_heads) % 4:
      raise ValueError(f"num_heads must divide width into heads of a multiple of 4 (2D RoPE), got width="
                       f"{self.width}, num_heads={self.num_heads}.")
    if self.grid_size**2 != self.sequence_length or self.num_condition_tokens < 1:
      raise ValueError(f"sequence_length must be a square (a token grid) and num_condition_tokens >= 1, got "
                       f"{self.sequence_length}, {self.num_condition_tokens}.")

  def _rope(self, positions: jax.Array) -> jax.Array:
    table = _rope_table(self.grid_size, self.width // self.num_heads, self.rope_base, self.num_condition_tokens)
    return rope_2d.rope_at(table, positions)

  def embed_condition(self, condition: jax.Array) -> jax.Array:
    """class labels `[b]` int -> `[b, 1, width]`; captions `[b, T, caption_dim]` -> `[b, T, width]`."""
    if self.condition == "class":
      if condition.ndim != 1 or not jnp.issubdtype(condition.dtype, jnp.integer):
        raise ValueError(f"a class-conditional LlamaGenGPT takes integer labels [batch], got {condition.dtype} "
                         f"{condition.shape}.")
      return self.class_embedding[condition][:, None]
    if condition.shape[1:] != (self.num_condition_tokens, self.caption_dim):
      raise ValueError(f"captions must be [batch, {self.num_condition_tokens}, {self.caption_dim}], got "
                       f"{condition.shape}.")
    hidden = nn.gelu(self.caption_fc1(condition), approximate=True)
    return self.caption_fc2(hidden)

  def null_caption(self, batch: int) -> jax.Array:
    """The unconditional caption `[batch, T, caption_dim]` (generate.py's `uncond_embedding`)."""
    return jnp.broadcast_to(self.uncond_embedding.value, (batch, self.num_condition_tokens, self.caption_dim))

  def _key_valid(self, batch: int, length: int, condition_mask: jax.Array | None) -> jax.Array:
    valid = jnp.ones((batch, length), bool)
    if condition_mask is None:
      return valid
    if condition_mask.shape != (batch, self.num_condition_tokens):
      raise ValueError(f"condition_mask must be [batch={batch}, {self.num_condition_tokens}], got "
                       f"{condition_mask.shape}.")
    return valid.at[:, :self.num_condition_tokens].set(condition_mask.astype(bool))

  def __call__(self, tokens: jax.Array, condition: jax.Array, condition_mask: jax.Array | None = None) -> jax.Array:
    """Teacher-forced pass: tokens `[b, L]` int32, condition (labels `[b]` or captions `[b, T, caption_dim]`),
    condition_mask `[b, T]` (captions; 1 = a real token) -> logits `[b, L, vocab]`, `logits[:, i]` predicting token i
    from the condition and the tokens before it."""
    if tokens.ndim != 2 or tokens.shape[1] != self.sequence_length or not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise ValueError(f"tokens must be integer [batch, {self.sequence_length}], got {tokens.dtype} {tokens.shape}.")
    x = jnp.concatenate([self.embed_condition(condition), self.token_embedding[tokens[:, :-1]]], axis=1)
    batch, length = x.shape[:2]
    positions = jnp.broadcast_to(jnp.arange(length)[None], (batch, length))
    mask = attention_mask(positions, self._key_valid(batch, length, condition_mask))
    logits, _ = self._logits(x, positions, mask)
    return logits[:, self.num_condition_tokens - 1:]

  def init_cache(self, batch: int, max_length: int) -> LlamaGenCache:
    """An empty cache of `max_length` positions (T condition positions + image tokens)."""
    head_dim = self.width // self.num_heads
    kv = kv_cache.create(self.depth, batch, max_length, self.num_heads, head_dim, dtypes.compute_dtype(self.dtype))
    return LlamaGenCache(kv, jnp.ones((batch, max_length), bool))

  def prefill(self, condition: jax.Array, cache: LlamaGenCache,
              condition_mask: jax.Array | None = None) -> tuple[jax.Array, LlamaGenCache]:
    """Writes the condition's T positions into an empty cache; returns the logits of token 0 `[b, vocab]` (those of
    position T - 1) and the cache with lengths T."""
    x = self.embed_condition(condition)
    batch, length = x.shape[:2]
    if batch != cache.kv.lengths.shape[0]:
      raise ValueError(f"the condition's batch {batch} differs from the cache's {cache.kv.lengths.shape[0]}.")
    cache = cache.replace(key_valid=self._key_valid(batch, cache.kv.max_length, condition_mask))
    positions = cache.kv.lengths[:, None] + jnp.arange(length)[None]
    logits, kv = self._logits(x, positions, attention_mask(positions, cache.key_valid), cache.kv)
    return logits[:, -1], cache.replace(kv=kv_cache.advance(kv, length))

  def decode(self, tokens: jax.Array, cache: LlamaGenCache) -> tuple[jax.Array, LlamaGenCache]:
    """Appends n >= 1 tokens `[b, n]` at each example's cache length; returns their logits `[b, n, vocab]`
    (`logits[:, j]` predicts the token after `tokens[:, j]`) and the cache with lengths + n."""
    if tokens.ndim != 2 or tokens.shape[0] != cache.kv.lengths.shape[0]:
      raise ValueError(f"tokens must be [batch={cache.kv.lengths.shape[0]}, n], got shape {tokens.shape}.")
    positions = cache.kv.lengths[:, None] + jnp.arange(tokens.shape[1])[None]
    logits, kv = self._logits(self.token_embedding[tokens], positions, attention_mask(positions, cache.key_valid),
                              cache.kv)
    return logits, cache.replace(kv=kv_cache.advance(kv, tokens.shape[1]))

  def decode_tree(self, tokens: jax.Array, cache: LlamaGenCache,
                  parents: tuple[int, ...]) -> tuple[jax.Array, LlamaGenCache]:
    """Appends a token tree (node i at slot `lengths + i`, rotated as position `lengths + depth(i)`; each node sees
    the cache and its ancestors) and returns every node's logits `[b, nodes, vocab]` and the cache with lengths +
    nodes (`kv_cache.keep_positions` then keeps one path). parents: static, as `sparse_attention.mask.TreeMask`."""
    if tokens.ndim != 2 or tokens.shape != (cache.kv.lengths.shape[0], len(parents)):
      raise ValueError(f"tokens must be [batch={cache.kv.lengths.shape[0]}, nodes={len(parents)}], got "
                       f"{tokens.shape}.")
    ancestry = jnp.asarray(mask_lib.dense(mask_lib.TreeMask(parents, 0))[0])  # [nodes, nodes]
    depths = jnp.asarray(tree_speculative.tree_depths(parents))
    lengths = cache.kv.lengths
    relative = jnp.arange(cache.kv.max_length)[None] - lengths[:, None]  # [b, keys]: node index of a key
    in_tree = (relative >= 0) & (relative < len(parents))
    sees_node = jax.vmap(lambda r: ancestry[:, jnp.clip(r, 0, len(parents) - 1)])(relative)  # [b, nodes, keys]
    mask = ((relative < 0)[:, None] & cache.key_valid[:, None]) | (in_tree[:, None] & sees_node)
    logits, kv = self._logits(self.token_embedding[tokens], lengths[:, None] + depths[None], mask[:, None], cache.kv)
    return logits, cache.replace(kv=kv_cache.advance(kv, len(parents)))

  def _logits(self, x, positions, mask, cache=None) -> tuple[jax.Array, kv_cache.KVCache | None]:
    x = x.astype(dtypes.compute_dtype(self.dtype))
    cos_sin = self._rope(positions)
    for layer, block in enumerate(self.blocks):
      x, cache = block(x, cos_sin, mask, cache, layer)
    return self.output(self.norm(x)).astype(jnp.float32), cache


@functools.lru_cache(maxsize=None)
def _rope_table(grid_size: int, head_dim: int, base: float, num_condition_tokens: int) -> np.ndarray:
  return rope_2d.rope_2d_table(grid_size, head_dim, base, num_condition_tokens)


@functools.lru_cache(maxsize=None)
def _decoding_functions(model: LlamaGenGPT):
  """One set of TokenModel functions per model configuration (jitted samplers hit their compile cache)."""
  offset = model.num_condition_tokens

  def init(params, class_labels, capacity):
    cache = model.init_cache(class_labels.shape[0], capacity + offset)
    condition, mask = _conditions(model, params, class_labels)
    return model.apply(params["variables"], condition, cache, mask, method="prefill")

  def logits_fn(params, tokens, cache):
    return model.apply(params["variables"], tokens, cache, method="decode")

  def rollback(cache, num_tokens):
    return cache.replace(kv=kv_cache.rollback(cache.kv, num_tokens + offset))

  def tree_logits_fn(params, tokens, parents, cache):
    return model.apply(params["variables"], tokens, cache, parents, method="decode_tree")

  def keep_path(cache, num_tokens, path, count):
    return cache.replace(kv=kv_cache.keep_positions(cache.kv, num_tokens + offset, path, count))

  return init, logits_fn, rollback, tree_logits_fn, keep_path


def _conditions(model: LlamaGenGPT, params: dict, labels: jax.Array) -> tuple[jax.Array, jax.Array | None]:
  """The prefill's condition for TokenModel labels: class labels as they are; for captions, label i < n the i-th
  caption with its mask and label n + i the null caption under caption i's mask (generate.py's CFG pairing)."""
  if model.condition == "class":
    return labels, None
  captions, masks = params["captions"], params["caption_masks"]
  count = captions.shape[0]
  source = labels % count
  null = model.apply(params["variables"], labels.shape[0], method="null_caption")
  condition = jnp.where((labels >= count)[:, None, None], null.astype(captions.dtype), captions[source])
  return condition, masks[source]


def as_token_model(model: LlamaGenGPT, variables: Any, captions: jax.Array | None = None,
                   caption_masks: jax.Array | None = None) -> ar_sampling.TokenModel:
  """The model as the `TokenModel` every jaxtok sampler takes.

  c2i: sampler labels are class labels, `model.num_classes` the null class. t2i: pass `captions` `[n, T,
  caption_dim]` (left-padded T5 embeddings, zero at padding, as `sample_t2i.py` builds them) and `caption_masks`
  `[n, T]`; sampler label i < n conditions on caption i, and the null condition of caption i is label n + i, which
  `ar_sampling.PairedNull(n)` (the `null_class` to pass) gives.
  """
  params = {"variables": variables}
  if model.condition == "caption":
    if captions is None or caption_masks is None or captions.shape[:1] + captions.shape[1:2] != caption_masks.shape:
      raise ValueError(f"a caption-conditional model needs captions [n, T, C] and caption_masks [n, T], got "
                       f"{None if captions is None else captions.shape} and "
                       f"{None if caption_masks is None else caption_masks.shape}.")
    params.update(captions=jnp.asarray(captions, jnp.float32), caption_masks=jnp.asarray(caption_masks, bool))
  return ar_sampling.TokenModel(params, *_decoding_functions(model))
