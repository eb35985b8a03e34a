"""Generators of token sequences: masked (MaskGIT, discrete diffusion) and autoregressive (with speculative decoding).

Submodules are imported by who needs them: `jaxtok.decoders.logit_filters` (temperature, top-k, top-p),
`schedules` (mask schedules), `maskgit` (MaskedTokenTransformer, masking, loss), `masked_sampling` (MaskGIT and
remasking samplers), ...
"""
