"""Block-sparse flash attention: `sparse_attention(q, k, v, mask)` visits only the blocks `mask` allows."""
from jaxtok.kernels.sparse_attention.api import IMPLEMENTATIONS
from jaxtok.kernels.sparse_attention.api import sparse_attention
from jaxtok.kernels.sparse_attention.mask import BlockMask
from jaxtok.kernels.sparse_attention.mask import BooleanMask
from jaxtok.kernels.sparse_attention.mask import CausalMask
from jaxtok.kernels.sparse_attention.mask import PrefixLMMask
from jaxtok.kernels.sparse_attention.mask import SegmentMask
from jaxtok.kernels.sparse_attention.mask import SlidingWindowMask
from jaxtok.kernels.sparse_attention.mask import TreeMask
from jaxtok.kernels.sparse_attention.token_selection import TokenSelectionMask
from jaxtok.kernels.sparse_attention.token_selection import select_top_k
from jaxtok.kernels.sparse_attention.token_selection import token_selection_mask
