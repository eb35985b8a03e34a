"""The main job: outputs, resumption after a kill, NaN stop, SIGTERM save."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from jaxtok.train import loop
from jaxtok.train import step as step_lib
from training_helpers import REPO, assert_trees_equal, read_checkpoint  # pylint: disable=g-bad-import-order

SMOKE = "--config=experiments/conv_vq_photos.py:smoke"


def _run_main(workdir, *extra, kill_at_step=None, timeout=300):
  """Runs the main job in a subprocess; `kill_at_step` SIGKILLs it right after that training step is logged."""
  code = ("import os, signal\n"
          "from jaxtok.train import metrics_log\n"
          "write = metrics_log.MetricsLog.write\n"
          "def killing_write(self, kind, step, scalars):\n"
          "  write(self, kind, step, scalars)\n"
          f"  if kind == 'train' and step == {kill_at_step}:\n"
          "    os.kill(os.getpid(), signal.SIGKILL)\n"
          "metrics_log.MetricsLog.write = killing_write\n"
          "from jaxtok import main\n"
          "main.run()\n")
  return subprocess.run([sys.executable, "-c", code, SMOKE, f"--workdir={workdir}", *extra], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout)


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
  grid = np.asarray(Image.open(workdir / "reconstructions.png"))
  assert grid.ndim == 3 and grid.shape[0] > 2 * 96 and grid.std() > 0
  assert (workdir / "curves.png").stat().st_size > 1000
  history = [json.loads(line) for line in (workdir / "history_train.jsonl").read_text().splitlines()]
  assert [entry["step"] for entry in history] == [1, 2, 3, 4, 5, 6]
  assert "eval PSNR" in result.stdout and "mean-colour baseline" in result.stdout


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run_bitwise(uninterrupted, tmp_path):
  killed = _run_main(tmp_path, "--config.train.log_every_steps=1", kill_at_step=5)
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
  assert not (tmp_path / "checkpoints" / "6").exists()
  resumed = _run_main(tmp_path, "--config.train.log_every_steps=1")
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "Resumed from the checkpoint at step" in resumed.stderr
  summary = json.loads((tmp_path / "metrics.json").read_text())
  assert summary["resumed_from_step"] in (2, 4) and summary["step"] == 6
  assert_trees_equal(read_checkpoint(tmp_path, 6), read_checkpoint(uninterrupted[0], 6))
  history = [json.loads(line)["step"] for line in (tmp_path / "history_train.jsonl").read_text().splitlines()]
  assert history == [1, 2, 3, 4, 5, 6], "entries the killed run wrote past its checkpoint are replaced"


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
  monkeypatch.setattr(loop.step_lib, "make_train_step", _poison_from_step(5))
  smoke_config.checkpoint.keep = 5
  with pytest.raises(loop.NonFiniteLossError, match="became nan at step 5"):
    loop.train_and_evaluate(smoke_config, tmp_path)
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
  summary = loop.train_and_evaluate(smoke_config, tmp_path)
  assert summary["completed"]
  history = [json.loads(line) for line in (tmp_path / "history_train.jsonl").read_text().splitlines()]
  assert history[-1]["generator_adversarial_loss"] != 0 and np.isfinite(history[-1]["discriminator/loss"])
  saved = read_checkpoint(tmp_path, 6)
  assert jax.tree.leaves(saved["discriminator_params"]) and jax.tree.leaves(saved["discriminator_opt_state"])
