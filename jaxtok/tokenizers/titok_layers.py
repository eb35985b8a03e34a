"""TiTok's encoder and decoder, layer for layer as bytedance/1d-tokenizer `modeling/modules/blocks.py` and
`modeling/titok.py` (see `titok.py` for the model and its options).

Both are ViTs in open_clip's layout: `ln_pre`, pre-norm blocks (exact GELU, LayerNorm eps 1e-5, 4x MLP), `ln_post`.
- Encoder: `[class token; patch embeddings] + positions` (one learned table of 1 + N rows), then the K latent
  tokens plus their own position embeddings; the latent outputs go to `token_dim` channels. With
  `legacy_token_projection` (the official `is_legacy=True`, every released VQ checkpoint of TiTok-L-32/B-64/S-128)
  the latents `[K, width]` are reinterpreted in memory order as `[width, K]` before that 1x1 projection, which
  mixes tokens; otherwise each latent is projected alone.
- Decoder: `[class token; a mask token per patch] + positions`, then the quantized tokens embedded to the width plus
  latent position embeddings; the patch outputs feed a head: "proxy_codes" (official legacy head, 1x1 conv ->
  tanh -> 1x1 conv to the proxy codebook's logits), "proxy_codes_to_pixels" (those logits, softmax, times the
  MaskGIT-VQGAN codebook, through the MaskGIT-VQGAN decoder: the official `finetune_decoder=True` stage 2) or
  "pixels" (official non-legacy head: per-patch pixels then a 3x3 conv).
"""
import dataclasses
from typing import Any, Sequence

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxtok import nn as jnn
from jaxtok.nn import maskgit_vqgan_conv
from jaxtok.nn import partitioned
from jaxtok.nn import position
from jaxtok.tokenizers import flexible

LAYER_NORM_EPSILON = 1e-5  # torch.nn.LayerNorm's default, which the official ViTs use
ACTIVATION = "gelu_exact"  # torch.nn.GELU()
PATCH_POSITIONS = ("learned", "sincos")
DECODER_OUTPUTS = ("pixels", "proxy_codes", "proxy_codes_to_pixels")


@dataclasses.dataclass(frozen=True)
class ViTSize:
  width: int
  depth: int
  num_heads: int
  mlp_dim: int


VIT_SIZES = {
    "micro": ViTSize(width=32, depth=1, num_heads=2, mlp_dim=64),  # CPU sizes (jaxtok's; 2x MLP)
    "tiny": ViTSize(width=128, depth=2, num_heads=4, mlp_dim=256),
    "small": ViTSize(width=512, depth=8, num_heads=8, mlp_dim=2048),
    "base": ViTSize(width=768, depth=12, num_heads=12, mlp_dim=3072),
    "large": ViTSize(width=1024, depth=24, num_heads=16, mlp_dim=4096),
}


def vit_size(size: str | Sequence[int]) -> ViTSize:
  """A name of `VIT_SIZES`, or a custom `(width, depth, num_heads, mlp_dim)`."""
  if isinstance(size, str):
    if size not in VIT_SIZES:
      raise ValueError(f"ViT size must be one of {tuple(VIT_SIZES)} or (width, depth, num_heads, mlp_dim), got "
                       f"{size!r}.")
    return VIT_SIZES[size]
  if len(size) != 4 or min(size) < 1 or size[0] % size[2]:
    raise ValueError(f"A custom ViT size is (width, depth, num_heads, mlp_dim), positive, num_heads dividing width, "
                     f"got {tuple(size)}.")
  return ViTSize(*(int(value) for value in size))


def sequence_positions(module: nn.Module, kind: str, num_patches: int, width: int) -> jax.Array:
  """Positions of `[class token; patch grid]`, `[1 + num_patches, width]`: one learned table (official), or
  "sincos": a zero row for the class token (its embedding is learned anyway) above fixed 2D sine-cosine ones."""
  if kind == "sincos":
    grid = position.sincos_2d(int(round(num_patches**0.5)), width)
    return jnp.asarray(np.concatenate([np.zeros((1, width), np.float32), grid]))
  return jnn.embedding(module, "positions", (1 + num_patches, width), ("position", "embed"))


class ViT(nn.Module):
  """`ln_pre`, pre-norm blocks, `ln_post` (applied to every token; the official code normalises only the tokens it
  keeps, the same values). x: `[batch, tokens, width]` -> same."""

  size: str | Sequence[int]
  dtype: Any = jnp.float32
  attention_implementation: str = "dense"

  @nn.compact
  def __call__(self, x: jax.Array, mask=None) -> jax.Array:
    size = vit_size(self.size)
    x = jnn.layer_norm(self.dtype, "pre_norm", LAYER_NORM_EPSILON)(x)
    for depth in range(size.depth):
      x = jnn.TransformerBlock(size.num_heads, size.mlp_dim, implementation=self.attention_implementation,
                               layer_norm_epsilon=LAYER_NORM_EPSILON, activation=ACTIVATION, dtype=self.dtype,
                               name=f"block{depth}")(x, mask=mask)
    return jnn.layer_norm(self.dtype, "final_norm", LAYER_NORM_EPSILON)(x)


def _symmetric_uniform(limit: float):
  """Initialiser U(-limit, limit)."""
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -limit, limit)


def _broadcast(x: jax.Array, batch: int, dtype: Any) -> jax.Array:
  return jnp.broadcast_to(x.astype(dtype), (batch,) + x.shape)


class TiTokEncoder(nn.Module):
  """images `[batch, H, W, 3]` (in the weights' pixel range) -> latent tokens `[batch, K, token_dim]` float32."""

  patch_size: int
  num_latent_tokens: int
  token_dim: int
  size: str | Sequence[int]
  latent_attention: str = "full"
  legacy_token_projection: bool = True
  dtype: Any = jnp.float32
  attention_implementation: str = "dense"
  patch_position: str = "learned"
  input_embedding_scale: float = 1.0

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    width, batch = vit_size(self.size).width, images.shape[0]
    patches = einops.rearrange(images, "b (h p) (w q) c -> b (h w) (p q c)", p=self.patch_size, q=self.patch_size)
    num_patches = patches.shape[1]
    x = jnn.dense(width, ("patch", "embed"), self.dtype, "patch_embedding",
                  self.input_embedding_scale)(patches.astype(self.dtype))
    class_token = jnn.embedding(self, "class_embedding", (width,), ("embed",))
    x = jnp.concatenate([_broadcast(class_token[None], batch, self.dtype), x], axis=1)
    x = x + sequence_positions(self, self.patch_position, num_patches, width).astype(self.dtype)
    latents = (jnn.embedding(self, "latent_tokens", (self.num_latent_tokens, width), ("position", "embed"))
               + jnn.embedding(self, "latent_positions", (self.num_latent_tokens, width), ("position", "embed")))
    sequence = jnp.concatenate([x, _broadcast(latents, batch, self.dtype)], axis=1)
    mask = flexible.encoder_mask(1 + num_patches, self.num_latent_tokens, self.latent_attention)
    sequence = ViT(self.size, self.dtype, self.attention_implementation, name="vit")(sequence, mask=mask)
    latents = sequence[:, 1 + num_patches:]
    if self.legacy_token_projection:  # official `is_legacy`: `[K, width]` read in memory order as `[width, K]`
      latents = einops.rearrange(jnp.reshape(latents, (batch, width, self.num_latent_tokens)), "b c k -> b k c")
    tokens = jnn.dense(self.token_dim, ("embed", None), self.dtype, "to_tokens")(latents)
    return tokens.astype(jnp.float32)


class TiTokDecoder(nn.Module):
  """quantized tokens `[batch, k, token_dim]` (k <= K) -> pixels `[batch, H, W, 3]` (in the weights' pixel range)
  or proxy-code logits `[batch, H / patch, W / patch, proxy_codebook_size]`, float32."""

  grid_size: int
  patch_size: int
  num_latent_tokens: int
  size: str | Sequence[int]
  output: str = "proxy_codes_to_pixels"
  proxy_codebook_size: int = 1024
  pixel_code_dim: int = 256
  pixel_decoder_channels: int = 128
  pixel_decoder_multipliers: Sequence[int] = (1, 1, 2, 2, 4)
  pixel_decoder_res_blocks: int = 2
  pixel_decoder_norm_groups: int = maskgit_vqgan_conv.GROUPS
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
    class_token = jnn.embedding(self, "class_embedding", (width,), ("embed",))
    mask_token = jnn.embedding(self, "mask_token", (width,), ("embed",))
    queries = jnp.concatenate([class_token[None], jnp.broadcast_to(mask_token, (num_patches, width))], axis=0)
    queries = queries + sequence_positions(self, self.patch_position, num_patches, width)
    sequence = jnp.concatenate([_broadcast(queries, batch, self.dtype), latents], axis=1)
    mask = None if kept is None else flexible.decoder_mask(1 + num_patches, kept)
    sequence = ViT(self.size, self.dtype, self.attention_implementation, name="vit")(sequence, mask=mask)
    patches = einops.rearrange(sequence[:, 1:1 + num_patches], "b (h w) d -> b h w d", h=self.grid_size)
    if self.output == "pixels":
      return self._pixels(patches)
    logits = self._proxy_logits(patches)
    if self.output == "proxy_codes":
      return logits
    return self._pixels_from_proxy_logits(logits)

  def _pixels(self, patches: jax.Array) -> jax.Array:
    """patches `[b, h, w, width]` -> `[b, h * p, w * p, 3]`: per-patch pixels, then a 3x3 conv over the image."""
    pixels = jnn.dense(self.patch_size**2 * 3, ("embed", "patch"), self.dtype, "output")(patches)
    image = einops.rearrange(pixels, "b h w (p q c) -> b (h p) (w q) c", p=self.patch_size, q=self.patch_size)
    return maskgit_vqgan_conv.conv(3, 3, self.dtype, "conv_out")(image).astype(jnp.float32)

  def _proxy_logits(self, patches: jax.Array) -> jax.Array:
    """patches `[b, h, w, width]` -> logits `[b, h, w, proxy_codebook_size]` float32 (1x1 conv, tanh, 1x1 conv)."""
    width = patches.shape[-1]
    hidden = jnp.tanh(jnn.dense(2 * width, ("embed", "mlp"), self.dtype, "head_hidden")(patches))
    return jnn.dense(self.proxy_codebook_size, ("mlp", "vocab"), self.dtype, "head_output")(hidden).astype(
        jnp.float32)

  def _pixels_from_proxy_logits(self, logits: jax.Array) -> jax.Array:
    """Stage 2: softmax(logits) times the 2D tokenizer's codebook `[V, pixel_code_dim]`, then its decoder."""
    init = partitioned.kernel(("vocab", None), _symmetric_uniform(1.0 / self.proxy_codebook_size))  # as official
    codebook = self.param("pixel_codebook", init, (self.proxy_codebook_size, self.pixel_code_dim), jnp.float32)
    codes = jnp.einsum("bhwv,vd->bhwd", jax.nn.softmax(logits, axis=-1), codebook)
    return maskgit_vqgan_conv.Decoder(self.pixel_decoder_channels, tuple(self.pixel_decoder_multipliers),
                                      self.pixel_decoder_res_blocks, self.dtype, self.pixel_decoder_norm_groups,
                                      name="pixel_decoder")(codes)
