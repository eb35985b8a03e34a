"""Generators of token sequences: masked (MaskGIT, discrete diffusion) and autoregressive (with speculative decoding).

Submodules are imported by who needs them:
- shared: `logit_filters` (temperature, top-k, top-p);
- masked: `schedules` (mask schedules and count rules), `maskgit` (MaskedTokenTransformer, masking, loss),
  `masked_sampling` (MaskGIT and remasking samplers), `guidance` (per-step classifier-free guidance weights);
- autoregressive: `autoregressive` (CausalTokenTransformer, over `jaxtok.nn.kv_cache`), `ar_sampling` (TokenModel, sample,
  classifier-free guidance), `speculative` (draft-and-verify, Speculative Jacobi, Grouped), `tree_speculative`
  (tree verification), `markov` (an analytic model for exactness tests).
"""
