"""Fused nearest-code lookup: `codebook_lookup(z, codebook)` -> int32 indices, never building `[N, K]` distances."""
from jaxtok.kernels.codebook_lookup.api import codebook_lookup
from jaxtok.kernels.codebook_lookup.api import IMPLEMENTATIONS
from jaxtok.kernels.codebook_lookup.sharded import sharded_codebook_lookup
