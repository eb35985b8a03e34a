"""jaxtok's masked token transformer for MaskGIT (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer"):
a bidirectional transformer over token ids that predicts the masked ones, class-conditional with a null class for
classifier-free guidance (Ho & Salimans 2022), with the masking and loss every masked generator shares.

`MaskedTokenTransformer` is jaxtok's own design, not an official model: pre-LN blocks (tanh GELU, LayerNorm eps
1e-6) with a final LayerNorm, separate token and class tables, multi-codebook tokens. The official generators of
1d-tokenizer (post-LN `ImageBert`, U-ViT `UViTBert`) are `jaxtok.decoders.image_bert`'s; all share
`masked_generator_loss`.

Tokens are 1D sequences (TiTok) or flattened 2D grids `[batch, length]`, or multi-codebook tokens
`[batch, length, num_codebooks]` whose embeddings are summed per position and which get one output head per codebook.
Id `vocab_size` is the mask token; class `num_classes` is the null (unconditional) class. The class enters as one
extra token prepended to the sequence (as in MaskGIT, whose class id is a token of the same transformer); its output
is dropped. Masking works on the `length * num_codebooks` token units (a position's codebooks are masked
independently), as does `jaxtok.decoders.masked_sampling`.

Training (`MaskedTokenTransformer.loss`): t ~ U[0, 1), mask ceil(mask_ratio(t) * units) random units (at least one)
per example, drop the class to the null class with probability `class_dropout`, cross-entropy with label smoothing
on the masked units only.
"""
import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxtok import nn as jnn
from jaxtok.decoders import schedules
from jaxtok.nn import partitioned


def _check_int(name: str, array: jax.Array) -> None:
  if not jnp.issubdtype(array.dtype, jnp.integer):
    raise ValueError(f"{name} must be an integer array, got dtype {array.dtype}.")


def mask_tokens(key: jax.Array, tokens: jax.Array, schedule: str, mask_id: int) -> tuple[jax.Array, jax.Array]:
  """Masks a schedule-drawn fraction of each example's tokens.

  Args:
    key: PRNG key; example i uses `jax.random.fold_in(key, i)`.
    tokens: `[batch, length]` or `[batch, length, num_codebooks]` int.
    schedule: a `schedules.SCHEDULES` name; example i masks ceil(mask_ratio(t_i) * units) units, t_i ~ U[0, 1),
      at least 1, where units = length * num_codebooks.
    mask_id: the id written at masked units.

  Returns:
    (masked_tokens, is_masked), both of `tokens`' shape; masked_tokens has `tokens`' dtype, is_masked is bool.
  """
  _check_int("tokens", tokens)
  if tokens.ndim not in (2, 3):
    raise ValueError(f"tokens must be [batch, length] or [batch, length, num_codebooks], got shape {tokens.shape}.")
  units = einops.rearrange(tokens, "b ... -> b (...)")
  num_units = units.shape[1]
  example_keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(units.shape[0]))

  def example_mask(example_key):
    ratio_key, order_key = jax.random.split(example_key)
    ratio = schedules.mask_ratio(jax.random.uniform(ratio_key), schedule)
    num_masked = jnp.clip(jnp.ceil(ratio * num_units), 1, num_units).astype(jnp.int32)
    return jax.random.permutation(order_key, num_units) < num_masked

  is_masked = jax.vmap(example_mask)(example_keys).reshape(tokens.shape)
  return jnp.where(is_masked, jnp.asarray(mask_id, tokens.dtype), tokens), is_masked


def masked_token_loss(logits: jax.Array, targets: jax.Array, is_masked: jax.Array,
                      label_smoothing: float = 0.0) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Cross-entropy on the masked units only, averaged over them.

  Args:
    logits: `[batch, length(, num_codebooks), vocab]`.
    targets: `[batch, length(, num_codebooks)]` int in [0, vocab).
    is_masked: bool, `targets`' shape; only these units count.
    label_smoothing: in [0, 1); the target distribution is (1 - s) one-hot + s / vocab.

  Returns:
    (loss, metrics) with loss a float32 scalar and metrics {"accuracy": argmax accuracy on masked units,
    "masked_fraction": fraction of units masked}.
  """
  if logits.shape[:-1] != targets.shape or is_masked.shape != targets.shape:
    raise ValueError(f"logits [..., vocab] must match targets and is_masked [...], got logits {logits.shape}, "
                     f"targets {targets.shape}, is_masked {is_masked.shape}.")
  _check_int("targets", targets)
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}.")
  vocab = logits.shape[-1]
  logits = logits.astype(jnp.float32)
  labels = optax.smooth_labels(jax.nn.one_hot(targets, vocab, dtype=jnp.float32), label_smoothing)
  weights = is_masked.astype(jnp.float32)
  count = jnp.maximum(jnp.sum(weights), 1.0)
  loss = jnp.sum(optax.softmax_cross_entropy(logits, labels) * weights) / count
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  return loss, {"accuracy": jnp.sum(correct * weights) / count, "masked_fraction": jnp.mean(weights)}


class MaskedGenerator(nn.Module):
  """The fields every masked generator starts with, and the ids that `masked_generator_loss` and `masked_sampling`
  read: id `vocab_size` is the mask, class `num_classes` the null class."""
  vocab_size: int
  sequence_length: int
  num_classes: int

  @property
  def mask_id(self) -> int:
    return self.vocab_size

  @property
  def null_class(self) -> int:
    return self.num_classes


class MaskedTokenTransformer(MaskedGenerator):
  """Bidirectional class-conditional transformer over token ids (MaskGIT's generator).

  Attributes (the first three are `MaskedGenerator`'s):
    vocab_size: codebook size V; id V is the mask token.
    sequence_length: tokens per example L.
    num_classes: classes; label num_classes is the null class of classifier-free guidance.
    num_codebooks: C codebooks per position (1: tokens `[batch, L]`; inputs `[batch, L, C]` are accepted for any C).
    width, depth, num_heads, mlp_dim: transformer size.
    dropout_rate: dropout on the embeddings and inside the blocks when `train`.
    dtype: "float32" or "bfloat16" computation; parameters are float32, logits float32.
  """
  num_codebooks: int = 1
  width: int = 768
  depth: int = 24
  num_heads: int = 16
  mlp_dim: int = 3072
  dropout_rate: float = 0.1
  dtype: str = "float32"

  def _embed(self, tokens: jax.Array, class_labels: jax.Array, compute_dtype) -> jax.Array:
    """Summed codebook embeddings plus positions, after the class token: `[batch, 1 + L, width]` in compute_dtype."""
    per_codebook = tokens.reshape(*tokens.shape[:2], self.num_codebooks)
    table = jnn.embedding(self, "token_embedding", (self.num_codebooks, self.vocab_size + 1, self.width),
                          ("codebook", None, "embed"))
    flat_ids = per_codebook + jnp.arange(self.num_codebooks) * (self.vocab_size + 1)
    token_embeddings = jnp.sum(jnp.take(einops.rearrange(table, "c v d -> (c v) d"), flat_ids, axis=0), axis=2)
    class_table = jnn.embedding(self, "class_embedding", (self.num_classes + 1, self.width), (None, "embed"))
    class_embeddings = jnp.take(class_table, class_labels, axis=0)[:, None]
    positions = jnn.embedding(self, "position_embedding", (1 + self.sequence_length, self.width),
                              ("position", "embed"))
    x = jnp.concatenate([class_embeddings, token_embeddings], axis=1) + positions
    return x.astype(compute_dtype)

  @nn.compact
  def __call__(self, tokens: jax.Array, class_labels: jax.Array, *, train: bool = False) -> jax.Array:
    """Logits of every token unit.

    Args:
      tokens: `[batch, L]` or `[batch, L, C]` int32 in [0, vocab_size] (vocab_size = mask).
      class_labels: `[batch]` int32 in [0, num_classes] (num_classes = null class).
      train: dropout on (rng stream "dropout").

    Returns:
      float32 logits `[batch, L, vocab_size]` for `[batch, L]` tokens, `[batch, L, C, vocab_size]` for
      `[batch, L, C]` tokens (the mask id is never predicted).
    """
    check_generator_inputs(tokens, class_labels, self.sequence_length, self.num_codebooks)
    compute_dtype = jnn.compute_dtype(self.dtype)
    x = self._embed(tokens, class_labels, compute_dtype)
    x = jnn.layer_norm(compute_dtype, "embedding_norm")(x)
    x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
    for depth in range(self.depth):
      x = jnn.TransformerBlock(self.num_heads, self.mlp_dim, dropout_rate=self.dropout_rate, dtype=compute_dtype,
                               name=f"block{depth}")(x, deterministic=not train)
    x = jnn.layer_norm(compute_dtype, "final_norm")(x[:, 1:])
    kernel = self.param("head_kernel", partitioned.kernel(("embed", "codebook", "vocab")),
                        (self.width, self.num_codebooks, self.vocab_size), jnp.float32)
    bias = self.param("head_bias", partitioned.zeros(("codebook", "vocab")), (self.num_codebooks, self.vocab_size),
                      jnp.float32)
    logits = jnp.einsum("bld,dcv->blcv", x, kernel.astype(compute_dtype), preferred_element_type=jnp.float32)
    logits = logits + bias
    return logits if tokens.ndim == 3 else logits[:, :, 0]

  def loss(self, tokens: jax.Array, class_labels: jax.Array, *, train: bool = True, schedule: str = "cosine",
           label_smoothing: float = 0.1, class_dropout: float = 0.1) -> tuple[jax.Array, dict[str, jax.Array]]:
    """`masked_generator_loss` of this model (the runner's training loss)."""
    return masked_generator_loss(self, tokens, class_labels, train=train, schedule=schedule,
                                 label_smoothing=label_smoothing, class_dropout=class_dropout)


def check_generator_inputs(tokens: jax.Array, class_labels: jax.Array, sequence_length: int,
                           num_codebooks: int = 1) -> None:
  """ValueError unless tokens are int `[batch, L]` (or `[batch, L, C]`) and class_labels int `[batch]`."""
  _check_int("tokens", tokens)
  _check_int("class_labels", class_labels)
  expected = ((tokens.shape[0], sequence_length, num_codebooks),)
  if num_codebooks == 1:
    expected = ((tokens.shape[0], sequence_length),) + expected
  if tokens.shape not in expected:
    raise ValueError(f"tokens must have shape [batch, {sequence_length}"
                     f"{', ' + str(num_codebooks) if num_codebooks > 1 else ''}], got {tokens.shape}.")
  if class_labels.shape != tokens.shape[:1]:
    raise ValueError(f"class_labels must have shape [batch] = {tokens.shape[:1]}, got {class_labels.shape}.")


def masked_generator_loss(model: nn.Module, tokens: jax.Array, class_labels: jax.Array, *, train: bool,
                          schedule: str, label_smoothing: float,
                          class_dropout: float | jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Masked-token training loss of a bound masked generator (`sequence_length`, `num_codebooks`, `mask_id`,
  `null_class`, called as `model(tokens, class_labels, train=...)`) on clean `tokens` (ids in [0, vocab_size)) and
  `class_labels` `[batch]`.

  Uses rng stream "masking" (mask positions and class dropout) and, when `train`, "dropout". class_dropout may be
  traced. Returns `masked_token_loss`'s (loss, metrics).
  """
  if isinstance(class_dropout, (int, float)) and not 0.0 <= class_dropout <= 1.0:
    raise ValueError(f"class_dropout must lie in [0, 1], got {class_dropout}.")
  check_generator_inputs(tokens, class_labels, model.sequence_length, model.num_codebooks)
  mask_key, class_key = jax.random.split(model.make_rng("masking"))
  masked_tokens, is_masked = mask_tokens(mask_key, tokens, schedule, model.mask_id)
  drop_class = jax.random.bernoulli(class_key, class_dropout, class_labels.shape)
  class_labels = jnp.where(drop_class, jnp.asarray(model.null_class, class_labels.dtype), class_labels)
  logits = model(masked_tokens, class_labels, train=train)
  return masked_token_loss(logits, tokens, is_masked, label_smoothing)
