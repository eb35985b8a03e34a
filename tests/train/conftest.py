"""Fixtures of the training tests."""
import pytest

from jaxtok.cli import load_config_file
from training_helpers import REPO  # pylint: disable=g-bad-import-order


@pytest.fixture()
def smoke_config():
  """The conv VQ config (conv_vq_photos.py) shrunk to 6 steps of batch 8, checkpoints every 2 steps; unlocked for edits."""
  return load_config_file(str(REPO / "experiments" / "conv_vq_photos.py") + ":smoke").unlock()
