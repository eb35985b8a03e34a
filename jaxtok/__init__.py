"""jaxtok: discrete tokenizers and the decoders that generate their tokens, in JAX/Flax.

Importing `jaxtok` is cheap and pulls in neither grain, ml_collections nor tensorboard: the subpackages
(`jaxtok.quantizers`, `jaxtok.kernels`, `jaxtok.data`, ...) are imported explicitly by who needs them.
"""

__version__ = "0.1.0"
