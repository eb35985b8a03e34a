"""Experiment configs: every one is valid, built from the config helpers only, locked; a misspelled or unknown field
names the valid ones; a config that differs from the workdir's recorded one names the fields."""
import ast
import dataclasses
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxtok import config_validation
from jaxtok import registry
from jaxtok.cli import load_config_file
from jaxtok.configs import models
from jaxtok.train import config_fields
from jaxtok.train import warm_start
from jaxtok.train import workdir_config

REPO = pathlib.Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.py"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_config_is_valid(path):
  config = load_config_file(str(path))
  registry.task_class(config.model_name).check_config(config)


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


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_configs_import_only_the_config_helpers_and_are_locked(path):
  imported = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      imported.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      imported.add(node.module)
  assert imported <= {"ml_collections", "jaxtok.configs"}, imported
  with pytest.raises(AttributeError, match="locked"):
    load_config_file(str(path)).new_field = 1


def test_config_helpers_import_no_model_or_training_code():
  for path in (REPO / "jaxtok" / "configs").glob("*.py"):
    modules = {alias.name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)}
    assert modules <= {"ml_collections", "typing"}, (path.name, modules)


@pytest.mark.parametrize("name", ["titok", "conv_vq_autoencoder", "vqgan", "maskgit", "autoregressive", "image_bert",
                                  "uvit_bert"])
def test_model_helpers_hold_every_field_of_their_module_with_its_default(name):
  required = {"num_classes": 3} if name in ("maskgit", "autoregressive", "image_bert", "uvit_bert") else {}
  fields = getattr(models, name)(**required)
  module_fields = {f.name: f for f in dataclasses.fields(registry.model_class(name))
                   if f.init and f.name not in ("parent", "name", "num_codebooks")}  # from the tokens
  assert set(fields) == set(module_fields)
  from_tokens = {"vocab_size", "sequence_length", "num_codebooks", "num_classes"}  # 0 = from the tokens; required
  for field, value in fields.items():
    if field not in from_tokens:
      default = module_fields[field].default
      assert (tuple(value) if isinstance(value, (list, tuple)) else value) == default, field
  with pytest.raises(ValueError, match="has no field"):
    getattr(models, name)(**required, num_clases=3)


def test_workdir_config_mismatch_is_one_line_naming_the_fields(tmp_path):
  config = _conv_vq_photos()
  workdir_config.record(config, tmp_path)
  assert workdir_config.recorded(tmp_path).to_dict() == config.to_dict()  # tuples come back as tuples
  workdir_config.check_matches(config, tmp_path)
  config.train.log_every_steps = 1  # how the run is observed may change
  config.mesh.ici_sizes = (1, -1, 1)
  workdir_config.check_matches(config, tmp_path)
  config.model.latent_dim = 16
  config.model.quantizer.codebook_size = 99
  with pytest.raises(config_validation.ConfigError) as error:
    workdir_config.check_matches(config, tmp_path)
  message = str(error.value)
  assert "\n" not in message and len(message) < 400
  assert "model.latent_dim = 16 here, 32 there" in message and "model.quantizer.codebook_size = 99 here" in message
  workdir_config.check_matches(config, tmp_path, may_differ=workdir_config.RUN_CONTROL_FIELDS + ("model",))
  assert workdir_config.resolve(None, tmp_path).model.latent_dim == 32
  with pytest.raises(config_validation.ConfigError, match="no recorded config.json"):
    workdir_config.resolve(None, tmp_path / "other")


def test_titok_photos_two_stages_fit_vqgan_photos():
  """The stage-1 codes and the stage-2 pixel decoder are those of the MaskGIT-VQGAN that vqgan_photos.py trains."""
  vqgan_config = load_config_file(str(REPO / "experiments" / "vqgan_photos.py"))
  vqgan = registry.build_model("vqgan", vqgan_config.model)
  for stage in ("stage1", "stage2"):
    titok = load_config_file(str(REPO / "experiments" / "titok_photos.py") + ":" + stage).model
    assert (titok.proxy_codebook_size, titok.patch_size) == (vqgan.codebook_size, vqgan.downsampling_factor)
  for titok_field, vqgan_field in warm_start.MATCHING_FIELDS.items():
    assert tuple(np.atleast_1d(titok[titok_field])) == tuple(np.atleast_1d(vqgan_config.model[vqgan_field]))


def test_differences_name_each_differing_field_in_sorted_order():
  wanted = {"groups": 4, "multipliers": (1, 2), "size": 32, "name": "vqgan"}
  found = {"groups": 2, "multipliers": [1, 2], "size": 64, "name": "vqgan"}
  assert config_validation.differences(wanted, found, prefix="model.") == "model.groups 4 vs 2, model.size 32 vs 64"
  assert config_validation.differences(wanted, dict(wanted)) == ""
