"""1d-tokenizer's MaskGIT generators -> jaxtok: `ImageBert` / `UViTBert` checkpoints (`generator_titok_*.bin`) and
their `generate` sampler.

`maskgit_from_official(state_dict, config)` takes the official state dict (`load_state_dict(path)`) and the YAML's
`model.generator` section as a plain dict (`OmegaConf.to_container(cfg.model.generator, resolve=True)`; the whole
`model` section also works, its `vq_model.codebook_size` and `num_latent_tokens` are then read from it). The codebook
size comes from the head when the section does not give it; an unresolved `image_seq_len` interpolation is read from
the position table. Every tensor is consumed exactly once; a missing, unexpected or mis-shaped one raises
`ConversionError` naming it.

`generate_like_official` is the official `ImageBert.generate` (same arguments, same defaults) through
`masked_sampling.maskgit_sample`: with `randomize_temperature=0` it returns the official tokens exactly (up to float
ties); otherwise it draws from the same distribution with JAX's random numbers.
"""
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxtok.convert import tensors as tensors_lib
from jaxtok.convert import torch_layouts as layouts
from jaxtok.decoders import image_bert
from jaxtok.decoders import masked_sampling

MODEL_TYPES = {"ViT": image_bert.ImageBert, "UViT": image_bert.UViTBert}
HEAD_NAMES = {"ViT": "model.lm_head", "UViT": "lm_head"}
# Buffers of older transformers releases' BertEmbeddings: no parameters (checked, then dropped).
BERT_BUFFERS = ("model.embeddings.position_ids", "model.embeddings.token_type_ids")


def _generator_section(config: Mapping[str, Any]) -> dict[str, Any]:
  """The `generator` section, with `codebook_size` / `image_seq_len` from `vq_model` when given the `model` one."""
  if "generator" not in config:
    return dict(config)
  section = dict(config["generator"])
  vq_model = config.get("vq_model", {})
  section.setdefault("codebook_size", vq_model.get("codebook_size"))
  if not isinstance(section.get("image_seq_len"), int) and "num_latent_tokens" in vq_model:
    section["image_seq_len"] = vq_model["num_latent_tokens"]
  return section


def generator_from_config(config: Mapping[str, Any], codebook_size: int | None = None,
                          sequence_length: int | None = None):
  """The jaxtok module of an official `generator` section (sizes as there; `codebook_size` and `sequence_length`
  fill what the section lacks)."""
  section = _generator_section(config)
  model_type = section.get("model_type")
  if model_type not in MODEL_TYPES:
    raise ValueError(f"generator model_type must be one of {tuple(MODEL_TYPES)}, got {model_type!r}.")
  codebook_size = section.get("codebook_size") or codebook_size
  length = section.get("image_seq_len")
  length = length if isinstance(length, int) else sequence_length
  if codebook_size is None or length is None:
    raise ValueError(f"the generator config needs codebook_size and an integer image_seq_len, got {codebook_size!r} "
                     f"and {section.get('image_seq_len')!r} (resolve it: OmegaConf.to_container(..., resolve=True)).")
  fields = dict(vocab_size=int(codebook_size), sequence_length=int(length),
                num_classes=int(section["condition_num_classes"]), width=int(section["hidden_size"]),
                depth=int(section["num_hidden_layers"]), num_heads=int(section["num_attention_heads"]),
                mlp_dim=int(section["intermediate_size"]))
  if model_type == "ViT":
    fields["dropout_rate"] = float(section.get("dropout", 0.1))
  return MODEL_TYPES[model_type](**fields)


def _bert_layer(tensors: tensors_lib.OfficialTensors, prefix: str, width: int, mlp_dim: int,
                num_heads: int) -> dict:
  """HuggingFace `BertLayer` -> a post-norm `jaxtok.nn.TransformerBlock`."""
  take = lambda name, shape: tensors.take(f"{prefix}.{name}", shape)
  projections = [take(f"attention.self.{name}.weight", (width, width)) for name in ("query", "key", "value")]
  biases = [take(f"attention.self.{name}.bias", (width,)) for name in ("query", "key", "value")]
  return {"attention": layouts.heads_projections(np.concatenate(projections), np.concatenate(biases),
                                                 take("attention.output.dense.weight", (width, width)),
                                                 take("attention.output.dense.bias", (width,)), num_heads),
          "attention_norm": layouts.norm(tensors, f"{prefix}.attention.output.LayerNorm", width),
          "mlp": {"hidden": layouts.linear(tensors, f"{prefix}.intermediate.dense", width, mlp_dim),
                  "out": layouts.linear(tensors, f"{prefix}.output.dense", mlp_dim, width)},
          "mlp_norm": layouts.norm(tensors, f"{prefix}.output.LayerNorm", width)}


def _uvit_block(tensors: tensors_lib.OfficialTensors, prefix: str, width: int, mlp_dim: int, num_heads: int) -> dict:
  """1d-tokenizer's `UViTBlock` (norm1, attn.qkv without bias, attn.proj, norm2, mlp.fc1 / fc2) -> a pre-norm
  `jaxtok.nn.TransformerBlock` without q/k/v biases."""
  return {"attention_norm": layouts.norm(tensors, f"{prefix}.norm1", width),
          "attention": layouts.heads_projections(tensors.take(f"{prefix}.attn.qkv.weight", (3 * width, width)), None,
                                                 tensors.take(f"{prefix}.attn.proj.weight", (width, width)),
                                                 tensors.take(f"{prefix}.attn.proj.bias", (width,)), num_heads),
          "mlp_norm": layouts.norm(tensors, f"{prefix}.norm2", width),
          "mlp": {"hidden": layouts.linear(tensors, f"{prefix}.mlp.fc1", width, mlp_dim),
                  "out": layouts.linear(tensors, f"{prefix}.mlp.fc2", mlp_dim, width)}}


def _image_bert_params(tensors, model: image_bert.ImageBert) -> dict:
  rows, width = model.vocab_size + model.num_classes + 2, model.width
  take = lambda name, shape: tensors.take(f"model.embeddings.{name}", shape)
  params = {"word_embedding": take("word_embeddings.weight", (rows, width)),
            "position_embedding": take("position_embeddings.weight", (model.sequence_length + 1, width)),
            "token_type_embedding": take("token_type_embeddings.weight", (2, width)),
            "embedding_norm": layouts.norm(tensors, "model.embeddings.LayerNorm", width)}
  for depth in range(model.depth):
    params[f"block{depth}"] = _bert_layer(tensors, f"model.encoder.layer.{depth}", width, model.mlp_dim,
                                          model.num_heads)
  return params


def _uvit_bert_params(tensors, model: image_bert.UViTBert) -> dict:
  rows, width = model.vocab_size + model.num_classes + 2, model.width
  block = lambda prefix: _uvit_block(tensors, prefix, width, model.mlp_dim, model.num_heads)
  params = {"embedding": tensors.take("embeddings.weight", (rows, width)),
            "position_embedding": tensors.take("pos_embed", (1, model.sequence_length + 1, width))[0],
            "mid_block": block("mid_block"), "final_norm": layouts.norm(tensors, "norm", width)}
  for index in range(model.depth // 2):
    params[f"in_block{index}"] = block(f"in_blocks.{index}")
    params[f"out_block{index}"] = block(f"out_blocks.{index}")
    params[f"skip{index}"] = layouts.linear(tensors, f"out_blocks.{index}.skip_linear", 2 * width, width)
  return params


def _check_bert_buffers(state_dict: Mapping[str, np.ndarray]) -> None:
  """Older transformers releases saved position_ids (arange) and token_type_ids (zeros) buffers: they must hold
  those values, since the model computes them."""
  for name in BERT_BUFFERS:
    if name in state_dict:
      values = np.asarray(state_dict[name]).reshape(-1)
      expected = np.arange(values.size) if name.endswith("position_ids") else np.zeros(values.size)
      if not np.array_equal(values, expected):
        raise tensors_lib.ConversionError(f"official generator: buffer {name!r} is not the default {expected[:4]}...")


def maskgit_from_official(state_dict: Mapping[str, np.ndarray], config: Mapping[str, Any]):
  """An official `ImageBert` / `UViTBert` state dict -> (jaxtok module, variables `{"params": ...}`).

  Args:
    state_dict: `{name: array}` of `generator_titok_*.bin` (or any checkpoint of those classes).
    config: the official YAML's `model.generator` section (or the whole `model` section) as a plain dict.

  Returns:
    (`image_bert.ImageBert` or `image_bert.UViTBert`, variables) such that `model.apply(variables, tokens, labels)`
    is the official `forward(tokens, labels, cond_drop_prob=0)` (labels = num_classes: the dropped class).
  """
  section = _generator_section(config)
  model_type = section.get("model_type")
  if model_type not in MODEL_TYPES:
    raise ValueError(f"generator model_type must be one of {tuple(MODEL_TYPES)}, got {model_type!r}.")
  head = HEAD_NAMES[model_type]
  if f"{head}.bias" not in state_dict:
    raise tensors_lib.ConversionError(f"official generator ({model_type}): tensor '{head}.bias' is missing.")
  positions = state_dict.get("model.embeddings.position_embeddings.weight", state_dict.get("pos_embed"))
  length = None if positions is None else np.shape(positions)[-2] - 1
  model = generator_from_config(section, codebook_size=np.shape(state_dict[f"{head}.bias"])[0],
                                sequence_length=length)
  if model_type == "ViT":
    _check_bert_buffers(state_dict)
  tensors = tensors_lib.OfficialTensors(state_dict, source=f"official generator ({model_type})",
                                        dropped=BERT_BUFFERS)
  params = _image_bert_params(tensors, model) if model_type == "ViT" else _uvit_bert_params(tensors, model)
  params["head"] = layouts.linear(tensors, head, model.width, model.vocab_size)
  tensors.finish()
  variables = tensors_lib.variables_for(model, {"params": params}, jnp.zeros((1, model.sequence_length), jnp.int32),
                                       jnp.zeros((1,), jnp.int32))
  return model, jax.tree.map(jnp.asarray, variables)


def generate_like_official(model, variables: Any, condition: jax.Array, *, key: jax.Array,
                           guidance_scale: float = 3.0, guidance_decay: str = "constant",
                           guidance_scale_pow: float = 3.0, randomize_temperature: float = 4.5,
                           softmax_temperature_annealing: bool = False, num_sample_steps: int = 8) -> jax.Array:
  """The official `ImageBert.generate(condition, ...)`: tokens `[batch, L]` int32 for class ids `condition` `[batch]`.

  arccos schedule with the MaskGIT count rule, tokens by argmax(logits + tau Gumbel) and confidence = their logit +
  tau Gumbel (tau = randomize_temperature (1 - (s + 1) / T)), guidance decay `constant` / `linear` / `power-cosine`
  (`guidance.GUIDANCE_SCHEDULES`), optional softmax-temperature annealing; guidance_scale 0 (constant or linear)
  runs the conditional model alone, as the official code does.
  """
  guided = guidance_scale != 0 or guidance_decay == "power-cosine"  # power-cosine's weight is 1 - c_s at g = 0
  return masked_sampling.maskgit_sample(
      lambda tokens, labels: model.apply(variables, tokens, labels), key, jnp.asarray(condition, jnp.int32),
      sequence_length=model.sequence_length, mask_id=model.mask_id, num_steps=num_sample_steps, schedule="arccos",
      count_rule="maskgit", choice_temperature=randomize_temperature, token_sampling="annealed_gumbel",
      confidence="logit", softmax_temperature_annealing=softmax_temperature_annealing,
      guidance_scale=guidance_scale, guidance_schedule=guidance_decay, guidance_power=guidance_scale_pow,
      null_class=model.null_class if guided else None).tokens
