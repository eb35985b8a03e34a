"""`maskgit_from_official` and `generate_like_official` against the official 1d-tokenizer generators
(`tests/fixtures/official/maskgit_{imagebert,uvitbert}.npz`, made by `make_official_fixtures.py --family=maskgit`):
logits within 1e-4 relative in float32, exactly the official tokens with `randomize_temperature=0`, and every
tensor accounted for."""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.convert import maskgit as convert_maskgit
from jaxtok.convert import tensors as tensors_lib
from jaxtok.decoders import image_bert

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "official"
NAMES = ("imagebert", "uvitbert")


def load_fixture(name: str) -> dict:
  with np.load(FIXTURES / f"maskgit_{name}.npz") as arrays:
    fixture = dict(arrays)
  fixture["state_dict"] = {key[len("state_dict/"):]: fixture.pop(key) for key in list(fixture)
                           if key.startswith("state_dict/")}
  fixture["config"] = json.loads(str(fixture["config"]))
  return fixture


@pytest.fixture(scope="module", params=NAMES)
def converted(request):
  fixture = load_fixture(request.param)
  model, variables = convert_maskgit.maskgit_from_official(fixture["state_dict"], fixture["config"])
  return fixture, model, variables


def relative_error(got, want) -> float:
  return float(np.abs(np.asarray(got) - want).max() / np.abs(want).max())


def test_converted_logits_match_the_official_ones(converted):
  fixture, model, variables = converted
  assert isinstance(model, {"ViT": image_bert.ImageBert, "UViT": image_bert.UViTBert}[fixture["config"]["model_type"]])
  tokens, labels = jnp.asarray(fixture["tokens"]), jnp.asarray(fixture["labels"])
  with jax.default_matmul_precision("highest"):
    conditional = model.apply(variables, tokens, labels)
    unconditional = model.apply(variables, tokens, jnp.full_like(labels, model.null_class))
  assert relative_error(conditional, fixture["logits_conditional"]) < 1e-4
  assert relative_error(unconditional, fixture["logits_unconditional"]) < 1e-4
  # The fixture tells the two apart: a wrong class mapping could not pass.
  assert relative_error(fixture["logits_unconditional"], fixture["logits_conditional"]) > 1e-2


def _generate_cases(fixture) -> list[dict]:
  indices = sorted({int(key.split("/")[1]) for key in fixture if key.startswith("generate/")})
  return [{key.split("/")[2]: value for key, value in fixture.items() if key.startswith(f"generate/{index}/")}
          for index in indices]


def test_deterministic_generation_returns_the_official_tokens(converted):
  fixture, model, variables = converted
  for case in _generate_cases(fixture):
    with jax.default_matmul_precision("highest"):
      tokens = convert_maskgit.generate_like_official(
          model, variables, fixture["labels"][:case["tokens"].shape[0]], key=jax.random.key(0),
          guidance_scale=float(case["scale"]), guidance_decay=str(case["decay"]),
          guidance_scale_pow=float(case["power"]), randomize_temperature=0.0,
          softmax_temperature_annealing=bool(case["softmax_temperature_annealing"]),
          num_sample_steps=int(case["num_steps"]))
    np.testing.assert_array_equal(tokens, case["tokens"], err_msg=str(case["decay"]))


def test_random_generation_gives_valid_varied_tokens(converted):
  fixture, model, variables = converted
  labels = fixture["labels"][:2]
  sample = lambda seed: convert_maskgit.generate_like_official(model, variables, labels, key=jax.random.key(seed),
                                                               guidance_scale=2.0, randomize_temperature=4.5)
  first, second = np.asarray(sample(0)), np.asarray(sample(1))
  assert first.shape == (2, model.sequence_length) and first.max() < model.vocab_size and first.min() >= 0
  assert np.any(first != second)


def test_the_model_section_and_an_unresolved_length_also_convert():
  fixture = load_fixture("imagebert")
  section = dict(fixture["config"], image_seq_len="${model.vq_model.num_latent_tokens}")
  codebook_size = section.pop("codebook_size")
  model, _ = convert_maskgit.maskgit_from_official(fixture["state_dict"], section)
  assert (model.vocab_size, model.sequence_length) == (codebook_size, 16)
  model, _ = convert_maskgit.maskgit_from_official(
      fixture["state_dict"], {"generator": section, "vq_model": {"codebook_size": codebook_size,
                                                                 "num_latent_tokens": 16}})
  assert (model.vocab_size, model.sequence_length) == (codebook_size, 16)


@pytest.mark.parametrize("name", NAMES)
def test_missing_unexpected_and_misshaped_tensors_are_named(name):
  fixture = load_fixture(name)
  state_dict, config = fixture["state_dict"], fixture["config"]
  some_weight = next(key for key in state_dict if key.endswith(("fc1.weight", "intermediate.dense.weight")))
  missing = {key: value for key, value in state_dict.items() if key != some_weight}
  with pytest.raises(tensors_lib.ConversionError, match=f"{some_weight}.*missing"):
    convert_maskgit.maskgit_from_official(missing, config)
  with pytest.raises(tensors_lib.ConversionError, match=r"not converted \(unexpected\).*extra.weight"):
    convert_maskgit.maskgit_from_official({**state_dict, "extra.weight": np.zeros(3)}, config)
  wrong = {**state_dict, some_weight: state_dict[some_weight][:, :-1]}
  with pytest.raises(tensors_lib.ConversionError, match=f"{some_weight}.*has shape"):
    convert_maskgit.maskgit_from_official(wrong, config)
  with pytest.raises(tensors_lib.ConversionError, match="has shape"):
    convert_maskgit.maskgit_from_official(state_dict, dict(config, intermediate_size=2 * config["intermediate_size"]))


def test_bert_buffers_of_older_transformers_are_checked_and_consumed():
  fixture = load_fixture("imagebert")
  state_dict = {**fixture["state_dict"], "model.embeddings.position_ids": np.arange(17)[None]}
  convert_maskgit.maskgit_from_official(state_dict, fixture["config"])
  state_dict["model.embeddings.position_ids"] = np.arange(17)[None] + 1
  with pytest.raises(tensors_lib.ConversionError, match="position_ids"):
    convert_maskgit.maskgit_from_official(state_dict, fixture["config"])


def test_an_unknown_model_type_raises():
  fixture = load_fixture("imagebert")
  with pytest.raises(ValueError, match="model_type must be one of"):
    convert_maskgit.maskgit_from_official(fixture["state_dict"], dict(fixture["config"], model_type="DiT"))
