"""Experiment configs: every one is valid, and a misspelled or unknown field names the valid ones."""
import pathlib
import subprocess
import sys

import pytest

from jaxtok import config_validation
from jaxtok import registry
from jaxtok.cli import load_config_file
from jaxtok.train import config_fields
from jaxtok.train import generator_config_fields

REPO = pathlib.Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.py"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_config_is_valid(path):
  config = load_config_file(str(path))
  if registry.is_generator(config.model_name):
    generator_config_fields.check_config(config)
  else:
    config_fields.check_config(config)


def _conv_vq_photos():
  return load_config_file(str(REPO / "experiments" / "conv_vq_photos.py")).unlock()


@pytest.mark.parametrize("section, wrong, right", [(None, "trainn", "train"), ("train", "num_stepz", "num_steps"),
                                                   ("optimizer", "learningrate", "learning_rate")])
def test_misspelled_field_names_the_valid_ones(section, wrong, right):
  config = _conv_vq_photos()
  target = config if section is None else config[section]
  target[wrong] = 1
  with pytest.raises(config_validation.ConfigError) as error:
    config_fields.check_config(config)
  message = str(error.value)
  assert repr(wrong) in message or f".{wrong}'" in message
  assert f"Did you mean {right!r}?" in message
  valid = config_fields.RUNNER_FIELDS if section is None else config_fields.RUNNER_FIELDS[section]
  assert all(name in message for name in valid)


def test_missing_field_is_named():
  config = _conv_vq_photos()
  del config.eval["grid_images"]
  with pytest.raises(config_validation.ConfigError, match="lacks the field.*grid_images"):
    config_fields.check_config(config)


def test_unknown_model_and_quantizer_fields_are_rejected():
  config = _conv_vq_photos()
  config.model.chanels = (8,)
  with pytest.raises(config_validation.ConfigError, match=r"model\.chanels.*Did you mean 'channels'"):
    config_fields.check_config(config)
  config = _conv_vq_photos()
  config.model.quantizer.codebok_size = 8
  with pytest.raises(config_validation.ConfigError, match=r"quantizer\.codebok_size.*codebook_size"):
    config_fields.check_config(config)


@pytest.mark.parametrize("path, value, match", [
    ("data.source", "imagenet", "must be one of"), ("train.reconstruction_loss", "l3", "must be one of"),
    ("train.num_steps", 0, "positive"), ("train.ema_decay", 1.0, r"\[0, 1\)"), ("model_name", "titok9", "registered")])
def test_bad_values_are_rejected(path, value, match):
  config = _conv_vq_photos()
  *parents, leaf = path.split(".")
  node = config
  for parent in parents:
    node = node[parent]
  node[leaf] = value
  with pytest.raises(config_validation.ConfigError, match=match):
    config_fields.check_config(config)


def test_command_line_override_of_unknown_field_exits_with_valid_names(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "jaxtok.main", "--config=experiments/conv_vq_photos.py", f"--workdir={tmp_path}",
       "--config.train.num_stepz=3"], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert "Unknown config field 'train.num_stepz'" in result.stderr
  assert "Did you mean 'num_steps'?" in result.stderr
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "checkpoints").exists()
