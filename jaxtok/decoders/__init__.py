"""Generators of token sequences: masked (MaskGIT, discrete diffusion) and autoregressive (with speculative decoding).

Models (flax linen), trained by `model.apply(variables, tokens, labels, method="loss", rngs=...) -> (loss, metrics)`:
- `MaskedTokenTransformer`: bidirectional, class-conditional with a null class (MaskGIT);
- `CausalTokenTransformer`: causal with a static KV cache (`jaxtok.nn.kv_cache`); `as_logits_fn(model, variables)`
  wraps it as a `TokenModel` for the autoregressive samplers;
- `ImageBert`, `UViTBert`: bytedance/1d-tokenizer's MaskGIT generators, layer for layer (`image_bert`);
- `LlamaGenGPT`: FoundationVision/LlamaGen's GPT (c2i, t2i) with its KV cache; `llamagen_gpt.as_token_model` wraps
  it for the autoregressive samplers.

Samplers (pure, jit-compiled, a `key` each; example i gets the same result in any batch):
- masked: `maskgit_sample(logits_fn, key, class_labels, sequence_length=, mask_id=, ...)` and
  `remasking_sample(...)` (discrete diffusion with remasking) -> `masked_sampling.SamplerOutput`;
- autoregressive, on a `TokenModel`: `sample`, `speculative_sample` (lossless draft and verify), `tree_sample`,
  `jacobi_sample`, `grouped_sample` (not exact) -> `ar_sampling.SamplerOutput`; `guided` adds classifier-free
  guidance, `llamagen_sampling` LlamaGen's (with its filters); `markov_model` is an analytic model for exactness
  tests.

Submodules: `schedules` (mask schedules and count rules), `guidance` (per-step guidance weights), `maskgit`,
`image_bert`, `masked_sampling`, `autoregressive`, `llamagen_gpt`, `ar_sampling`, `speculative`, `tree_speculative`,
`markov`, `logit_filters` (temperature, top-k, top-p).
"""
from jaxtok.decoders import ar_sampling
from jaxtok.decoders import autoregressive
from jaxtok.decoders import guidance
from jaxtok.decoders import image_bert
from jaxtok.decoders import llamagen_gpt
from jaxtok.decoders import logit_filters
from jaxtok.decoders import markov
from jaxtok.decoders import masked_sampling
from jaxtok.decoders import maskgit
from jaxtok.decoders import schedules
from jaxtok.decoders import speculative
from jaxtok.decoders import tree_speculative
from jaxtok.decoders.ar_sampling import TokenModel, guided, llamagen_sampling, sample
from jaxtok.decoders.autoregressive import CausalTokenTransformer, as_logits_fn
from jaxtok.decoders.image_bert import ImageBert, UViTBert
from jaxtok.decoders.llamagen_gpt import LlamaGenGPT
from jaxtok.decoders.logit_filters import filter_logits
from jaxtok.decoders.markov import markov_model
from jaxtok.decoders.masked_sampling import maskgit_sample, remasking_sample
from jaxtok.decoders.maskgit import MaskedTokenTransformer, mask_tokens, masked_token_loss
from jaxtok.decoders.speculative import EmbeddingGroup, NucleusGroup, grouped_sample, jacobi_sample, speculative_sample
from jaxtok.decoders.tree_speculative import tree_sample

__all__ = [
    "CausalTokenTransformer", "EmbeddingGroup", "ImageBert", "LlamaGenGPT", "MaskedTokenTransformer", "NucleusGroup",
    "TokenModel", "UViTBert", "as_logits_fn", "filter_logits", "grouped_sample", "guided", "jacobi_sample",
    "llamagen_sampling", "markov_model", "mask_tokens", "masked_token_loss", "maskgit_sample", "remasking_sample",
    "sample", "speculative_sample", "tree_sample",
    "ar_sampling", "autoregressive", "guidance", "image_bert", "llamagen_gpt", "logit_filters", "markov",
    "masked_sampling", "maskgit", "schedules", "speculative", "tree_speculative",
]
