"""Tokenizers: images (and audio) <-> discrete tokens, as flax linen modules with one API.

`model(x, train=False) -> (reconstruction, QuantizerOutput)`, `model.apply(variables, x, method="encode") ->
(indices, QuantizerOutput)`, `model.apply(variables, indices, method="decode_indices") -> x`, any quantizer of
`jaxtok.quantizers` in the bottleneck (`quantizer={"name": ..., **fields}`):
`TiTok` (1D, K latent tokens, bytedance/1d-tokenizer's layout; flexible length with `latent_attention="causal"` and
`token_dropout`), `MaskGitVQGAN` (the 2D baseline, MaskGIT's VQGAN), `LlamaGenVQ` (LlamaGen's VQ-16 / VQ-8),
`ConvVQAutoencoder` (a small 2D conv VQ), `AudioTokenizer` (strided 1D conv over waveforms).
"""
from jaxtok.tokenizers.audio import AudioTokenizer
from jaxtok.tokenizers.conv_vq import ConvVQAutoencoder
from jaxtok.tokenizers.llamagen_vq import LlamaGenVQ
from jaxtok.tokenizers.maskgit_vqgan import MaskGitVQGAN
from jaxtok.tokenizers.titok import TiTok

__all__ = ["AudioTokenizer", "ConvVQAutoencoder", "LlamaGenVQ", "MaskGitVQGAN", "TiTok"]
