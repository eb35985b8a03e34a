"""Neural-network layers shared by the tokenizers and decoders."""
from jaxtok.nn.attention import attend
from jaxtok.nn.attention import MultiHeadAttention
from jaxtok.nn.transformer import Mlp
from jaxtok.nn.transformer import TransformerBlock
