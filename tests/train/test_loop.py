"""The main job: outputs (the recorded config, TensorBoard scalars and images), resumption after a kill, a config
that does not match the workdir's, rerunning a finished run, NaN stop, SIGTERM save."""
import json
import logging
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from jaxtok import config_validation
from jaxtok.train import run as run_lib
from jaxtok.train import step as step_lib
from jaxtok.train.tasks import tokenizer as tokenizer_task
from training_helpers import (  # pylint: disable=g-bad-import-order
    REPO, assert_trees_equal, kill_then_resume, read_checkpoint, run_main, tensorboard_tags)

SMOKE = "--config=experiments/conv_vq_photos.py:smoke"


def _run_main(workdir, *extra, kill_at_step=None, timeout=300):
  return run_main(SMOKE, workdir, *extra, kill_at_step=kill_at_step, timeout=timeout)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  """One complete smoke run of the main job (6 steps, logging every step), shared by the tests below."""
  workdir = tmp_path_factory.mktemp("uninterrupted")
  result = _run_main(workdir, "--config.train.log_every_steps=1")
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir, result


def test_main_job_leaves_checkpoints_logs_metrics_and_pngs(uninterrupted):
  workdir, result = uninterrupted
  summary = json.loads((workdir / "metrics.json").read_text())
  assert summary["step"] == 6 and summary["completed"]
  final = summary["final_eval"]
  for name in ("psnr", "ssim", "mean_colour_baseline_psnr", "codebook_usage", "perplexity"):
    assert np.isfinite(final[name]), name
  assert 0 < final["codebook_usage"] <= 1 and 1 <= final["perplexity"] <= 16
  assert summary["skipped_images"] == {"train": 0, "eval": 0}
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [4, 6]
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  tags = tensorboard_tags(workdir / "tensorboard")
  assert {"train/loss", "eval/psnr"} <= tags["scalars"] and tags["images"] == {"eval/reconstructions"}
  assert json.loads((workdir / "config.json").read_text()) == summary["config"]  # recorded when training started
  assert (workdir / "images" / "reconstructions_step0000006.png").exists()
  grid = np.asarray(Image.open(workdir / "reconstructions.png"))
  assert grid.ndim == 3 and grid.shape[0] > 2 * 96 and grid.std() > 0
  assert (workdir / "curves.png").stat().st_size > 1000
  history = [json.loads(line) for line in (workdir / "history_train.jsonl").read_text().splitlines()]
  assert [entry["step"] for entry in history] == [1, 2, 3, 4, 5, 6]
  assert "eval PSNR" in result.stdout and "mean-colour baseline" in result.stdout


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run_bitwise(uninterrupted, tmp_path):
  summary = kill_then_resume(_run_main, tmp_path, "--config.train.log_every_steps=1")
  assert summary["resumed_from_step"] in (2, 4) and summary["step"] == 6
  assert_trees_equal(read_checkpoint(tmp_path, 6), read_checkpoint(uninterrupted[0], 6))
  history = [json.loads(line)["step"] for line in (tmp_path / "history_train.jsonl").read_text().splitlines()]
  assert history == [1, 2, 3, 4, 5, 6], "entries the killed run wrote past its checkpoint are replaced"


def test_rerunning_a_finished_run_is_a_no_op_that_says_so(uninterrupted, smoke_config, caplog):
  workdir = uninterrupted[0]
  outputs = [workdir / "metrics.json", workdir / "history_train.jsonl", workdir / "history_eval.jsonl",
             *(workdir / "tensorboard").iterdir()]
  before = {path: path.read_bytes() for path in outputs}
  with caplog.at_level(logging.INFO, logger="absl"):
    summary = run_lib.train(smoke_config, workdir)
  assert f"{workdir} already finished at step 6: nothing to do" in caplog.text
  assert summary == json.loads(before[workdir / "metrics.json"]) and summary["train_images_per_second"] > 0
  assert {path: path.read_bytes() for path in outputs} == before
  assert sorted((workdir / "tensorboard").iterdir()) == sorted(outputs[3:]), "no second event file"


def test_resuming_with_another_config_stops_in_one_line_naming_the_fields(uninterrupted, smoke_config, tmp_path):
  shutil.copytree(uninterrupted[0] / "checkpoints" / "4", tmp_path / "checkpoints" / "4")  # a run stopped at 4
  shutil.copy(uninterrupted[0] / "config.json", tmp_path)
  smoke_config.model.latent_dim = 16
  smoke_config.optimizer.learning_rate = 0.1
  with pytest.raises(config_validation.ConfigError) as error:
    run_lib.train(smoke_config, tmp_path)
  message = str(error.value)
  assert "\n" not in message and "in 2 field(s)" in message
  assert "model.latent_dim = 16 here, 8 there" in message
  assert "optimizer.learning_rate = 0.1 here, 0.002 there" in message


def _poison_from_step(bad_step):
  """A make_train_step whose state turns NaN from `bad_step` on (as a diverging run's would)."""
  original = step_lib.make_train_step

  def make_train_step(*args, **kwargs):
    inner = original(*args, **kwargs)

    def train_step(state, batch):
      state, metrics = inner(state, batch)
      poison = lambda x: jnp.where(state.step >= bad_step, jnp.nan, x)
      return state.replace(params=jax.tree.map(poison, state.params)), {**metrics, "loss": poison(metrics["loss"])}

    return train_step

  return make_train_step


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(smoke_config, tmp_path, monkeypatch):
  monkeypatch.setattr(tokenizer_task.step_lib, "make_train_step", _poison_from_step(5))
  smoke_config.checkpoint.keep = 5
  with pytest.raises(run_lib.NonFiniteLossError, match="became nan at step 5"):
    run_lib.train(smoke_config, tmp_path)
  saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert saved == [2, 4]
  good = read_checkpoint(tmp_path, 4)
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(good["params"]))
  assert not (tmp_path / "metrics.json").exists()


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_stops(tmp_path):
  command = [sys.executable, "-m", "jaxtok.main", SMOKE, f"--workdir={tmp_path}", "--config.train.num_steps=100000",
             "--config.checkpoint.every_steps=50000", "--config.eval.every_steps=50000"]
  process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  history = tmp_path / "history_train.jsonl"
  deadline = time.monotonic() + 240
  while not (history.exists() and history.read_text().count("\n") >= 2) and time.monotonic() < deadline:
    assert process.poll() is None, process.communicate()[1][-3000:]
    time.sleep(0.2)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 0, stderr[-3000:]
  assert "Stopped by SIGTERM" in stderr
  summary = json.loads((tmp_path / "metrics.json").read_text())
  assert not summary["completed"] and 4 <= summary["step"] < 100000
  step_dir = tmp_path / "checkpoints" / str(summary["step"])
  assert (step_dir / "state").is_dir() and (step_dir / "data" / "process_0-of-1.json").exists()
  assert json.loads((step_dir / "data" / "process_0-of-1.json").read_text())["next_index"] > 0


def test_adversarial_loss_trains_a_discriminator_inside_the_state(smoke_config, tmp_path):
  smoke_config.losses.adversarial_weight = 0.1
  smoke_config.losses.adversarial_start_step = 2
  smoke_config.losses.discriminator_channels = 8
  smoke_config.losses.discriminator_layers = 2
  summary = run_lib.train(smoke_config, tmp_path)
  assert summary["completed"]
  history = [json.loads(line) for line in (tmp_path / "history_train.jsonl").read_text().splitlines()]
  assert history[-1]["generator_adversarial_loss"] != 0 and np.isfinite(history[-1]["discriminator/loss"])
  saved = read_checkpoint(tmp_path, 6)
  assert jax.tree.leaves(saved["discriminator_params"]) and jax.tree.leaves(saved["discriminator_opt_state"])
