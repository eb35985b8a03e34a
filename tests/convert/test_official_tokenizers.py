"""TiTok and MaskGIT-VQGAN converted from bytedance/1d-tokenizer reproduce the official outputs (fixtures the official
code produced, tests/fixtures/make_official_fixtures.py); bad checkpoints and configs raise naming the problem."""
import pathlib

import numpy as np
import pytest

from jaxtok import convert
import official_comparison

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "official"
NAMES = (pytest.param("titok_legacy", marks=pytest.mark.slow), "titok_pixels", "maskgit_vqgan")


@pytest.fixture(scope="module", params=NAMES)
def converted(request):
  fixture = official_comparison.load_fixture(FIXTURES / f"{request.param}.npz")
  model, variables = official_comparison.convert_fixture(fixture)
  return fixture, model, variables


def test_converted_models_reproduce_the_official_outputs(converted):
  """Token ids equal; latents, proxy-code logits and pixels within 1e-4 of the official outputs' scale (fp32)."""
  fixture, model, variables = converted
  outputs = official_comparison.jaxtok_outputs(fixture, model, variables)
  assert set(outputs) == set(fixture.outputs) and {"latents", "tokens", "pixels"} <= set(outputs)
  np.testing.assert_array_equal(outputs["tokens"], fixture.outputs["tokens"])
  report = official_comparison.errors(fixture, outputs)
  assert all(error < official_comparison.TOLERANCE for error in report.values()), report
  assert not official_comparison.mismatches(report)
  assert official_comparison.mismatches({**report, "tokens": 1 / 256, "pixels": 2e-4}) == ["tokens", "pixels"]


def test_full_call_decodes_its_own_tokens(converted):
  """__call__ is decode_indices(encode(x)) in jaxtok's [-1, 1] convention: `2 * y_official - 1`, unclamped."""
  fixture, model, variables = converted
  images = 2.0 * fixture.inputs["images"] - 1.0
  reconstruction, output = model.apply(variables, images)
  np.testing.assert_array_equal(output.indices, fixture.outputs["tokens"])
  official = 2.0 * fixture.outputs["pixels"] - 1.0
  assert np.max(np.abs(np.asarray(reconstruction) - official)) < 1e-3 * np.max(np.abs(official))


def _state(name: str) -> tuple[dict, dict]:
  fixture = official_comparison.load_fixture(FIXTURES / f"{name}.npz")
  return dict(fixture.state), fixture.config


@pytest.mark.parametrize("name", ["titok_legacy", "maskgit_vqgan"])
def test_missing_unexpected_and_misshaped_tensors_raise_naming_them(name):
  state, config = _state(name)
  convert_fn = ((lambda s: convert.titok_from_official(s, config["model"], vit_sizes=config["vit_sizes"]))
                if config["family"] == "titok" else convert.vqgan_from_official)
  victim = "decoder.conv_in.weight" if name == "maskgit_vqgan" else "decoder.transformer.1.ln_2.bias"
  missing = {k: v for k, v in state.items() if k != victim}
  with pytest.raises(convert.ConversionError, match=f"no tensor '{victim}' \\(missing"):
    convert_fn(missing)
  with pytest.raises(convert.ConversionError, match=r"not converted \(unexpected\).*extra.weight"):
    convert_fn({**state, "extra.weight": np.zeros(3, np.float32)})
  misshaped = {**state, victim: np.zeros(state[victim].shape + (1,), np.float32)}
  with pytest.raises(convert.ConversionError, match=f"'{victim}' has shape"):
    convert_fn(misshaped)


def test_bad_configs_raise():
  state, config = _state("titok_pixels")
  vq_model = config["model"]["vq_model"]
  with pytest.raises(convert.ConversionError, match="`model` section"):
    convert.titok_from_official(state, vq_model)
  with pytest.raises(convert.ConversionError, match="quantize_mode='vae'"):
    convert.titok_from_official(state, {"vq_model": {**vq_model, "quantize_mode": "vae"}})
  with pytest.raises(convert.ConversionError, match=r"\['lfq_bits'\] are not understood"):
    convert.titok_from_official(state, {"vq_model": {**vq_model, "lfq_bits": 3}})
  with pytest.raises(convert.ConversionError, match="Unknown official ViT size 'huge'"):
    convert.titok_from_official(state, {"vq_model": {**vq_model, "vit_dec_model_size": "huge"}})
  with pytest.raises(convert.ConversionError, match="has shape"):  # the real "small" table does not fit the fixture
    convert.titok_from_official(state, config["model"])
