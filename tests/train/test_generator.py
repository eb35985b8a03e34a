"""The generator job: token extraction with a trained tokenizer, the main job's outputs, resumption after a kill,
config checks, `jaxtok.sample` (output folders named by the call, unseen classes refused), and learning on
structured tokens."""
import json
import logging
import pathlib
import shutil

import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from jaxtok import config_validation
from jaxtok import registry
from jaxtok import sample
from jaxtok.cli import load_config_file
from jaxtok.data import photos
from jaxtok.data import tokens as tokens_lib
from jaxtok.decoders import masked_sampling
from jaxtok.train import frozen_tokenizer
from jaxtok.train import run as run_lib
from jaxtok.train.tasks import generator as generator_task
from training_helpers import (  # pylint: disable=g-bad-import-order
    REPO, assert_trees_equal, kill_then_resume, read_checkpoint, run_main, tensorboard_tags)

GENERATOR_SMOKE = "--config=experiments/maskgit_photos.py:smoke"


def _generator_config(tokenizer_workdir=""):
  config = load_config_file(str(REPO / "experiments" / "maskgit_photos.py") + ":smoke").unlock()
  config.tokenizer.workdir = str(tokenizer_workdir)
  return config


@pytest.fixture(scope="module")
def tokenizer_workdir(tmp_path_factory):
  """The conv VQ tokenizer (conv_vq_photos.py) trained for 6 smoke steps (8x8 tokens, 16 codes)."""
  workdir = tmp_path_factory.mktemp("tokenizer")
  run_lib.train(load_config_file(str(REPO / "experiments" / "conv_vq_photos.py") + ":smoke"), workdir)
  return workdir


def _run_main(workdir, *extra, kill_at_step=None, timeout=300):
  return run_main(GENERATOR_SMOKE, workdir, "--config.train.log_every_steps=1", *extra,
                  kill_at_step=kill_at_step, timeout=timeout)


@pytest.fixture(scope="module")
def uninterrupted(tokenizer_workdir, tmp_path_factory):
  """One complete smoke run of the generator main job, shared by the tests below."""
  workdir = tmp_path_factory.mktemp("generator")
  result = _run_main(workdir, f"--config.tokenizer.workdir={tokenizer_workdir}")
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir, result


def test_extracted_tokens_are_the_tokenizer_codes_of_the_training_crops(tokenizer_workdir, tmp_path, caplog):
  tokenizer_config = load_config_file(str(REPO / "experiments" / "conv_vq_photos.py") + ":smoke")
  with caplog.at_level(logging.INFO, logger="absl"):
    tokenizer = frozen_tokenizer.restore(tokenizer_config, tokenizer_workdir)
  assert f"Loaded the checkpoint at step 6 of {tokenizer_workdir} (EMA weights) for encoding" in caplog.text
  assert "Resumed" not in caplog.text
  train = frozen_tokenizer.extract_tokens(tokenizer, "train", 20, 0, tmp_path / "train.npz", batch_size=8)
  held_out = frozen_tokenizer.extract_tokens(tokenizer, "eval", 20, 1, tmp_path / "eval.npz", batch_size=8)
  loaded = tokens_lib.load_tokens(tmp_path / "train.npz")
  np.testing.assert_array_equal(loaded.tokens, train.tokens)
  assert loaded.tokens.shape == (20, 64) and loaded.tokens.dtype == np.int32
  assert (loaded.codebook_size, loaded.grid_shape, loaded.tokenizer_step) == (16, (8, 8), 6)
  assert loaded.tokenizer_workdir == str(tokenizer_workdir)
  assert loaded.class_names == tuple(photo.name for photo in photos.PHOTOS)
  train_photos = {label for label, _ in photos.photos_in_split("train")}
  assert set(loaded.labels.tolist()) <= train_photos and set(held_out.labels.tolist()) <= train_photos
  assert not np.array_equal(held_out.tokens, train.tokens)
  crops = next(tokens_lib.crop_stream(tokenizer_config.data, "train", 0, 8))
  grids = tokenizer.encode(crops["image"]).reshape(8, 8, 8)  # raster order: row-major over the 8x8 grid
  np.testing.assert_array_equal(loaded.tokens[:8].reshape(8, 8, 8), grids)
  np.testing.assert_array_equal(loaded.labels[:8], crops["label"])


def test_main_job_leaves_tokens_checkpoints_metrics_and_sample_grids(uninterrupted):
  workdir, result = uninterrupted
  summary = json.loads((workdir / "metrics.json").read_text())
  assert summary["step"] == 6 and summary["completed"]
  assert summary["model"] == {"vocab_size": 16, "sequence_length": 64, "num_classes": 12}
  for name in ("loss", "accuracy", "token_tv", "token_tv_uniform", "token_tv_train_data", "class_accuracy",
               "class_accuracy_held_out"):
    assert np.isfinite(summary["final_eval"][name]) and np.isfinite(summary["untrained_eval"][name]), name
  assert summary["untrained_eval"]["step"] == 0
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [4, 6]
  assert tokens_lib.load_tokens(workdir / "tokens" / "train.npz").tokens.shape == (64, 64)
  assert tokens_lib.load_tokens(workdir / "tokens" / "eval.npz").tokens.shape == (16, 64)
  held_out_classes = len(np.unique(tokens_lib.load_tokens(workdir / "tokens" / "eval.npz").labels))
  grid = np.asarray(Image.open(workdir / "samples.png"))
  assert grid.shape[0] > held_out_classes * 96 and grid.std() > 0  # one row per class, 2 samples each
  assert (workdir / "images" / "samples_step0000000.png").exists()
  assert (workdir / "images" / "samples_step0000006.png").exists()
  assert (workdir / "curves.png").stat().st_size > 1000
  assert tensorboard_tags(workdir / "tensorboard")["images"] == {"eval/samples"}
  assert "held-out masked-token loss" in result.stdout and "untrained" in result.stdout


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run_bitwise(uninterrupted, tmp_path):
  shutil.copytree(uninterrupted[0] / "tokens", tmp_path / "tokens")  # no tokenizer needed: nothing decoded
  summary = kill_then_resume(_run_main, tmp_path, "--config.tokenizer.workdir=")
  assert summary["resumed_from_step"] in (2, 4) and summary["step"] == 6  # the async save of 4 may not finish
  assert_trees_equal(read_checkpoint(tmp_path, 6), read_checkpoint(uninterrupted[0], 6))
  history = [json.loads(line)["step"] for line in (tmp_path / "history_train.jsonl").read_text().splitlines()]
  assert history == [1, 2, 3, 4, 5, 6]


def test_sample_grid_rows_start_with_held_out_sequences_of_their_class(uninterrupted, tokenizer_workdir):
  task = generator_task.MaskGIT(_generator_config(tokenizer_workdir).lock(), uninterrupted[0], None)
  classes = task.held_out_classes[:2]
  references = task.held_out_references(classes)
  held_out = task.eval_tokens
  assert references.shape == (2, generator_task.REFERENCE_SEQUENCES, 64)
  for label, rows in zip(classes, references):
    mine = held_out.tokens[held_out.labels == label]
    np.testing.assert_array_equal(rows, mine[np.minimum(np.arange(len(rows)), len(mine) - 1)])
  with pytest.raises(config_validation.ConfigError, match="no sequence of class (11 |class 11)"):
    task.held_out_references(np.array([11]))


def test_sample_entry_point_writes_grids_trajectory_and_tokens(uninterrupted):
  workdir = uninterrupted[0]
  config = _generator_config()
  config.tokenizer.workdir = json.loads((workdir / "metrics.json").read_text())["config"]["tokenizer"]["workdir"]
  summary = sample.sample_checkpoint(config, workdir, samples_per_class=3, classes=[0, 2])
  output = workdir / "samples_step0000006_classes0-2_n3"  # named by what differs from the defaults
  assert summary["output_dir"] == str(output) and summary["classes"] == [0, 2]
  saved = np.load(output / "samples.npz")
  assert saved["tokens"].shape == (6, 64) and saved["trajectory"].shape == (4, 6, 64)
  np.testing.assert_array_equal(saved["labels"], [0, 0, 0, 2, 2, 2])
  assert (saved["trajectory"][-1] == saved["tokens"]).all() and (saved["trajectory"][0] == 16).any()
  filled = saved["filled_trajectory"]
  assert filled.shape == (4, 2, 64) and filled.max() < 16
  visible = saved["trajectory"][:, [0, 3]] != 16
  np.testing.assert_array_equal(filled[visible], saved["trajectory"][:, [0, 3]][visible])
  samples = np.asarray(Image.open(output / "samples.png"))
  trajectory = np.asarray(Image.open(output / "trajectory.png"))
  assert samples.shape[0] == trajectory.shape[0] > 2 * 96  # two class rows
  cell = 32 * 3 + 2  # a 32x32 image enlarged 3x, and the padding
  assert samples.shape[1] - trajectory.shape[1] == 3 * cell  # 3 held-out crops, a blank and 3 samples vs 4 steps
  assert json.loads((output / "call.json").read_text())["classes"] == [0, 2]

  # Another call (the recorded config, another seed) writes elsewhere; classes never trained on are refused.
  other = sample.sample_checkpoint(None, workdir, seed=1)
  assert other["output_dir"] == str(workdir / "samples_step0000006_seed1")
  assert np.load(output / "samples.npz")["tokens"].shape == (6, 64), "the first call's samples are kept"
  with pytest.raises(config_validation.ConfigError, match=r"--classes \[11\] never appear in the generator's "
                     r"training tokens.*trained on: 0 astronaut, 1 rocket"):
    sample.sample_checkpoint(None, workdir, classes=[0, 11])


def _write_structured_tokens(workdir, num_train=1024, num_eval=256, length=8, vocab=8, classes=3, noise=0.1):
  """Tokens whose position p of class c is (3c + p) mod vocab, replaced by a uniform id with probability `noise`."""
  rng = np.random.default_rng(0)
  for split, count in (("train", num_train), ("eval", num_eval)):
    labels = rng.integers(0, classes, count).astype(np.int32)
    tokens = (3 * labels[:, None] + np.arange(length)) % vocab
    tokens = np.where(rng.random(tokens.shape) < noise, rng.integers(0, vocab, tokens.shape), tokens)
    tokens_lib.save_tokens(workdir / "tokens" / f"{split}.npz", tokens_lib.TokenSet(
        tokens.astype(np.int32), labels, vocab, (length,), "", -1), split=split)


def _structured_config(num_steps):
  config = _generator_config()
  config.model.num_classes = 3
  config.model.width, config.model.mlp_dim, config.model.num_heads = 32, 64, 2
  config.tokens.num_train_images, config.tokens.num_eval_images = 1024, 256
  config.train.num_steps, config.train.batch_size, config.train.log_every_steps = num_steps, 32, 50
  config.train.label_smoothing, config.train.class_dropout = 0.0, 0.0
  config.optimizer.learning_rate, config.optimizer.warmup_steps = 3e-3, 20
  config.train.ema_decay = 0.9
  config.eval.every_steps = config.checkpoint.every_steps = num_steps
  config.eval.batch_size, config.eval.samples_per_class = 128, 32
  return config


def test_config_sizes_must_match_the_tokens(tmp_path):
  _write_structured_tokens(tmp_path)
  config = _structured_config(10)
  config.model.vocab_size = 99
  with pytest.raises(config_validation.ConfigError, match=r"'model.vocab_size' = 99 does not match the tokens' "
                     r"vocab_size = 8"):
    run_lib.Run(config, tmp_path)
  config.model.vocab_size, config.model.num_classes = 0, 2
  with pytest.raises(config_validation.ConfigError, match="'model.num_classes' = 2 must exceed the largest class "
                     "label of the tokens, 2"):
    run_lib.Run(config, tmp_path)
  config.model.num_classes, config.tokens.num_train_images = 3, 512
  with pytest.raises(config_validation.ConfigError, match="holds 1024 sequences but 'tokens.num_train_images' = 512"):
    run_lib.Run(config, tmp_path)


def test_config_rejects_unknown_and_tokenizer_fields():
  config = _structured_config(10)
  config.train.mask_shedule = "cosine"
  with pytest.raises(config_validation.ConfigError, match="Did you mean 'mask_schedule'"):
    run_lib.Run(config, None)
  config = _structured_config(10)
  config.sampling.schedule = "zigzag"
  with pytest.raises(config_validation.ConfigError, match="'sampling.schedule' must be one of"):
    run_lib.Run(config, None)


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["maskgit", "autoregressive"])
def test_training_lowers_held_out_loss_and_brings_samples_to_the_data(tmp_path, model_name):
  _write_structured_tokens(tmp_path)
  config = _structured_config(300)
  config.model_name = model_name
  summary = run_lib.train(config, tmp_path)
  untrained, final = summary["untrained_eval"], summary["final_eval"]
  assert final["loss"] < 0.5 * untrained["loss"], (untrained, final)
  assert final["accuracy"] > 0.8
  assert final["token_tv"] < 0.5 * untrained["token_tv"], (untrained, final)
  assert final["token_tv"] < 0.5 * final["token_tv_uniform"]
  assert final["token_tv"] < final["token_tv_train_data"] + 0.1  # near the finite-sample floor
  assert final["class_accuracy_held_out"] > 0.95  # the three classes' sequences differ at every position
  assert final["class_accuracy"] > 0.9 and untrained["class_accuracy"] < 0.7, (untrained, final)
  if model_name == "autoregressive":  # the sample entry point without a trajectory (tokens appear left to right)
    sampled = sample.sample_checkpoint(config, tmp_path, samples_per_class=4, classes=[1])
    saved = np.load(pathlib.Path(sampled["output_dir"]) / "samples.npz")
    assert saved["tokens"].shape == (4, 8) and "trajectory" not in saved
    assert sampled["class_accuracy"] == 1.0
    pattern = (3 * 1 + np.arange(8)) % 8  # class 1's sequence in _write_structured_tokens (10% noise)
    assert np.mean(saved["tokens"] == pattern) > 0.7


class OneStepMaskGIT(generator_task.GeneratorTask):
  """A third generator, added as the README's "How to add a model" says: a MaskedTokenTransformer trained on a
  linear masking schedule without smoothing, sampled in one step (every position's argmax from all-masked input)."""

  def loss_options(self, training):
    del training
    return {"schedule": "linear", "label_smoothing": 0.0, "class_dropout": 0.0}

  def sampler(self, variables, key, class_labels, return_trajectory):
    del key, return_trajectory
    masked = jnp.full((len(class_labels), self.model.sequence_length), self.model.mask_id, jnp.int32)
    tokens = jnp.argmax(self.model.apply(variables, masked, class_labels), -1).astype(jnp.int32)
    return masked_sampling.SamplerOutput(tokens=tokens, trajectory=None)


@pytest.mark.slow
def test_a_new_generator_is_a_task_class_and_a_registry_line(tmp_path, monkeypatch):
  monkeypatch.setitem(registry.MODELS, "one_step_maskgit", registry.Registered(
      "jaxtok.decoders.maskgit:MaskedTokenTransformer", f"{__name__}:OneStepMaskGIT"))
  _write_structured_tokens(tmp_path)
  config = _structured_config(40)
  config.model_name = "one_step_maskgit"
  summary = run_lib.train(config, tmp_path)
  assert summary["completed"] and summary["final_eval"]["loss"] < summary["untrained_eval"]["loss"]
  sampled = sample.sample_checkpoint(None, tmp_path, samples_per_class=2, classes=[1])  # the recorded config
  tokens = np.load(pathlib.Path(sampled["output_dir"]) / "samples.npz")["tokens"]
  assert tokens.shape == (2, 8)
  np.testing.assert_array_equal(tokens[0], tokens[1])  # one argmax step: no randomness
