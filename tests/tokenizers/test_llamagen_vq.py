"""LlamaGen's VQ tokenizer against the official `vq_model.py` (fixture `official/llamagen_vq.npz`, made by
`tests/fixtures/make_official_fixtures.py --family=llamagen`): codes, indices, reconstructions; converter checks."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.convert import ConversionError
from jaxtok.convert import llamagen_vq_from_official

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "official" / "llamagen_vq.npz"
TINY = dict(base_channels=32, channel_multipliers=(1, 1), num_res_blocks=1, z_channels=32, codebook_size=64)


@pytest.fixture(scope="module")
def official():
  with np.load(FIXTURE) as data:
    return {name: data[name] for name in data.files}


@pytest.fixture(scope="module")
def converted(official):
  state_dict = {name[len("state/"):]: value for name, value in official.items() if name.startswith("state/")}
  return llamagen_vq_from_official(state_dict, "VQ-16", **TINY)


def test_encode_gives_the_official_indices_and_codes(official, converted):
  model, variables = converted
  apply = jax.jit(model.apply, static_argnames="method")
  images = jnp.asarray(official["images"])
  np.testing.assert_allclose(apply(variables, images, method="latents"), official["latents"], rtol=1e-5, atol=1e-5)
  indices, output = apply(variables, images, method="encode")
  np.testing.assert_array_equal(indices, official["indices"])
  np.testing.assert_allclose(output.quantized, official["quantized"], atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(output.quantized, axis=-1), 1.0, rtol=1e-5)  # l2-normalised codes


def test_decode_and_reconstruction_match_the_official_within_1e_4(official, converted):
  model, variables = converted
  apply = jax.jit(model.apply, static_argnames="method")
  decoded = apply(variables, jnp.asarray(official["indices"]), method="decode_indices")
  np.testing.assert_allclose(decoded, official["decoded"], atol=1e-4)
  reconstruction, _ = apply(variables, jnp.asarray(official["images"]))
  np.testing.assert_allclose(reconstruction, official["reconstruction"], atol=1e-4)


def test_converter_consumes_every_tensor_once(official):
  state_dict = {name[len("state/"):]: value for name, value in official.items() if name.startswith("state/")}
  with pytest.raises(ValueError, match="1 tensors .* not converted"):
    llamagen_vq_from_official({**state_dict, "encoder.extra.weight": np.zeros(3)}, "VQ-16", **TINY)
  missing = dict(state_dict)
  del missing["decoder.conv_out.bias"]
  with pytest.raises(ConversionError, match="decoder.conv_out.bias"):
    llamagen_vq_from_official(missing, "VQ-16", **TINY)
  with pytest.raises(ValueError, match="wrong shapes"):  # a VQ-16 checkpoint read as a model of another width
    llamagen_vq_from_official(state_dict, "VQ-16", **{**TINY, "codebook_size": 32})
  with pytest.raises(ValueError, match="model_name"):
    llamagen_vq_from_official(state_dict, "VQ-32")


def test_bad_images_raise(converted):
  model, variables = converted
  with pytest.raises(ValueError, match="divisible by 2"):
    model.apply(variables, jnp.zeros((1, 7, 8, 3)), method="encode")
