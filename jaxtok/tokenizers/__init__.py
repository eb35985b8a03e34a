"""Tokenizers: images (and audio) <-> discrete tokens."""
from jaxtok.tokenizers.conv_vq import ConvVQAutoencoder
