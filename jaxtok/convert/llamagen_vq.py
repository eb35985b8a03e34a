"""LlamaGen VQ tokenizer checkpoints (`vq_ds16_c2i.pt`, `vq_ds8_c2i.pt`, `vq_ds16_t2i.pt`, weights under "model") ->
`jaxtok.tokenizers.llamagen_vq.LlamaGenVQ` and its variables.

Every tensor of `tokenizer/tokenizer_image/vq_model.py`'s state dict is used once; `quantize.codebook_used` (a
training-time usage window, not a weight) is dropped. Convolutions become NHWC kernels; the attention blocks' 1x1
q / k / v / proj_out convolutions become the single-head projections of `jaxtok.nn.MultiHeadAttention`; the
decoder's `conv_blocks.{k}` (widest first) is jaxtok's level `len(multipliers) - 1 - k`.
"""
from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np

from jaxtok.convert import tensors
from jaxtok.tokenizers import llamagen_vq

DROPPED = ("quantize.codebook_used",)


def _conv(source: tensors.OfficialTensors, name: str) -> dict[str, np.ndarray]:
  return {"kernel": tensors.conv_kernel(source.take(f"{name}.weight")), "bias": source.take(f"{name}.bias")}


def _norm(source: tensors.OfficialTensors, name: str) -> dict[str, np.ndarray]:
  return {"scale": source.take(f"{name}.weight"), "bias": source.take(f"{name}.bias")}


def _resnet(source: tensors.OfficialTensors, name: str) -> dict[str, Any]:
  block = {part: _conv(source, f"{name}.{part}") for part in ("conv1", "conv2")}
  block.update({part: _norm(source, f"{name}.{part}") for part in ("norm1", "norm2")})
  if source.has(f"{name}.nin_shortcut.weight"):
    block["nin_shortcut"] = _conv(source, f"{name}.nin_shortcut")
  return block


def _attention(source: tensors.OfficialTensors, name: str) -> dict[str, Any]:
  """1x1 convs `[c, c, 1, 1]` -> HeadsProjection kernels `[c, 1, c]` (q, k, v) and `[1, c, c]` (proj_out)."""
  projections = {}
  for official, ours in (("q", "query"), ("k", "key"), ("v", "value")):
    weight = source.take(f"{name}.{official}.weight")[:, :, 0, 0]
    projections[ours] = {"kernel": weight.T[:, None, :], "bias": source.take(f"{name}.{official}.bias")[None]}
  weight = source.take(f"{name}.proj_out.weight")[:, :, 0, 0]
  projections["out"] = {"kernel": weight.T[None], "bias": source.take(f"{name}.proj_out.bias")}
  return {"norm": _norm(source, f"{name}.norm"), "attention": projections}


def _middle(source: tensors.OfficialTensors, prefix: str) -> dict[str, Any]:
  return {"mid_block0": _resnet(source, f"{prefix}.mid.0"), "mid_attention": _attention(source, f"{prefix}.mid.1"),
          "mid_block1": _resnet(source, f"{prefix}.mid.2")}


def _encoder(source: tensors.OfficialTensors, model: llamagen_vq.LlamaGenVQ) -> dict[str, Any]:
  levels = len(model.channel_multipliers)
  params = {"conv_in": _conv(source, "encoder.conv_in"), **_middle(source, "encoder"),
            "norm_out": _norm(source, "encoder.norm_out"), "conv_out": _conv(source, "encoder.conv_out")}
  for level in range(levels):
    official = f"encoder.conv_blocks.{level}"
    for block in range(model.num_res_blocks):
      params[f"level{level}_block{block}"] = _resnet(source, f"{official}.res.{block}")
      if level == levels - 1:
        params[f"level{level}_attention{block}"] = _attention(source, f"{official}.attn.{block}")
    if level != levels - 1:
      params[f"level{level}_downsample"] = _conv(source, f"{official}.downsample.conv")
  return params


def _decoder(source: tensors.OfficialTensors, model: llamagen_vq.LlamaGenVQ) -> dict[str, Any]:
  levels = len(model.channel_multipliers)
  params = {"conv_in": _conv(source, "decoder.conv_in"), **_middle(source, "decoder"),
            "norm_out": _norm(source, "decoder.norm_out"), "conv_out": _conv(source, "decoder.conv_out")}
  for index in range(levels):
    level, official = levels - 1 - index, f"decoder.conv_blocks.{index}"
    for block in range(model.num_res_blocks + 1):
      params[f"level{level}_block{block}"] = _resnet(source, f"{official}.res.{block}")
      if level == levels - 1:
        params[f"level{level}_attention{block}"] = _attention(source, f"{official}.attn.{block}")
    if level:
      params[f"level{level}_upsample"] = _conv(source, f"{official}.upsample.conv")
  return params


def llamagen_vq_from_official(state_dict: Mapping[str, np.ndarray], model_name: str = "VQ-16",
                              **fields) -> tuple[llamagen_vq.LlamaGenVQ, dict[str, Any]]:
  """The jaxtok model and variables of an official LlamaGen VQ state dict.

  Args:
    state_dict: `{name: array}` of `VQModel.state_dict()` (`load_state_dict(path)` unwraps the "model" entry).
    model_name: "VQ-16" or "VQ-8", as the official `VQ_models` keys.
    **fields: `LlamaGenVQ` fields that differ from the official model's (e.g. `dtype="bfloat16"`, or the sizes of a
      test model).

  Returns:
    `(LlamaGenVQ, variables)`; `model.apply(variables, images, method="encode")` gives the official indices.
  """
  if model_name not in llamagen_vq.LLAMAGEN_VQ_MODELS:
    raise ValueError(f"model_name must be one of {tuple(llamagen_vq.LLAMAGEN_VQ_MODELS)}, got {model_name!r}.")
  fields = {"channel_multipliers": llamagen_vq.LLAMAGEN_VQ_MODELS[model_name], **fields}
  model = llamagen_vq.LlamaGenVQ(**fields)
  source = tensors.OfficialTensors(state_dict, dropped=DROPPED, source=f"LlamaGen {model_name} state dict")
  params = {"encoder": _encoder(source, model), "decoder": _decoder(source, model),
            "quant_conv": _conv(source, "quant_conv"), "post_quant_conv": _conv(source, "post_quant_conv"),
            "quantizer": {"codebook": source.take("quantize.embedding.weight")}}
  source.finish()
  size = 2**(len(model.channel_multipliers) - 1)
  return model, tensors.variables_for(model, {"params": params}, jnp.zeros((1, size, size, 3), jnp.float32))
