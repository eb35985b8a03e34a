"""Every official LlamaGen size: jaxtok's parameter count equals the official one to the unit, and the converters
consume every tensor of an official state dict of that size (names and shapes from the official modules,
`official/llamagen_shapes.json`; zero-stride arrays, so no memory is spent)."""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.convert import llamagen_gpt_from_official
from jaxtok.convert import llamagen_vq_from_official
from jaxtok.convert import tensors

SHAPES = json.loads((pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "official" /
                     "llamagen_shapes.json").read_text())
# Official parameter counts (torch `sum(p.numel() for p in model.parameters())`, buffers excluded).
COUNTS = {"GPT-B": 110_888_448, "GPT-L": 342_910_976, "GPT-XL": 774_699_520, "GPT-XXL": 1_410_972_672,
          "GPT-3B": 3_096_659_200, "GPT-XL-t2i": 777_678_080, "VQ-16": 71_883_403, "VQ-8": 70_109_835}


def _zeros(name):
  entries = {**SHAPES[name]["parameters"], **SHAPES[name]["buffers"]}
  return {key: np.broadcast_to(np.float32(0), shape) for key, shape in entries.items()}


def _convert(name):
  if name.startswith("VQ"):
    return llamagen_vq_from_official(_zeros(name), name)
  if name == "GPT-XL-t2i":
    return llamagen_gpt_from_official(_zeros(name), "GPT-XL", model_type="t2i", sequence_length=1024)
  return llamagen_gpt_from_official(_zeros(name), name)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_official_sizes_convert_and_count_the_same_parameters(name):
  official = sum(int(np.prod(shape)) for shape in SHAPES[name]["parameters"].values())
  assert official == COUNTS[name]
  model, variables = _convert(name)  # raises if any official tensor is left over or any jaxtok one missing
  converted = sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree.leaves(variables["params"]))
  if name.startswith("VQ"):
    counted = tensors.parameter_count(model, jnp.zeros((1, 16, 16, 3)))
  else:
    condition = (jnp.zeros((1,), jnp.int32) if model.condition == "class"
                 else jnp.zeros((1, model.num_condition_tokens, model.caption_dim)))
    counted = tensors.parameter_count(model, jnp.zeros((1, model.sequence_length), jnp.int32), condition)
  assert counted == converted == COUNTS[name]


def test_t2i_buffers_and_dropped_tensors():
  model, variables = _convert("GPT-XL-t2i")
  assert variables["constants"]["uncond_embedding"].shape == (120, 2048) and model.caption_dim == 2048
  with pytest.raises(ValueError, match="not converted"):
    llamagen_gpt_from_official({**_zeros("GPT-B"), "extra": np.zeros(2)}, "GPT-B")
  # freqs_cis (stored by some checkpoints) is recomputed, not converted.
  llamagen_gpt_from_official({**_zeros("GPT-B"), "freqs_cis": np.zeros((257, 32, 2))}, "GPT-B")
  with pytest.raises(ValueError, match="wrong shapes"):  # a GPT-B checkpoint read as GPT-L
    llamagen_gpt_from_official(_zeros("GPT-B"), "GPT-L", depth=12)
