"""Tokenizers: images (and audio) <-> discrete tokens, as flax linen modules with one API.

`model(x, train=False) -> (reconstruction, QuantizerOutput)`, `model.apply(variables, x, method="encode") ->
(indices, QuantizerOutput)`, `model.apply(variables, indices, method="decode_indices") -> x`, any quantizer of
`jaxtok.quantizers` in the bottleneck (`quantizer={"name": ..., **fields}`):
`TiTok` (1D, K latent tokens; flexible length with `latent_attention="causal"` and `token_dropout`), `VQGAN` (the 2D
MaskGIT baseline), `ConvVQAutoencoder` (a small 2D conv VQ), `AudioTokenizer` (strided 1D conv over waveforms).
"""
from jaxtok.tokenizers.audio import AudioTokenizer
from jaxtok.tokenizers.conv_vq import ConvVQAutoencoder
from jaxtok.tokenizers.titok import TiTok
from jaxtok.tokenizers.vqgan import VQGAN

__all__ = ["AudioTokenizer", "ConvVQAutoencoder", "TiTok", "VQGAN"]
