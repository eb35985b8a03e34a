"""TiTok ("An Image is Worth 32 Tokens for Reconstruction and Generation", Yu et al. 2024), as bytedance/1d-tokenizer
computes it by default, with jaxtok's flexible length and any quantizer as options.

Encoder: a ViT over `[class token; patches; K latent tokens]`; the latent outputs, projected to `token_dim`
(through the official legacy reshape), go through any quantizer of `jaxtok.quantizers` and give a 1D sequence of K
tokens. Decoder: a ViT over `[class token; a mask token per patch; the embedded quantized tokens]`; the patch
outputs give logits over a 2D tokenizer's codebook per patch (`decoder_output="proxy_codes"`, TiTok's stage 1),
those logits decoded to pixels by the MaskGIT-VQGAN decoder (`"proxy_codes_to_pixels"`, the released models,
official `finetune_decoder=True`), or pixels directly (`"pixels"`, the official non-legacy head). Layers:
`titok_layers.py`. The official models are `experiments/titok_imagenet.py:S-128 | B-64 | L-32` (parameter counts
equal to the unit, tested) and the released weights load through `jaxtok.convert.titok_from_official`.

Flexible length (FlexTok nested dropout, One-D-Piece tail drop, see `flexible.py`), jaxtok's extension:
`latent_attention="causal"` orders the tokens coarse to fine, and `token_dropout` trains the decoder on random
prefixes, so `encode(images, num_tokens=k)` and `decode_indices` of any prefix 1..K work at inference.

Sizes follow the ViT family (`VIT_SIZES`): TiTok-S/B/L are encoder and decoder "small"/"base"/"large"; "micro" and
"tiny" are CPU sizes. The patch grid is `image_size / patch_size` per side; the position embeddings are learned for
that grid, so one model serves one resolution.

Training: jaxtok's runner trains any `decoder_output` end to end on pixel losses, and the paper's two stages:
stage 1 (`decoder_output="proxy_codes"`, `train.proxy_codes_from`: cross-entropy against a frozen MaskGIT-VQGAN's
codes, `jaxtok.train.proxy_codes`), stage 2 (`"proxy_codes_to_pixels"`, `train.params_from` the stage-1 run and
`train.pixel_decoder_from` the VQGAN, `jaxtok.train.warm_start`).

Departures from the official code, all optional or outside the forward pass: initialisation (jaxtok's Xavier
kernels and `input_embedding_scale`, official truncated normal 0.02), `patch_position="sincos"`, flexible length,
quantizers other than VQ, and stage 2 training everything (officially the encoder, latent tokens and quantizer are
frozen).
"""
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok import nn as jnn
from jaxtok import quantizers
from jaxtok.nn import maskgit_vqgan_conv
from jaxtok.nn import pixel_range as pixel_range_lib
from jaxtok.tokenizers import flexible
from jaxtok.tokenizers import titok_layers


class TiTok(nn.Module):
  """1D tokenizer: K latent tokens per image, optionally flexible in length.

  Attributes:
    image_size: side of the square images; a multiple of patch_size.
    patch_size: side of the square patches.
    num_latent_tokens: K, tokens per image.
    token_dim: dimension of a latent token, the quantizer's input (official `token_size`).
    encoder_size, decoder_size: keys of `titok_layers.VIT_SIZES`, or custom `(width, depth, num_heads, mlp_dim)`.
    quantizer: `{"name": <quantizer name>, **its fields}` (see `jaxtok.quantizers.make_quantizer`); official:
      `{"name": "vq", "codebook_size": 4096, "distance": "cosine", "commitment_cost": 0.25}`.
    decoder_output: "proxy_codes_to_pixels" (official default: the released models), "proxy_codes" (stage 1:
      logits over the 2D tokenizer's codes per patch) or "pixels" (official non-legacy pixel head).
    proxy_codebook_size: size of that 2D codebook (1024, MaskGIT-VQGAN's).
    pixel_code_dim, pixel_decoder_channels, pixel_decoder_multipliers, pixel_decoder_res_blocks,
      pixel_decoder_norm_groups: the 2D codebook's dimension and the MaskGIT-VQGAN decoder of
      "proxy_codes_to_pixels" (official: 256, 128, (1, 1, 2, 2, 4), 2, 32; its factor 2^(levels - 1) must equal
      patch_size; see `MaskGitVQGAN.norm_groups` for narrow decoders).
    legacy_token_projection: the official `is_legacy` reshape before the projection to `token_dim` (True in every
      released VQ TiTok); it mixes latent tokens, so causal latent attention needs False.
    pixel_range: the range the weights compute in, around jaxtok's [-1, 1] images (`jaxtok.nn.pixel_range`):
      (-1, 1) when trained in jaxtok, (0, 1) for official weights.
    latent_attention: "full" (TiTok) or "causal" among latent tokens in the encoder (FlexTok, coarse to fine).
    token_dropout: "none", "nested_dropout" or "tail_drop" (training only, see `flexible.py`).
    length_distribution: prefix lengths of nested dropout, "powers_of_two", "uniform" or "uniform_powers_of_two"
      (FlexTok's size sampling modes, see `flexible.py`).
    tail_drop_probability: fraction of examples whose tail is dropped under "tail_drop".
    dtype: computation dtype, "float32" or "bfloat16" (parameters are always float32).
    attention_implementation: "dense" or "sparse" (`jaxtok.nn.attend`).
    patch_position: "learned" patch position embeddings (TiTok) or fixed 2D "sincos" ones (MAE; much faster to
      train at small budgets, see `jaxtok.nn.position`; quickstart, 600 steps: 18.46 dB against 17.28 learned).
    input_embedding_scale: factor on the initial (Xavier) kernels of the encoder's patch embedding and the
      decoder's token embedding `from_tokens`. The first layer is a LayerNorm (`ln_pre`), which is scale invariant:
      when the embedded content dwarfs the position embeddings (N(0, 1 / width)), it throws away each patch's
      intensity and contrast (and each code's magnitude), and a small TiTok sits for hundreds of steps on a plateau
      where it outputs flat patches. 0.1 puts content below the positions, so that normalisation is nearly linear
      in it (tiny, 32x32 photos, FSQ, 600 steps: 20.6 dB against 17.3 dB at 1.0 before `ln_pre` existed; with
      `ln_pre`, patch 4, learned positions: 17.28 dB against 16.77 dB, `benchmarks/quality_cpu.py` probes).
  """

  image_size: int = 256
  patch_size: int = 16
  num_latent_tokens: int = 32
  token_dim: int = 12
  encoder_size: str | Sequence[int] = "base"
  decoder_size: str | Sequence[int] = "base"
  quantizer: Mapping[str, Any] | None = None
  decoder_output: str = "proxy_codes_to_pixels"
  proxy_codebook_size: int = 1024
  pixel_code_dim: int = 256
  pixel_decoder_channels: int = 128
  pixel_decoder_multipliers: Sequence[int] = (1, 1, 2, 2, 4)
  pixel_decoder_res_blocks: int = 2
  pixel_decoder_norm_groups: int = maskgit_vqgan_conv.GROUPS
  legacy_token_projection: bool = True
  pixel_range: tuple[float, float] = pixel_range_lib.JAXTOK_RANGE
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
    self.encoder = titok_layers.TiTokEncoder(
        self.patch_size, self.num_latent_tokens, self.token_dim, self.encoder_size, self.latent_attention,
        self.legacy_token_projection, computation, self.attention_implementation, self.patch_position,
        self.input_embedding_scale)
    self.bottleneck = quantizers.make_quantizer(self.quantizer)
    self.decoder = titok_layers.TiTokDecoder(
        self.image_size // self.patch_size, self.patch_size, self.num_latent_tokens, self.decoder_size,
        self.decoder_output, self.proxy_codebook_size, self.pixel_code_dim, self.pixel_decoder_channels,
        tuple(self.pixel_decoder_multipliers), self.pixel_decoder_res_blocks, self.pixel_decoder_norm_groups,
        computation, self.attention_implementation, self.patch_position, self.input_embedding_scale)

  def _check_fields(self) -> None:
    if not self.quantizer:
      raise ValueError("TiTok needs a `quantizer` config such as {'name': 'vq', 'codebook_size': 4096}.")
    if self.patch_size < 1 or self.image_size % self.patch_size:
      raise ValueError(f"image_size must be a multiple of patch_size, got image_size={self.image_size}, "
                       f"patch_size={self.patch_size}.")
    if self.num_latent_tokens < 1 or self.token_dim < 1:
      raise ValueError(f"num_latent_tokens and token_dim must be >= 1, got {self.num_latent_tokens}, "
                       f"{self.token_dim}.")
    widths = [titok_layers.vit_size(size).width for size in (self.encoder_size, self.decoder_size)]
    if self.patch_position not in titok_layers.PATCH_POSITIONS:
      raise ValueError(f"patch_position must be one of {titok_layers.PATCH_POSITIONS}, got {self.patch_position!r}.")
    if self.patch_position == "sincos" and any(width % 4 for width in widths):
      raise ValueError("patch_position='sincos' needs ViT widths divisible by 4.")
    if self.input_embedding_scale <= 0:
      raise ValueError(f"input_embedding_scale must be > 0, got {self.input_embedding_scale}.")
    if self.decoder_output not in titok_layers.DECODER_OUTPUTS:
      raise ValueError(f"decoder_output must be one of {titok_layers.DECODER_OUTPUTS}, got {self.decoder_output!r}.")
    if self.latent_attention == "causal" and self.legacy_token_projection:
      raise ValueError("latent_attention='causal' needs legacy_token_projection=False: the legacy reshape mixes "
                       "every latent into every token, so token i would see latents after i.")
    if self.decoder_output == "proxy_codes_to_pixels":
      self._check_pixel_decoder()
    pixel_range_lib.check_pixel_range(self.pixel_range)
    flexible.encoder_mask(1, 1, self.latent_attention)
    flexible.sample_keep_lengths(jax.random.PRNGKey(0), 1, self.num_latent_tokens, self.token_dropout,
                                 length_distribution=self.length_distribution)

  def _check_pixel_decoder(self) -> None:
    factor = 2**(len(self.pixel_decoder_multipliers) - 1)
    if factor != self.patch_size:
      raise ValueError(f"decoder_output='proxy_codes_to_pixels' decodes each patch's code with the MaskGIT-VQGAN "
                       f"decoder, whose factor 2^(len(pixel_decoder_multipliers) - 1) = {factor} must equal "
                       f"patch_size={self.patch_size}.")
    maskgit_vqgan_conv.check_channels(self.pixel_decoder_channels, self.pixel_decoder_multipliers,
                                      self.pixel_decoder_res_blocks, self.pixel_decoder_norm_groups)

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
    """Path in "params" of the decoder's last kernel (the adaptive GAN weight's reference layer)."""
    return {"pixels": ("decoder", "conv_out", "kernel"), "proxy_codes": ("decoder", "head_output", "kernel"),
            "proxy_codes_to_pixels": ("decoder", "pixel_decoder", "output", "kernel")}[self.decoder_output]

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
    """images `[batch, H, W, 3]` in [-1, 1] -> (indices `[batch, k, ...]`, QuantizerOutput with quantized
    `[batch, k, dim]`).

    k = num_tokens (default K): the first k tokens; meaningful for k < K when the model was trained flexibly.
    """
    self._check_images(images)
    length = self._check_num_tokens(num_tokens)
    output = self.bottleneck(self.encoder(pixel_range_lib.to_pixel_range(images, self.pixel_range)), train=train)
    output = output.replace(quantized=output.quantized[:, :length], indices=output.indices[:, :length])
    return output.indices, output

  def decode(self, quantized: jax.Array, kept: jax.Array | None = None) -> jax.Array:
    """Quantized tokens `[batch, k, token_dim]` -> images `[batch, H, W, 3]` in [-1, 1] (not clamped), or proxy-code
    logits `[batch, H / patch, W / patch, proxy_codebook_size]`; `kept` as in `TiTokDecoder`."""
    decoded = self.decoder(quantized, kept)
    if self.decoder_output == "proxy_codes":
      return decoded
    return pixel_range_lib.from_pixel_range(decoded, self.pixel_range)

  def decode_indices(self, indices: jax.Array) -> jax.Array:
    """Indices `[batch, k, ...]` of any prefix length 1 <= k <= K -> images `[batch, H, W, 3]` (or proxy logits)."""
    if indices.ndim < 2 or not 1 <= indices.shape[1] <= self.num_latent_tokens:
      raise ValueError(f"TiTok expects indices [batch, k, ...] with 1 <= k <= {self.num_latent_tokens}, got shape "
                       f"{indices.shape}.")
    return self.decode(self.bottleneck.indices_to_codes(indices))

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
    return self.decode(output.quantized, kept), output


def flops_per_image(model: TiTok) -> float:
  """Matmul FLOPs of one forward pass per image (2 per multiply-add): the ViTs, embeddings and the output head.

  Counted for decoder_output "pixels" and "proxy_codes" (the stage-1 model the speed benchmark times).
  """
  if model.decoder_output == "proxy_codes_to_pixels":
    raise ValueError("flops_per_image counts decoder_output 'pixels' or 'proxy_codes' (the MaskGIT-VQGAN pixel "
                     "decoder's convolutions are not counted).")
  num_patches = (model.image_size // model.patch_size)**2
  tokens = 1 + num_patches + model.num_latent_tokens
  total = 0.0
  for size_name in (model.encoder_size, model.decoder_size):
    size = titok_layers.vit_size(size_name)
    per_block = tokens * (4 * size.width**2 + 2 * size.width * size.mlp_dim) + 2 * tokens**2 * size.width
    total += 2.0 * size.depth * per_block
  encoder_width = titok_layers.vit_size(model.encoder_size).width
  decoder_width = titok_layers.vit_size(model.decoder_size).width
  total += 2.0 * num_patches * model.patch_size**2 * 3 * encoder_width
  total += 2.0 * model.num_latent_tokens * model.token_dim * (encoder_width + decoder_width)
  if model.decoder_output == "proxy_codes":
    total += 2.0 * num_patches * 2 * decoder_width * (decoder_width + model.proxy_codebook_size)
  else:
    total += 2.0 * num_patches * decoder_width * model.patch_size**2 * 3 + 2.0 * model.image_size**2 * 9 * 3 * 3
  return total
