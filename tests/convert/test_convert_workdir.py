"""`python -m jaxtok.convert`: an official checkpoint becomes a workdir (config.py + checkpoint) that the runner
restores and `jaxtok.evaluate` evaluates as it is."""
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxtok import config_validation
from jaxtok import evaluate
from jaxtok.cli import load_config_file
from jaxtok.convert import __main__ as convert_cli
import official_comparison

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "official" / "maskgit_vqgan.npz"


def _photos_config():
  """The photos pipeline at the fixture's 64x64 (its f16 model tokenizes a 4x4 grid), evaluated on 8 crops."""
  config = load_config_file(str(REPO / "experiments" / "vqgan_photos.py")).unlock()
  config.data.batch_size = config.eval.batch_size = config.eval.num_images = config.eval.grid_images = 8
  return config


@pytest.mark.slow
def test_converted_workdir_is_restored_and_evaluated(tmp_path):
  fixture = official_comparison.load_fixture(FIXTURE)
  checkpoint = tmp_path / "maskgit-vqgan.npz"
  np.savez(checkpoint, **fixture.state)  # a file with the official tensor names, as a released checkpoint has
  workdir = tmp_path / "converted"
  summary = convert_cli.convert_to_workdir("maskgit_vqgan", str(checkpoint), str(workdir), config=_photos_config())
  assert "python -m jaxtok.evaluate --config=" in summary

  config = load_config_file(str(workdir / "config.py"))
  assert config.model_name == "vqgan" and tuple(config.model.pixel_range) == (0.0, 1.0)
  saved = ocp.StandardCheckpointer().restore((workdir / "checkpoints" / "1" / "state").absolute())
  expected = official_comparison.convert_fixture(fixture)[1]["params"]
  for weights in ("params", "ema_params"):  # evaluation reads the EMA weights when train.ema_decay > 0
    jax.tree.map(np.testing.assert_array_equal, saved[weights], jax.tree.map(np.asarray, expected))
  results = evaluate.evaluate_checkpoint(config, workdir)
  assert results["step"] == 1 and np.isfinite(results["psnr"]) and results["psnr"] > 0


def test_bad_requests_raise(tmp_path):
  with pytest.raises(config_validation.ConfigError, match="--official must be one of"):
    convert_cli.convert_to_workdir("titok_xl", str(tmp_path / "x.bin"), str(tmp_path / "w"))
  (tmp_path / "used" / "checkpoints").mkdir(parents=True)
  fixture = official_comparison.load_fixture(FIXTURE)
  np.savez(tmp_path / "vqgan.npz", **fixture.state)
  with pytest.raises(FileExistsError, match="convert into a new workdir"):
    convert_cli.convert_to_workdir("maskgit_vqgan", str(tmp_path / "vqgan.npz"), str(tmp_path / "used"),
                                   config=_photos_config())
