"""Fixtures of the training tests."""
import pytest

from jaxtok.cli import load_config_file
from jaxtok.train import run as run_lib
from training_helpers import REPO, small_vqgan_config, titok_config_for  # pylint: disable=g-bad-import-order


@pytest.fixture()
def smoke_config():
  """The conv VQ config (conv_vq_photos.py) shrunk to 6 steps of batch 8, checkpoints every 2 steps; unlocked for edits."""
  return load_config_file(str(REPO / "experiments" / "conv_vq_photos.py") + ":smoke").unlock()


@pytest.fixture(scope="session")
def vqgan_workdir(tmp_path_factory):
  """A workdir holding `small_vqgan_config` trained 2 steps (a MaskGIT-VQGAN for TiTok's two stages)."""
  workdir = tmp_path_factory.mktemp("vqgan")
  run_lib.train(small_vqgan_config(), workdir)
  return workdir


@pytest.fixture(scope="session")
def stage_one_workdir(vqgan_workdir, tmp_path_factory):
  """A workdir holding a stage-1 TiTok (`titok_config_for(vqgan_workdir, "proxy_codes")`) trained 2 steps."""
  workdir = tmp_path_factory.mktemp("stage1")
  run_lib.train(titok_config_for(vqgan_workdir, "proxy_codes").lock(), workdir)
  return workdir
