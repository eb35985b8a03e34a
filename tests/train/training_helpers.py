"""Helpers of the training tests: the main job in a subprocess, checkpoint and TensorBoard readers, tree
comparison."""
import json
import pathlib
import signal
import struct
import subprocess
import sys
from typing import Callable

import jax
import numpy as np
import orbax.checkpoint as ocp
from tensorboardX.proto import event_pb2

from jaxtok.cli import load_config_file

REPO = pathlib.Path(__file__).resolve().parents[2]


def run_main(config_argument: str, workdir: pathlib.Path, *extra: str, kill_at_step: int | None = None,
             timeout: int = 300) -> subprocess.CompletedProcess:
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
  return subprocess.run([sys.executable, "-c", code, config_argument, f"--workdir={workdir}", *extra], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout)


def kill_then_resume(run: Callable[..., subprocess.CompletedProcess], workdir: pathlib.Path, *extra: str) -> dict:
  """Runs `run(workdir, *extra)` (a `run_main` partial) killed right after training step 5 is logged, then again to
  the end; checks that the second run resumed, and returns its metrics.json."""
  killed = run(workdir, *extra, kill_at_step=5)
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
  assert not (workdir / "checkpoints" / "6").exists()
  resumed = run(workdir, *extra)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "Resumed from the checkpoint at step" in resumed.stderr
  return json.loads((workdir / "metrics.json").read_text())


def read_checkpoint(workdir: pathlib.Path, step: int) -> dict:
  """The saved TrainState of `step` as nested dicts of NumPy arrays."""
  return ocp.StandardCheckpointer().restore((workdir / "checkpoints" / str(step) / "state").absolute())


def assert_trees_equal(a, b) -> None:
  """Same structure and bitwise-identical leaves."""
  leaves_a, tree_a = jax.tree.flatten(a)
  leaves_b, tree_b = jax.tree.flatten(b)
  assert tree_a == tree_b
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def tensorboard_tags(directory: pathlib.Path) -> dict[str, set[str]]:
  """The tags of every TensorBoard event file in `directory`, by kind: {"scalars": {...}, "images": {...}}.

  Reads the TFRecord framing (length, its CRC, the Event proto, its CRC) with tensorboardX's protobufs, so it needs
  no TensorBoard install.
  """
  tags = {"scalars": set(), "images": set()}
  for path in directory.glob("events.out.tfevents.*"):
    data, offset = path.read_bytes(), 0
    while offset < len(data):
      (length,) = struct.unpack("<Q", data[offset:offset + 8])
      event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
      offset += 12 + length + 4
      for value in event.summary.value:
        kind = {"simple_value": "scalars", "image": "images"}.get(value.WhichOneof("value"))
        if kind:
          tags[kind].add(value.tag)
  return tags


def small_vqgan_config():
  """The vqgan_photos smoke config with a factor-4 decoder (3 levels of 8, 16, 16 channels, FSQ (8, 4) = 32 codes),
  2 steps of batch 8; unlocked."""
  config = load_config_file(str(REPO / "experiments" / "vqgan_photos.py") + ":smoke").unlock()
  config.model.channel_multipliers = (1, 2, 2)
  config.data.batch_size = 8
  config.train.num_steps = config.checkpoint.every_steps = 2
  return config


def titok_config_for(vqgan_workdir, decoder_output: str = "proxy_codes_to_pixels"):
  """The titok_photos smoke config (2 steps of batch 8, 4x4 patches) tied to the `small_vqgan_config` run in
  `vqgan_workdir`: its pixel decoder started there ("proxy_codes_to_pixels") or learning its codes ("proxy_codes",
  stage 1, fixed length); unlocked."""
  config = load_config_file(str(REPO / "experiments" / "titok_photos.py") + ":smoke").unlock()
  config.model.update(dict(patch_size=4, decoder_output=decoder_output, proxy_codebook_size=32, pixel_code_dim=2,
                           pixel_decoder_channels=8, pixel_decoder_multipliers=(1, 2, 2), pixel_decoder_res_blocks=1,
                           pixel_decoder_norm_groups=4))
  if decoder_output == "proxy_codes":
    config.model.token_dropout = "none"
    config.train.proxy_codes_from = str(vqgan_workdir)
  else:
    config.train.pixel_decoder_from = str(vqgan_workdir)
  config.data.batch_size = 8
  config.train.num_steps = config.checkpoint.every_steps = 2
  return config
