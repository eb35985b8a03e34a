"""TiTok ("An Image is Worth 32 Tokens for Reconstruction and Generation", Yu et al. 2024), with flexible length.

Encoder: a ViT over the image's patches concatenated with K learnable latent tokens; the latent outputs, projected
to `token_dim`, go through any quantizer of `jaxtok.quantizers` and give a 1D sequence of K tokens. Decoder: a ViT
over a mask token at every patch position concatenated with the (projected) quantized tokens; the outputs at patch
positions predict the patch's pixels, or (`decoder_output="proxy_codes"`, TiTok's two-stage recipe) logits over a
frozen 2D tokenizer's codebook for that patch.

Flexible length (FlexTok nested dropout, One-D-Piece tail drop, see `flexible.py`): `latent_attention="causal"`
orders the tokens coarse to fine, and `token_dropout` trains the decoder on random prefixes, so `encode(images,
num_tokens=k)` and `decode_indices` of any prefix 1..K work at inference.

Sizes follow the ViT family (`VIT_SIZES`): TiTok-S/B/L are encoder and decoder "small"/"base"/"large"; "micro" and
"tiny" are CPU sizes. The patch grid is `image_size / patch_size` per side; the position embeddings are learned for
that grid, so one model serves one resolution.
"""
import dataclasses
from typing import Any, Mapping

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok import nn as jnn
from jaxtok import quantizers
from jaxtok.nn import position
from jaxtok.tokenizers import flexible


@dataclasses.dataclass(frozen=True)
class ViTSize:
  width: int
  depth: int
  num_heads: int
  mlp_dim: int


VIT_SIZES = {
    "micro": ViTSize(width=32, depth=1, num_heads=2, mlp_dim=64),
    "tiny": ViTSize(width=128, depth=2, num_heads=4, mlp_dim=256),
    "small": ViTSize(width=512, depth=8, num_heads=8, mlp_dim=2048),
    "base": ViTSize(width=768, depth=12, num_heads=12, mlp_dim=3072),
    "large": ViTSize(width=1024, depth=24, num_heads=16, mlp_dim=4096),
}
DECODER_OUTPUTS = ("pixels", "proxy_codes")
PATCH_POSITIONS = ("learned", "sincos")


def vit_size(name: str) -> ViTSize:
  if name not in VIT_SIZES:
    raise ValueError(f"ViT size must be one of {tuple(VIT_SIZES)}, got {name!r}.")
  return VIT_SIZES[name]


def patch_positions(module: nn.Module, kind: str, num_patches: int, width: int) -> jax.Array:
  """Position embeddings of the patch grid `[num_patches, width]`: "learned" (TiTok) or fixed 2D "sincos" (MAE)."""
  if kind == "sincos":
    return jnp.asarray(position.sincos_2d(int(round(num_patches**0.5)), width))
  return jnn.embedding(module, "patch_positions", (num_patches, width), ("position", "embed"))


class ViT(nn.Module):
  """Pre-norm transformer blocks of `jaxtok.nn` and a final LayerNorm. x: `[batch, tokens, width]` -> same."""

  size: str
  dtype: Any = jnp.float32
  attention_implementation: str = "dense"

  @nn.compact
  def __call__(self, x: jax.Array, mask=None) -> jax.Array:
    size = vit_size(self.size)
    for depth in range(size.depth):
      x = jnn.TransformerBlock(size.num_heads, size.mlp_dim, implementation=self.attention_implementation,
                               dtype=self.dtype, name=f"block{depth}")(x, mask=mask)
    return jnn.layer_norm(self.dtype, "final_norm")(x)


class TiTokEncoder(nn.Module):
  """images `[batch, H, W, 3]` -> latent tokens `[batch, K, token_dim]` float32."""

  patch_size: int
  num_latent_tokens: int
  token_dim: int
  size: str
  latent_attention: str = "full"
  dtype: Any = jnp.float32
  attention_implementation: str = "dense"
  patch_position: str = "learned"
  input_embedding_scale: float = 1.0

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    width = vit_size(self.size).width
    patches = einops.rearrange(images, "b (h p) (w q) c -> b (h w) (p q c)", p=self.patch_size, q=self.patch_size)
    num_patches = patches.shape[1]
    x = jnn.dense(width, ("patch", "embed"), self.dtype, "patch_embedding",
                  self.input_embedding_scale)(patches.astype(self.dtype))
    x = x + patch_positions(self, self.patch_position, num_patches, width).astype(self.dtype)
    latents = jnn.embedding(self, "latent_tokens", (self.num_latent_tokens, width), ("position", "embed"))
    latents = jnp.broadcast_to(latents.astype(self.dtype), (x.shape[0],) + latents.shape)
    sequence = jnp.concatenate([x, latents], axis=1)
    mask = flexible.encoder_mask(num_patches, self.num_latent_tokens, self.latent_attention)
    sequence = ViT(self.size, self.dtype, self.attention_implementation, name="vit")(sequence, mask=mask)
    tokens = jnn.dense(self.token_dim, ("embed", None), self.dtype, "to_tokens")(sequence[:, num_patches:])
    return tokens.astype(jnp.float32)


class TiTokDecoder(nn.Module):
  """quantized tokens `[batch, k, token_dim]` (k <= K) -> pixels `[batch, H, W, 3]` or proxy-code logits
  `[batch, H / patch, W / patch, proxy_codebook_size]`, float32."""

  grid_size: int
  patch_size: int
  num_latent_tokens: int
  size: str
  output: str = "pixels"
  proxy_codebook_size: int = 1024
  dtype: Any = jnp.float32
  attention_implementation: str = "dense"
  patch_position: str = "learned"
  input_embedding_scale: float = 1.0

  @nn.compact
  def __call__(self, tokens: jax.Array, kept: jax.Array | None = None) -> jax.Array:
    """`kept`: optional bool `[batch, k]`; latents marked False are hidden from every query (token dropout)."""
    width = vit_size(self.size).width
    batch, length = tokens.shape[:2]
    num_patches = self.grid_size**2
    latents = jnn.dense(width, (None, "embed"), self.dtype, "from_tokens",
                        self.input_embedding_scale)(tokens.astype(self.dtype))
    positions = jnn.embedding(self, "latent_positions", (self.num_latent_tokens, width), ("position", "embed"))
    latents = latents + positions[:length].astype(self.dtype)
    mask_token = jnn.embedding(self, "mask_token", (width,), ("embed",))
    positions_of_patches = patch_positions(self, self.patch_position, num_patches, width)
    queries = jnp.broadcast_to((mask_token + positions_of_patches).astype(self.dtype), (batch, num_patches, width))
    sequence = jnp.concatenate([queries, latents], axis=1)
    mask = None if kept is None else flexible.decoder_mask(num_patches, kept)
    sequence = ViT(self.size, self.dtype, self.attention_implementation, name="vit")(sequence, mask=mask)
    patches = sequence[:, :num_patches]
    if self.output == "proxy_codes":
      logits = jnn.dense(self.proxy_codebook_size, ("embed", "vocab"), self.dtype, "output")(patches)
      return einops.rearrange(logits, "b (h w) v -> b h w v", h=self.grid_size).astype(jnp.float32)
    pixels = jnn.dense(self.patch_size**2 * 3, ("embed", "patch"), self.dtype, "output")(patches)
    return einops.rearrange(pixels, "b (h w) (p q c) -> b (h p) (w q) c", h=self.grid_size, p=self.patch_size,
                            q=self.patch_size).astype(jnp.float32)


class TiTok(nn.Module):
  """1D tokenizer: K latent tokens per image, optionally flexible in length.

  Attributes:
    image_size: side of the square images; a multiple of patch_size.
    patch_size: side of the square patches.
    num_latent_tokens: K, tokens per image.
    token_dim: dimension of a latent token, the quantizer's input.
    encoder_size, decoder_size: keys of `VIT_SIZES`.
    quantizer: `{"name": <quantizer name>, **its fields}` (see `jaxtok.quantizers.make_quantizer`).
    decoder_output: "pixels", or "proxy_codes" (logits over a frozen 2D tokenizer's codes per patch, TiTok stage 1).
    proxy_codebook_size: size of that 2D codebook.
    latent_attention: "full" (TiTok) or "causal" among latent tokens in the encoder (FlexTok, coarse to fine).
    token_dropout: "none", "nested_dropout" or "tail_drop" (training only, see `flexible.py`).
    length_distribution: prefix lengths of nested dropout, "powers_of_two" or "uniform".
    tail_drop_probability: fraction of examples whose tail is dropped under "tail_drop".
    dtype: computation dtype, "float32" or "bfloat16" (parameters are always float32).
    attention_implementation: "dense" or "sparse" (`jaxtok.nn.attend`).
    patch_position: "learned" patch position embeddings (TiTok) or fixed 2D "sincos" ones (MAE; much faster to
      train at small budgets, see `jaxtok.nn.position`).
    input_embedding_scale: factor on the initial (Xavier) kernels of the encoder's patch embedding and the
      decoder's token embedding `from_tokens`. Every block starts with a LayerNorm, which is scale invariant: when
      the embedded content dwarfs the position embeddings (N(0, 1 / width)), the first normalisation throws away
      each patch's intensity and contrast (and each code's magnitude), and a small TiTok sits for hundreds of steps
      on a plateau where it outputs flat patches. 0.1 puts content below the positions, so the first LayerNorm is
      nearly linear in it (tiny, 32x32 photos, FSQ: 20.6 dB at 600 steps against 17.3 dB at 1.0).
  """

  image_size: int = 256
  patch_size: int = 16
  num_latent_tokens: int = 32
  token_dim: int = 12
  encoder_size: str = "base"
  decoder_size: str = "base"
  quantizer: Mapping[str, Any] | None = None
  decoder_output: str = "pixels"
  proxy_codebook_size: int = 1024
  latent_attention: str = "full"
  token_dropout: str = "none"
  length_distribution: str = "powers_of_two"
  tail_drop_probability: float = 0.5
  dtype: str = "float32"
  attention_implementation: str = "dense"
  patch_position: str = "learned"
  input_embedding_scale: float = 1.0

  def setup(self):
    self._check_fields()
    computation = jnn.compute_dtype(self.dtype)
    self.encoder = TiTokEncoder(self.patch_size, self.num_latent_tokens, self.token_dim, self.encoder_size,
                                self.latent_attention, computation, self.attention_implementation,
                                self.patch_position, self.input_embedding_scale)
    self.bottleneck = quantizers.make_quantizer(self.quantizer)
    self.decoder = TiTokDecoder(self.image_size // self.patch_size, self.patch_size, self.num_latent_tokens,
                                self.decoder_size, self.decoder_output, self.proxy_codebook_size, computation,
                                self.attention_implementation, self.patch_position, self.input_embedding_scale)

  def _check_fields(self) -> None:
    if not self.quantizer:
      raise ValueError("TiTok needs a `quantizer` config such as {'name': 'vq', 'codebook_size': 4096}.")
    if self.patch_size < 1 or self.image_size % self.patch_size:
      raise ValueError(f"image_size must be a multiple of patch_size, got image_size={self.image_size}, "
                       f"patch_size={self.patch_size}.")
    if self.num_latent_tokens < 1 or self.token_dim < 1:
      raise ValueError(f"num_latent_tokens and token_dim must be >= 1, got {self.num_latent_tokens}, "
                       f"{self.token_dim}.")
    if self.patch_position not in PATCH_POSITIONS:
      raise ValueError(f"patch_position must be one of {PATCH_POSITIONS}, got {self.patch_position!r}.")
    if self.patch_position == "sincos" and vit_size(self.encoder_size).width % 4 + vit_size(self.decoder_size).width % 4:
      raise ValueError("patch_position='sincos' needs ViT widths divisible by 4.")
    if self.input_embedding_scale <= 0:
      raise ValueError(f"input_embedding_scale must be > 0, got {self.input_embedding_scale}.")
    if self.decoder_output not in DECODER_OUTPUTS:
      raise ValueError(f"decoder_output must be one of {DECODER_OUTPUTS}, got {self.decoder_output!r}.")
    flexible.encoder_mask(1, 1, self.latent_attention)
    flexible.sample_keep_lengths(jax.random.PRNGKey(0), 1, self.num_latent_tokens, self.token_dropout,
                                 length_distribution=self.length_distribution)

  @property
  def codebook_size(self) -> int | None:
    return quantizers.make_quantizer(self.quantizer, parent=None).codebook_size

  def bits_per_image(self, image_size: int) -> float:
    """K times the quantizer's bits per token (for images of side `image_size`, which must be the model's)."""
    if image_size != self.image_size:
      raise ValueError(f"This TiTok encodes {self.image_size}x{self.image_size} images, got image_size={image_size}.")
    return self.num_latent_tokens * quantizers.make_quantizer(self.quantizer, parent=None).bits_per_token

  @property
  def last_layer_path(self) -> tuple[str, ...]:
    """Path in "params" of the decoder's output kernel (the adaptive GAN weight's reference layer)."""
    return ("decoder", "output", "kernel")

  def _check_images(self, images: jax.Array) -> None:
    expected = (self.image_size, self.image_size, 3)
    if images.ndim != 4 or images.shape[1:] != expected or not jnp.issubdtype(images.dtype, jnp.floating):
      raise ValueError(f"TiTok expects float images [batch, {self.image_size}, {self.image_size}, 3], got shape "
                       f"{images.shape} and dtype {images.dtype}.")

  def _check_num_tokens(self, num_tokens: int | None) -> int:
    if num_tokens is None:
      return self.num_latent_tokens
    if not 1 <= num_tokens <= self.num_latent_tokens:
      raise ValueError(f"num_tokens must lie in [1, {self.num_latent_tokens}], got {num_tokens}.")
    return num_tokens

  def encode(self, images: jax.Array, *, num_tokens: int | None = None,
             train: bool = False) -> tuple[jax.Array, quantizers.QuantizerOutput]:
    """images `[batch, H, W, 3]` -> (indices `[batch, k, ...]`, QuantizerOutput with quantized `[batch, k, dim]`).

    k = num_tokens (default K): the first k tokens; meaningful for k < K when the model was trained flexibly.
    """
    self._check_images(images)
    length = self._check_num_tokens(num_tokens)
    output = self.bottleneck(self.encoder(images), train=train)
    output = output.replace(quantized=output.quantized[:, :length], indices=output.indices[:, :length])
    return output.indices, output

  def decode_indices(self, indices: jax.Array) -> jax.Array:
    """Indices `[batch, k, ...]` of any prefix length 1 <= k <= K -> images `[batch, H, W, 3]` (or proxy logits)."""
    if indices.ndim < 2 or not 1 <= indices.shape[1] <= self.num_latent_tokens:
      raise ValueError(f"TiTok expects indices [batch, k, ...] with 1 <= k <= {self.num_latent_tokens}, got shape "
                       f"{indices.shape}.")
    return self.decoder(self.bottleneck.indices_to_codes(indices))

  def __call__(self, images: jax.Array, *, train: bool = False,
               num_tokens: int | None = None) -> tuple[jax.Array, quantizers.QuantizerOutput]:
    """images `[batch, H, W, 3]` in [-1, 1] -> (reconstruction from the first `num_tokens` tokens, QuantizerOutput).

    In training with token dropout, each example keeps a random prefix (rng stream "dropout").
    """
    _, output = self.encode(images, num_tokens=num_tokens, train=train)
    kept = None
    if train and self.token_dropout != "none" and num_tokens is None:
      lengths = flexible.sample_keep_lengths(
          self.make_rng("dropout"), images.shape[0], self.num_latent_tokens, self.token_dropout,
          length_distribution=self.length_distribution, tail_drop_probability=self.tail_drop_probability)
      kept = flexible.keep_mask(lengths, self.num_latent_tokens)
      output = output.replace(metrics={**output.metrics, "mean_kept_tokens": jnp.mean(lengths.astype(jnp.float32))})
    return self.decoder(output.quantized, kept), output


def flops_per_image(model: TiTok) -> float:
  """Matmul FLOPs of one forward pass per image (2 per multiply-add): the ViTs, embeddings and output head."""
  num_patches = (model.image_size // model.patch_size)**2
  tokens = num_patches + model.num_latent_tokens
  total = 0.0
  for size_name in (model.encoder_size, model.decoder_size):
    size = vit_size(size_name)
    per_block = tokens * (4 * size.width**2 + 2 * size.width * size.mlp_dim) + 2 * tokens**2 * size.width
    total += 2.0 * size.depth * per_block
  encoder_width, decoder_width = vit_size(model.encoder_size).width, vit_size(model.decoder_size).width
  outputs = model.proxy_codebook_size if model.decoder_output == "proxy_codes" else model.patch_size**2 * 3
  total += 2.0 * num_patches * model.patch_size**2 * 3 * encoder_width
  total += 2.0 * model.num_latent_tokens * model.token_dim * (encoder_width + decoder_width)
  total += 2.0 * num_patches * decoder_width * outputs
  return total
