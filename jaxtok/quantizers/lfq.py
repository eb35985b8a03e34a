"""Lookup-free quantization (Yu et al. 2023, MAGVIT-v2, "Language Model Beats Diffusion").

Each channel is quantized to its sign, {-1, +1}; the index reads the bits with the FIRST channel as the MOST
significant bit (channel > 0 -> 1). The loss is
`commitment_cost * |z - sg(q)|^2 + entropy_cost * (per_sample_entropy - diversity_gamma * codebook_entropy)`, the
entropies over softmax(-|z - c|^2 / entropy_temperature) across all 2^dim codes c, computed in float32 exactly for
dim <= entropy_group_bits and over bit groups above it (no `[N, 2^dim]` table; see `jaxtok.quantizers.entropy`).
Huge codebooks (UniWeTok's 2^128) need `packed_indices=True`: indices come as uint32 words `[..., ceil(dim / 32)]`.
"""
from jaxtok.quantizers import binary


class LFQ(binary.BinaryQuantizer):
  __doc__ = f"""Lookup-free quantizer (MAGVIT-v2), codes in {{-1, +1}}^dim.

{binary.CALL_DOC}
  Attributes:
{binary.FIELDS_DOC}  """

  on_sphere = False
