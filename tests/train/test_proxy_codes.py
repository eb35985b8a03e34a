"""TiTok's stage 1 (`train.proxy_codes_from`): the loss is the cross-entropy against a frozen MaskGIT-VQGAN's codes,
evaluation and token decoding go through that VQGAN, and configs that cannot work are refused naming the fields."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok import config_validation
from jaxtok import sharding
from jaxtok.train import frozen_tokenizer
from jaxtok.train import inference
from jaxtok.train import proxy_codes
from jaxtok.train import run as run_lib
from training_helpers import titok_config_for  # pylint: disable=g-bad-import-order

pytestmark = pytest.mark.xdist_group("vqgan")  # one worker trains the shared VQGAN and stage-1 runs


def test_proxy_code_loss_is_the_mean_cross_entropy_and_argmax_accuracy():
  logits = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 3, 5)) * 3
  codes = jax.random.randint(jax.random.PRNGKey(1), (2, 3, 3), 0, 5)
  loss, accuracy = proxy_codes.proxy_code_loss(logits, codes)
  shifted = np.asarray(logits, np.float64) - np.max(np.asarray(logits, np.float64), axis=-1, keepdims=True)
  log_probabilities = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
  picked = np.take_along_axis(log_probabilities, np.asarray(codes)[..., None], axis=-1)
  np.testing.assert_allclose(float(loss), -np.mean(picked), rtol=1e-5)
  assert float(accuracy) == pytest.approx(np.mean(np.argmax(np.asarray(logits), -1) == np.asarray(codes)))
  with pytest.raises(ValueError, match=r"\(2, 3, 3, 5\) and \(2, 9\)"):
    proxy_codes.proxy_code_loss(logits, codes.reshape(2, 9))


def test_stage_one_step_trains_on_the_vqgan_codes(vqgan_workdir, tmp_path):
  run = run_lib.Run(titok_config_for(vqgan_workdir, "proxy_codes").lock(), tmp_path)
  try:
    vqgan = inference.restore_for_inference(None, vqgan_workdir)
    batch = next(run.train_iterator)
    images = jnp.asarray(batch["image"])
    codes = vqgan.model.apply(vqgan.variables, images, method="encode")[0]
    logits, _ = run.task.model.apply({"params": run.state.params, **run.state.model_state}, images)
    expected, _ = proxy_codes.proxy_code_loss(logits, codes)
    _, metrics = run.train_step(run.state, sharding.global_batch(batch, run.mesh))
    np.testing.assert_allclose(float(metrics["proxy_code_loss"]), float(expected), rtol=1e-5)
    assert float(metrics["loss"]) == pytest.approx(float(metrics["proxy_code_loss"]))  # FSQ: no quantizer loss
  finally:
    run.close()


def test_stage_one_evaluates_and_decodes_tokens_through_the_vqgan(vqgan_workdir, stage_one_workdir):
  final = json.loads((stage_one_workdir / "metrics.json").read_text())["final_eval"]
  assert np.isfinite(final["psnr"]) and final["bits_per_image"] == 8 * 10
  tokenizer = frozen_tokenizer.restore(None, stage_one_workdir)
  images = np.zeros((2, 32, 32, 3), np.float32)
  tokens = tokenizer.encode(images)
  decoded = tokenizer.decode(tokens)
  assert tokens.shape == (2, 8) and decoded.shape == (2, 32, 32, 3)
  titok = inference.restore_for_inference(None, stage_one_workdir)
  vqgan = inference.restore_for_inference(None, vqgan_workdir)
  logits = titok.model.apply(titok.variables, tokens, method="decode_indices")
  expected = vqgan.model.apply(vqgan.variables, jnp.argmax(logits, -1), method="decode_indices")
  np.testing.assert_allclose(decoded, np.asarray(expected), atol=1e-5)


@pytest.mark.parametrize("change, message", [
    ({"train.proxy_codes_from": ""}, "decoder_output 'proxy_codes', train.proxy_codes_from ''"),
    ({"model.decoder_output": "pixels"}, "decoder_output 'pixels', train.proxy_codes_from '/"),
    ({"model.token_dropout": "tail_drop"}, "token_dropout must be 'none', got 'tail_drop'"),
    ({"losses.perceptual_weight": 0.1, "losses.perceptual_weights_path": "x.npz"}, "perceptual_weight"),
    ({"model.proxy_codebook_size": 64}, "codebook size 64 vs 32"),
    ({"model.patch_size": 8}, "downsampling factor 8 vs 4"),
])
def test_configs_that_cannot_train_stage_one_are_refused(vqgan_workdir, tmp_path, change, message):
  config = titok_config_for(vqgan_workdir, "proxy_codes")
  for path, value in change.items():
    section, field = path.split(".")
    config[section][field] = value
  with pytest.raises(config_validation.ConfigError, match=message):
    run_lib.Run(config.lock(), tmp_path)
