"""Binary spherical quantization (Zhao et al. 2024, "Image and Video Tokenization with Binary Spherical
Quantization").

The input (optionally projected to `dim` channels) is l2-normalised onto the unit sphere, u = z / |z|, and each
channel binarised to +-1/sqrt(dim), so every code is itself a unit vector; the index reads the bits with the FIRST
channel as the MOST significant bit. Loss: `commitment_cost * |u - sg(q)|^2 + entropy_cost * (per_sample_entropy -
diversity_gamma * codebook_entropy)` over softmax(-|u - c|^2 / entropy_temperature), whose bit logits are
`4 u / (sqrt(dim) * entropy_temperature)`; the codebook entropy is exact up to `entropy_group_bits` bits and
factorised over bit groups above (the paper's factorised approximation is groups of one bit).
"""
from jaxtok.quantizers import binary


class BSQ(binary.BinaryQuantizer):
  __doc__ = f"""Binary spherical quantizer, codes in {{-1/sqrt(dim), +1/sqrt(dim)}}^dim (unit vectors).

{binary.CALL_DOC}
  Attributes:
{binary.FIELDS_DOC}  """

  on_sphere = True
