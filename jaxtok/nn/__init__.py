"""Layers shared by the tokenizers and decoders; models import their layers from here, never from each other.

Files: `dtypes` (computation dtype by name), `dense`, `embedding`, `normalization` (LayerNorm, l2-normalisation),
`rms_norm` (RMSNorm), `attention` (dense / block-sparse multi-head attention), `kv_cache` (static-shape cache for
decoding), `transformer` (MLP and the transformer block), `swiglu` (Llama's feed-forward), `position` (sine-cosine
embeddings), `rope_2d` (LlamaGen's 2D rotary embedding), `partitioned` (initialisers with logical axis names),
`maskgit_vqgan_conv` (MaskGIT-VQGAN's conv encoder / decoder, shared by the 2D tokenizer and TiTok's pixel decoder),
`pixel_range` (the [-1, 1] <-> weights' pixel range maps).
"""
from jaxtok.nn.attention import attend
from jaxtok.nn.attention import MultiHeadAttention
from jaxtok.nn.dense import dense
from jaxtok.nn.dtypes import compute_dtype
from jaxtok.nn.embedding import embedding
from jaxtok.nn.normalization import l2_normalize
from jaxtok.nn.normalization import layer_norm
from jaxtok.nn.rms_norm import RMSNorm
from jaxtok.nn.swiglu import SwiGLU
from jaxtok.nn.transformer import Mlp
from jaxtok.nn.transformer import TransformerBlock

__all__ = ["Mlp", "MultiHeadAttention", "TransformerBlock", "attend", "compute_dtype", "dense", "embedding",
           "l2_normalize", "layer_norm"]
