"""1d-tokenizer's MaskGIT generators (Yu et al. 2024, "An Image is Worth 32 Tokens for Reconstruction and
Generation", `modeling/maskgit.py`): `ImageBert` (TiTok-L-32, TiTok-B-64) and `UViTBert` (TiTok-S-128).

Both read one shared id table of `vocab_size + num_classes + 2` rows, as the official models do: ids [0, V) are
image tokens, V the mask, V + 1 + c class c, V + 1 + num_classes the dropped (null) class. The class id is prepended
to the tokens and its output dropped; the head predicts the V image tokens. The interface is jaxtok's masked
generator's (`MaskedTokenTransformer`): `model(tokens [b, L], class_labels [b])` with class `num_classes` the null
class, `mask_id = vocab_size`, `model.loss(...)` for the runner, `masked_sampling.maskgit_sample` to sample.

- `ImageBert`: HuggingFace `BertModel` with `add_pooling_layer=False` plus a Linear head: embeddings word + token
  type + position, LayerNorm (eps 1e-12), dropout; post-LN BERT layers (q/k/v with biases, exact erf GELU, LayerNorm
  eps 1e-12 after each residual); no final LayerNorm. Token-type ids are always 0, so row 0 of the 2-row token-type
  table is added to every position (row 1 is a parameter neither model ever reads; it is kept so that the parameter
  count and the checkpoints are the official ones). Initialisation as BERT's: N(0, 0.02) weights and tables.
- `UViTBert`: U-ViT (Bao et al. 2023, "All are Worth Words: A ViT Backbone for Diffusion Models"): depth // 2 input
  blocks whose outputs are kept, a middle block, depth // 2 output blocks each fed Dense(concat(x, skip)) with the
  skips popped in reverse; pre-LN blocks without q/k/v biases, exact GELU, PyTorch's LayerNorm eps 1e-5; a final
  LayerNorm. The official blocks have no dropout (its config's `dropout` / `attn_drop` are not passed to them), so
  neither has this one.

Departures, all training-only: the official BERT drops out attention probabilities (`attn_drop`), which
`jaxtok.nn.MultiHeadAttention` (fused attention) does not, and jaxtok's MLP applies its dropout also after the
activation; the shared blocks' own initialisers are used inside the blocks.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok import nn as jnn
from jaxtok.decoders import maskgit

BERT_LAYER_NORM_EPSILON = 1e-12
TORCH_LAYER_NORM_EPSILON = 1e-5
INIT_STDDEV = 0.02


class _SharedIdGenerator(maskgit.MaskedGenerator):
  """The fields and the input handling both official generators share (see the module docstring)."""
  num_classes: int = 1000  # ImageNet's (a default the other masked generators do not have)
  width: int = 768
  depth: int = 24
  num_heads: int = 16
  mlp_dim: int = 3072
  dtype: str = "float32"

  @property
  def num_codebooks(self) -> int:
    return 1

  def input_ids(self, tokens: jax.Array, class_labels: jax.Array) -> jax.Array:
    """`[batch, 1 + L]` ids of the shared table: the shifted class id, then the tokens (validated)."""
    maskgit.check_generator_inputs(tokens, class_labels, self.sequence_length)
    return jnp.concatenate([(class_labels + self.vocab_size + 1)[:, None], tokens], axis=1).astype(jnp.int32)

  def id_table(self, name: str) -> jax.Array:
    return jnn.embedding(self, name, (self.vocab_size + self.num_classes + 2, self.width), ("vocab", "embed"),
                         stddev=INIT_STDDEV)

  def head(self, x: jax.Array) -> jax.Array:
    """Logits `[batch, L, vocab_size]` float32 of the token outputs (the class output dropped)."""
    dense = nn.Dense(self.vocab_size, dtype=x.dtype, name="head",
                     kernel_init=nn.with_logical_partitioning(nn.initializers.normal(INIT_STDDEV), ("embed", "vocab")),
                     bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("vocab",)))
    return dense(x[:, 1:]).astype(jnp.float32)

  def loss(self, tokens: jax.Array, class_labels: jax.Array, *, train: bool = True, schedule: str = "arccos",
           label_smoothing: float = 0.1, class_dropout: float = 0.1) -> tuple[jax.Array, dict[str, jax.Array]]:
    """`maskgit.masked_generator_loss` of this model (the runner's training loss)."""
    return maskgit.masked_generator_loss(self, tokens, class_labels, train=train, schedule=schedule,
                                         label_smoothing=label_smoothing, class_dropout=class_dropout)


class ImageBert(_SharedIdGenerator):
  """1d-tokenizer's `ImageBert`: a post-LN BERT over [class, tokens] (see the module docstring).

  Attributes:
    vocab_size: codebook size V (id V is the mask). sequence_length: tokens L.
    num_classes: classes; label num_classes is the null class.
    width, depth, num_heads, mlp_dim: `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
      `intermediate_size` of the official config.
    dropout_rate: `hidden_dropout_prob` (the official config's `dropout`), after the embeddings and each residual
      branch, when `train`.
    dtype: "float32" or "bfloat16" computation; parameters float32, logits float32.
  """
  dropout_rate: float = 0.1

  @nn.compact
  def __call__(self, tokens: jax.Array, class_labels: jax.Array, *, train: bool = False) -> jax.Array:
    """tokens `[batch, L]` int in [0, V] (V = mask), class_labels `[batch]` in [0, num_classes] -> logits
    `[batch, L, V]` float32."""
    compute_dtype = jnn.compute_dtype(self.dtype)
    ids = self.input_ids(tokens, class_labels)
    token_type = jnn.embedding(self, "token_type_embedding", (2, self.width), (None, "embed"), stddev=INIT_STDDEV)
    positions = jnn.embedding(self, "position_embedding", (1 + self.sequence_length, self.width),
                              ("position", "embed"), stddev=INIT_STDDEV)
    x = jnp.take(self.id_table("word_embedding"), ids, axis=0) + token_type[0] + positions
    x = jnn.layer_norm(compute_dtype, "embedding_norm", epsilon=BERT_LAYER_NORM_EPSILON)(x.astype(compute_dtype))
    x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
    for depth in range(self.depth):
      x = jnn.TransformerBlock(self.num_heads, self.mlp_dim, dropout_rate=self.dropout_rate, norm_position="post",
                               layer_norm_epsilon=BERT_LAYER_NORM_EPSILON, activation="gelu_exact",
                               dtype=compute_dtype, name=f"block{depth}")(x, deterministic=not train)
    return self.head(x)


class UViTBert(_SharedIdGenerator):
  """1d-tokenizer's `UViTBert`: U-ViT blocks with long skips over [class, tokens] (see the module docstring).

  Attributes:
    vocab_size: codebook size V (id V is the mask). sequence_length: tokens L.
    num_classes: classes; label num_classes is the null class.
    width, num_heads, mlp_dim: `hidden_size`, `num_attention_heads`, `intermediate_size` of the official config.
    depth: `num_hidden_layers`, even: depth // 2 blocks on each side of the middle one.
    dtype: "float32" or "bfloat16" computation; parameters float32, logits float32.
  No dropout (the official U-ViT blocks have none).
  """
  depth: int = 20
  width: int = 1024
  mlp_dim: int = 4096

  def _block(self, compute_dtype, name: str) -> jnn.TransformerBlock:
    return jnn.TransformerBlock(self.num_heads, self.mlp_dim, layer_norm_epsilon=TORCH_LAYER_NORM_EPSILON,
                                activation="gelu_exact", qkv_bias=False, dtype=compute_dtype, name=name)

  @nn.compact
  def __call__(self, tokens: jax.Array, class_labels: jax.Array, *, train: bool = False) -> jax.Array:
    """As `ImageBert.__call__` (train changes nothing: no dropout)."""
    del train
    compute_dtype = jnn.compute_dtype(self.dtype)
    ids = self.input_ids(tokens, class_labels)
    positions = jnn.embedding(self, "position_embedding", (1 + self.sequence_length, self.width),
                              ("position", "embed"), stddev=INIT_STDDEV)
    x = (jnp.take(self.id_table("embedding"), ids, axis=0) + positions).astype(compute_dtype)
    skips = []
    for index in range(self.depth // 2):
      x = self._block(compute_dtype, f"in_block{index}")(x)
      skips.append(x)
    x = self._block(compute_dtype, "mid_block")(x)
    for index in range(self.depth // 2):
      skip_dense = nn.Dense(self.width, dtype=compute_dtype, name=f"skip{index}",
                            kernel_init=nn.with_logical_partitioning(nn.initializers.normal(INIT_STDDEV),
                                                                     (None, "embed")),
                            bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("embed",)))
      x = skip_dense(jnp.concatenate([x, skips.pop()], axis=-1))
      x = self._block(compute_dtype, f"out_block{index}")(x)
    x = jnn.layer_norm(compute_dtype, "final_norm", epsilon=TORCH_LAYER_NORM_EPSILON)(x)
    return self.head(x)
