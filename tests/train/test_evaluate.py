"""`jaxtok.evaluate`: a checkpoint of a flexible TiTok evaluated with rFID, bits per image and the token curve, with
the given config or the one the workdir recorded."""
import json
import logging

import numpy as np
import pytest

from jaxtok import config_validation
from jaxtok import evaluate
from jaxtok.cli import load_config_file
from jaxtok.metrics import fid
from jaxtok.train import run as run_lib
from training_helpers import REPO  # pylint: disable=g-bad-import-order


def _random_inception_weights(path) -> None:
  """A 1/16-width InceptionV3 with He-initialised random weights (features that vary), in the FID file layout."""
  rng = np.random.default_rng(0)

  def draw(key: str, shape: tuple[int, ...]) -> np.ndarray:
    if key.endswith("/kernel"):
      return rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
    if key.endswith(("/var", "/scale")):
      return np.ones(shape)
    return 0.1 * rng.standard_normal(shape)  # BN bias and running mean

  np.savez(path, **{key: draw(key, value.shape).astype(np.float32)
                    for key, value in fid.variable_shapes(fid.InceptionV3(width_multiplier=1 / 16)).items()})


@pytest.mark.slow
def test_evaluate_a_flexible_titok_checkpoint(tmp_path, caplog):
  config = load_config_file(str(REPO / "experiments" / "titok_photos.py") + ":smoke").unlock()
  config.data.batch_size = 8  # one example per simulated device
  workdir = tmp_path / "run"
  trained = run_lib.train(config, workdir)
  assert "psnr_at_8_tokens" in trained["final_eval"]  # the runner's own evaluation draws the curve too
  history = (workdir / "history_eval.jsonl").read_text()

  _random_inception_weights(tmp_path / "inception.npz")
  config.eval.inception_weights_path = str(tmp_path / "inception.npz")
  with caplog.at_level(logging.INFO, logger="absl"):
    results = evaluate.evaluate_checkpoint(config, workdir)
  assert f"Loaded the checkpoint at step 4 of {workdir} (EMA weights) for evaluation." in caplog.text
  assert "Resumed" not in caplog.text

  assert results["step"] == 4
  assert results["bits_per_image"] == pytest.approx(8 * np.log2(8 * 8 * 8 * 2))
  assert np.isfinite(results["rfid"]) and results["rfid"] > 0  # 4 steps of training reconstruct badly
  assert 0 <= results["dead_code_fraction"] == pytest.approx(1 - results["codebook_usage"])
  assert [results[f"psnr_at_{k}_tokens"] for k in (1, 2, 4, 8)] == pytest.approx(
      [trained["final_eval"][f"psnr_at_{k}_tokens"] for k in (1, 2, 4, 8)], rel=1e-5)
  output = workdir / "eval_step0000004"
  written = json.loads((output / "metrics.json").read_text())
  assert written["rfid"] == pytest.approx(results["rfid"])
  assert json.loads((output / "token_curve.json").read_text())["num_tokens"] == [1, 2, 4, 8]
  for png in ("reconstructions.png", "token_curve.png"):
    assert (output / png).stat().st_size > 1000
  assert (workdir / "history_eval.jsonl").read_text() == history, "evaluation must not rewrite training logs"

  recorded = evaluate.evaluate_checkpoint(None, workdir)  # the config recorded in the workdir, without rFID
  assert recorded["psnr"] == pytest.approx(trained["final_eval"]["psnr"], rel=1e-6) and "rfid" not in recorded
  config.model.num_latent_tokens = 16
  with pytest.raises(config_validation.ConfigError, match=r"in 1 field\(s\): model.num_latent_tokens = 16 here, 8 "
                     r"there\."):
    evaluate.evaluate_checkpoint(config, workdir)
  with pytest.raises(config_validation.ConfigError, match=r"No checkpoint at step 3 .* saved steps: \[4\]"):
    evaluate.evaluate_checkpoint(config, workdir, step=3)
  with pytest.raises(config_validation.ConfigError, match="train first"):
    evaluate.evaluate_checkpoint(config, tmp_path / "empty")
