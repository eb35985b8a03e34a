"""Quantizers: pure functions holding the math, and thin linen modules owning parameters and state."""
from jaxtok.quantizers.base import QuantizerOutput, code_histogram, usage_metrics
from jaxtok.quantizers.bsq import BSQ
from jaxtok.quantizers.fsq import FSQ
from jaxtok.quantizers.grouped import GroupedVQ
from jaxtok.quantizers.lfq import LFQ
from jaxtok.quantizers.registry import QUANTIZERS, make_quantizer
from jaxtok.quantizers.residual import ResidualVQ
from jaxtok.quantizers.vq import VectorQuantizer
