"""Quantizers: pure functions holding the math, and thin linen modules owning parameters and state.

Every module is called as `quantizer(x, train=False)` on `x: [..., dim]` and returns `QuantizerOutput(quantized,
indices, loss, metrics)`, and has `indices_to_codes`, `codes_to_indices`, `codebook_size` and `bits_per_token`:
`VectorQuantizer` (VQ-VAE and its successors), `ResidualVQ`, `GroupedVQ`, `FSQ`, `LFQ`, `BSQ`.
`make_quantizer({"name": "fsq", "levels": (8, 5, 5, 5)})` builds one by name (`QUANTIZERS`). State that is not a
parameter (EMA codebooks, usage counters) lives in the "quantizer" collection, updated with `train=True` and
`mutable=["quantizer"]`.
"""
from jaxtok.quantizers.base import QuantizerOutput, code_histogram, usage_metrics
from jaxtok.quantizers.bsq import BSQ
from jaxtok.quantizers.fsq import FSQ
from jaxtok.quantizers.grouped import GroupedVQ
from jaxtok.quantizers.lfq import LFQ
from jaxtok.quantizers.registry import QUANTIZERS, make_quantizer
from jaxtok.quantizers.residual import ResidualVQ
from jaxtok.quantizers.vq import VectorQuantizer

__all__ = ["BSQ", "FSQ", "GroupedVQ", "LFQ", "QUANTIZERS", "QuantizerOutput", "ResidualVQ", "VectorQuantizer",
           "code_histogram", "make_quantizer", "usage_metrics"]
