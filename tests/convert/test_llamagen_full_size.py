"""Full-size random-initialised official GPT-B (c2i) and VQ-16 against their jaxtok conversions, on CPU.

Runs only where `JAXTOK_LLAMAGEN_FULL_SIZE` names the folder `tests/fixtures/make_official_fixtures.py
--family=llamagen_full_size` wrote (about 800 MB of `.safetensors` state dicts and outputs of the official code).
Prints the maximum errors.
"""
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.convert import llamagen_gpt_from_official
from jaxtok.convert import llamagen_vq_from_official
from jaxtok.convert import load_state_dict

FOLDER = os.environ.get("JAXTOK_LLAMAGEN_FULL_SIZE", "")
pytestmark = pytest.mark.skipif(not FOLDER, reason="set JAXTOK_LLAMAGEN_FULL_SIZE to the full-size fixture folder")
DECODE_STEPS, CHUNK = 3, 4  # as the maker


def _relative_error(ours, reference) -> float:
  return float(np.abs(np.asarray(ours) - reference).max() / np.abs(reference).max())


def test_full_size_gpt_b_matches_the_official():
  folder = pathlib.Path(FOLDER)
  io = np.load(folder / "c2i_B_256_random_io.npz")
  model, variables = llamagen_gpt_from_official(load_state_dict(folder / "c2i_B_256_random.safetensors"), "GPT-B")
  apply = jax.jit(model.apply, static_argnames="method")
  tokens, labels = jnp.asarray(io["tokens"], jnp.int32), jnp.asarray(io["labels"], jnp.int32)
  errors = {"teacher_forced": _relative_error(apply(variables, tokens, labels), io["teacher_forced_logits"])}
  cache = model.init_cache(2, 1 + 256)
  logits, cache = apply(variables, labels, cache, method="prefill")
  errors["prefill"] = _relative_error(logits, io["prefill_logits"])
  steps = []
  for index in range(DECODE_STEPS):
    logits, cache = apply(variables, tokens[:, index:index + 1], cache, method="decode")
    steps.append(logits[:, 0])
  errors["decode"] = _relative_error(jnp.stack(steps, 1), io["decode_logits"])
  logits, _ = apply(variables, tokens[:, DECODE_STEPS:DECODE_STEPS + CHUNK], cache, method="decode")
  errors["chunk"] = _relative_error(logits, io["chunk_logits"])
  print(f"GPT-B full size, max |error| / max |official logit|: {errors}")
  assert max(errors.values()) < 1e-5, errors


def test_full_size_vq_16_matches_the_official():
  folder = pathlib.Path(FOLDER)
  io = np.load(folder / "vq_ds16_random_io.npz")
  model, variables = llamagen_vq_from_official(load_state_dict(folder / "vq_ds16_random.safetensors"), "VQ-16")
  apply = jax.jit(model.apply, static_argnames="method")
  latents = apply(variables, jnp.asarray(io["images"]), method="latents")
  indices, _ = apply(variables, jnp.asarray(io["images"]), method="encode")
  decoded = apply(variables, jnp.asarray(io["indices"]), method="decode_indices")
  equal = float(np.mean(np.asarray(indices) == io["indices"]))
  decode_error = float(np.abs(np.asarray(decoded) - io["decoded"]).max())
  print(f"VQ-16 full size: latents max |error| {np.abs(np.asarray(latents) - io['latents']).max():.3g} "
        f"(max |latent| {np.abs(io['latents']).max():.3g}), indices equal {equal:.4f}, decode max |error| "
        f"{decode_error:.3g} (max |pixel| {np.abs(io['decoded']).max():.3g})")
  assert equal == 1.0 and decode_error < 1e-4
