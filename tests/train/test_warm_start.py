"""`train.pixel_decoder_from`: a fresh TiTok run starts its MaskGIT-VQGAN pixel decoder and codebook from a trained
VQGAN's evaluation weights; a resumed run keeps its own; configs that do not fit are refused naming the fields."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok import config_validation
from jaxtok.quantizers import fsq
from jaxtok.train import inference
from jaxtok.train import run as run_lib
from training_helpers import assert_trees_equal, read_checkpoint, titok_config_for  # pylint: disable=g-bad-import-order

pytestmark = pytest.mark.xdist_group("vqgan")  # one worker trains the shared VQGAN and stage-1 runs


def test_fresh_run_starts_from_the_vqgan_and_a_resumed_run_from_its_own_weights(vqgan_workdir, tmp_path):
  vqgan = inference.restore_for_inference(None, vqgan_workdir)
  run = run_lib.Run(titok_config_for(vqgan_workdir).lock(), tmp_path)
  try:
    for params in (run.state.params, run.state.ema_params):
      assert_trees_equal(params["decoder"]["pixel_decoder"], vqgan.variables["params"]["decoder"])
      expected = fsq.fsq_indices_to_codes(jnp.arange(32), (8, 4))
      np.testing.assert_array_equal(np.asarray(params["decoder"]["pixel_codebook"]), np.asarray(expected))
  finally:
    run.close()

  run_lib.train(titok_config_for(vqgan_workdir).lock(), tmp_path)
  saved = read_checkpoint(tmp_path, 2)
  run = run_lib.Run(titok_config_for(vqgan_workdir).lock(), tmp_path)
  try:
    assert run.start_step == 2
    assert_trees_equal(jax.device_get(run.state.params), saved["params"])
    trained = run.state.params["decoder"]["pixel_decoder"]["output"]["kernel"]
    assert not np.array_equal(np.asarray(trained), np.asarray(vqgan.variables["params"]["decoder"]["output"]["kernel"]))
  finally:
    run.close()


def test_a_vqgan_that_does_not_fit_is_refused_naming_the_fields(vqgan_workdir, tmp_path):
  config = titok_config_for(vqgan_workdir)
  config.model.pixel_decoder_norm_groups = 2
  config.model.proxy_codebook_size = 64
  with pytest.raises(config_validation.ConfigError, match=r"norm_groups 2 vs 4.*proxy_codebook_size 64 vs 32"):
    run_lib.Run(config.lock(), tmp_path)


def test_only_a_titok_decoding_through_a_vqgan_takes_one(vqgan_workdir, stage_one_workdir, tmp_path):
  config = titok_config_for(vqgan_workdir)
  config.model.decoder_output = "pixels"
  with pytest.raises(config_validation.ConfigError, match="proxy_codes_to_pixels', got 'titok' with 'pixels'"):
    run_lib.Run(config.lock(), tmp_path)
  config = titok_config_for(stage_one_workdir)  # a TiTok's workdir, not a VQGAN's
  with pytest.raises(config_validation.ConfigError, match="model_name 'vqgan'"):
    run_lib.Run(config.lock(), tmp_path / "other")


def test_stage_two_starts_from_stage_one_and_the_vqgan(vqgan_workdir, stage_one_workdir, tmp_path):
  stage_one = stage_one_workdir
  config = titok_config_for(vqgan_workdir)
  config.model.token_dropout = "none"
  config.train.params_from = str(stage_one)
  run = run_lib.Run(config.lock(), tmp_path / "stage2")
  try:
    trained = inference.restore_for_inference(None, stage_one).variables["params"]
    vqgan = inference.restore_for_inference(None, vqgan_workdir).variables["params"]
    for params in (run.state.params, run.state.ema_params):
      assert_trees_equal(params["encoder"], trained["encoder"])
      for name, value in trained["decoder"].items():
        assert_trees_equal(params["decoder"][name], value)
      assert_trees_equal(params["decoder"]["pixel_decoder"], vqgan["decoder"])
  finally:
    run.close()
  config = titok_config_for(vqgan_workdir)
  config.model.update(dict(token_dropout="none", num_latent_tokens=4))
  config.train.params_from = str(stage_one)
  with pytest.raises(config_validation.ConfigError, match=r"other shapes \(there vs here\): .*\(8, 32\) vs \(4, 32\)"):
    run_lib.Run(config.lock(), tmp_path / "misfit")
