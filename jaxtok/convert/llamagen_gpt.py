"""LlamaGen GPT checkpoints (`c2i_{B,L}_{256,384}.pt`, `c2i_XL_384.pt` under "model"; the FSDP `c2i_XXL_384.pt`,
`c2i_3B_384.pt` bare; `t2i_XL_stage1_256.pt`, `t2i_XL_stage2_512.pt`) -> `jaxtok.decoders.llamagen_gpt.LlamaGenGPT`
and its variables.

Every tensor of `autoregressive/models/gpt.py`'s state dict is used once; `freqs_cis` (the RoPE table, recomputed
from the config) and the `kv_cache` buffers of a state dict saved after `setup_caches` are dropped. `wqkv.weight` `[(q | k | v) x heads x head_dim, width]` becomes the kernel
`[width, 3, heads, head_dim]`, `wo.weight` the kernel `[heads, head_dim, width]`, Linear weights are transposed,
`cls_embedding.uncond_embedding` (a buffer) goes to the "constants" collection.
"""
from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np

from jaxtok.convert import tensors
from jaxtok.decoders import llamagen_gpt

DROPPED = ("freqs_cis",)
MODEL_TYPES = {"c2i": "class", "t2i": "caption"}


def _block(source: tensors.OfficialTensors, index: int, num_heads: int) -> dict[str, Any]:
  prefix = f"layers.{index}"
  wqkv = source.take(f"{prefix}.attention.wqkv.weight")  # [3 * width, width]
  width = wqkv.shape[1]
  head_dim = width // num_heads
  wo = source.take(f"{prefix}.attention.wo.weight")  # [width (out), heads * head_dim (in)]
  return {
      "attention_norm": {"scale": source.take(f"{prefix}.attention_norm.weight")},
      "wqkv": np.transpose(wqkv.reshape(3, num_heads, head_dim, width), (3, 0, 1, 2)),
      "wo": {"kernel": wo.T.reshape(num_heads, head_dim, width)},
      "ffn_norm": {"scale": source.take(f"{prefix}.ffn_norm.weight")},
      "feed_forward": {name: {"kernel": tensors.linear_kernel(source.take(f"{prefix}.feed_forward.{official}.weight"))}
                       for name, official in (("gate", "w1"), ("up", "w3"), ("down", "w2"))},
  }


def _inferred_fields(state_dict: Mapping[str, np.ndarray], model_name: str, model_type: str) -> dict[str, Any]:
  """Sizes from the official name, vocabulary / classes / caption width from the tensors' shapes."""
  depth, num_heads, width = llamagen_gpt.LLAMAGEN_GPT_MODELS[model_name]
  fields = dict(depth=depth, num_heads=num_heads, width=width, condition=MODEL_TYPES[model_type])
  if "tok_embeddings.weight" in state_dict:
    fields["vocab_size"] = int(np.shape(state_dict["tok_embeddings.weight"])[0])
  if model_type == "c2i" and "cls_embedding.embedding_table.weight" in state_dict:
    fields["num_classes"] = int(np.shape(state_dict["cls_embedding.embedding_table.weight"])[0]) - 1
  if model_type == "t2i" and "cls_embedding.uncond_embedding" in state_dict:
    fields["num_condition_tokens"], fields["caption_dim"] = map(int, np.shape(
        state_dict["cls_embedding.uncond_embedding"]))
  return fields


def llamagen_gpt_from_official(state_dict: Mapping[str, np.ndarray], model_name: str = "GPT-B", *,
                               model_type: str = "c2i", sequence_length: int = 256,
                               **fields) -> tuple[llamagen_gpt.LlamaGenGPT, dict[str, Any]]:
  """The jaxtok model and variables of an official LlamaGen GPT state dict.

  Args:
    state_dict: `{name: array}` of `Transformer.state_dict()` (`load_state_dict(path)` unwraps "model").
    model_name: an official `GPT_models` key ("GPT-B", "GPT-L", "GPT-XL", "GPT-XXL", "GPT-3B", ...).
    model_type: "c2i" (class labels) or "t2i" (captions), the official gpt_type.
    sequence_length: image tokens, (image_size / 16)^2 with VQ-16: 256 at 256 px, 576 at 384, 1024 at 512.
    **fields: `LlamaGenGPT` fields overriding those of the official model (e.g. `dtype="bfloat16"`, or the sizes of
      a test model); vocab_size, num_classes, num_condition_tokens and caption_dim are read from the tensors.

  Returns:
    `(LlamaGenGPT, variables)`.
  """
  if model_name not in llamagen_gpt.LLAMAGEN_GPT_MODELS or model_type not in MODEL_TYPES:
    raise ValueError(f"model_name must be one of {tuple(llamagen_gpt.LLAMAGEN_GPT_MODELS)} and model_type one of "
                     f"{tuple(MODEL_TYPES)}, got {model_name!r}, {model_type!r}.")
  fields = {**_inferred_fields(state_dict, model_name, model_type), "sequence_length": sequence_length, **fields}
  model = llamagen_gpt.LlamaGenGPT(**fields)
  dropped = DROPPED + tuple(name for name in state_dict if name.endswith((".kv_cache.k_cache", ".kv_cache.v_cache")))
  source = tensors.OfficialTensors(state_dict, dropped=dropped, source=f"LlamaGen {model_name} {model_type} state dict")
  params = {"token_embedding": source.take("tok_embeddings.weight"),
            **{f"block{index}": _block(source, index, model.num_heads) for index in range(model.depth)},
            "norm": {"scale": source.take("norm.weight")},
            "output": {"kernel": tensors.linear_kernel(source.take("output.weight"))}}
  converted: dict[str, Any] = {"params": params}
  if model_type == "c2i":
    params["class_embedding"] = source.take("cls_embedding.embedding_table.weight")
    condition = jnp.zeros((1,), jnp.int32)
  else:
    for ours, official in (("caption_fc1", "fc1"), ("caption_fc2", "fc2")):
      params[ours] = {"kernel": tensors.linear_kernel(source.take(f"cls_embedding.cap_proj.{official}.weight"))}
    converted["constants"] = {"uncond_embedding": source.take("cls_embedding.uncond_embedding")}
    condition = jnp.zeros((1, model.num_condition_tokens, model.caption_dim), jnp.float32)
  source.finish()
  tokens = jnp.zeros((1, model.sequence_length), jnp.int32)
  return model, tensors.variables_for(model, converted, tokens, condition)
