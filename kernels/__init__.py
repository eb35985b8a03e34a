"""Pallas kernels beside their XLA references, installed as `jaxtok.kernels`.

  from jaxtok.kernels import codebook_lookup, sparse_attention, CausalMask

`codebook_lookup`, `sharded_codebook_lookup` and `sparse_attention` are the functions, and the masks and token
selection helpers sit beside them. Each kernel's subpackage holds its `reference.py` (XLA, also the CPU path), one
file per backend and an `api.py`, all built on the one kernel-op pattern of `op.py`; reach them with
`from jaxtok.kernels.sparse_attention import mask, triton` (note that `import jaxtok.kernels.codebook_lookup as m`
binds the function, which shadows its subpackage's name here). This folder ships inside the jaxtok namespace (see
setup.py): import it as `jaxtok.kernels`, never as `kernels`.
"""
from jaxtok.kernels.codebook_lookup.api import codebook_lookup
from jaxtok.kernels.codebook_lookup.sharded import sharded_codebook_lookup
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

__all__ = ["codebook_lookup", "sharded_codebook_lookup", "sparse_attention", "BlockMask", "BooleanMask", "CausalMask",
           "PrefixLMMask", "SegmentMask", "SlidingWindowMask", "TreeMask", "TokenSelectionMask", "select_top_k",
           "token_selection_mask"]
