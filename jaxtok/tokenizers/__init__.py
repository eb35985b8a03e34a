"""Tokenizers: images (and audio) <-> discrete tokens."""
from jaxtok.tokenizers.conv_vq import ConvVQAutoencoder
from jaxtok.tokenizers.audio import AudioTokenizer
from jaxtok.tokenizers.llamagen_vq import LlamaGenVQ
from jaxtok.tokenizers.titok import TiTok
from jaxtok.tokenizers.maskgit_vqgan import MaskGitVQGAN
