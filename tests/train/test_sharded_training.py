"""Sharded training on 8 simulated CPU devices: steps equal the single-device step, parameters are laid out as the
rules say, checkpoints restore across meshes, and two processes train data-parallel to identical parameters."""
import functools
import json
import os
import socket
import subprocess
import sys

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import PartitionSpec
import pytest

from jaxtok import registry
from jaxtok import sharding
from jaxtok.cli import load_config_file
from jaxtok.train import checkpoint
from jaxtok.train import optimizer as optimizer_lib
from jaxtok.train import state as state_lib
from jaxtok.train import step as step_lib
from training_helpers import REPO  # pylint: disable=g-bad-import-order

BATCH = 8


@functools.cache  # the tests below share their (config, mesh) steps: each costs a compile
def _one_step(config_argument, ici_sizes, preset):
  """Initialises experiments/`config_argument`'s model on a mesh and runs one train step on a fixed batch; returns
  (state, shardings, metrics)."""
  config = load_config_file(str(REPO / "experiments" / config_argument))
  mesh = sharding.make_mesh(ici_sizes, devices=jax.devices()[:int(np.prod(ici_sizes))])
  rules = sharding.logical_rules(preset)
  model = registry.build_model(config.model_name, config.model)
  optimizer = optimizer_lib.make_optimizer(config.optimizer, config.train.num_steps)
  size = config.data.image_size
  images = np.random.default_rng(0).uniform(-1, 1, (BATCH, size, size, 3)).astype(np.float32)
  state, shardings = state_lib.create_train_state(model, optimizer, images[:BATCH], 0, mesh, rules)
  step = step_lib.make_train_step(model, optimizer, loss_kind="l2", ema_decay=0.9,
                                  learning_rate_fn=optimizer_lib.learning_rate_schedule(config.optimizer, 10))
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    train_step = jax.jit(step, in_shardings=(shardings, sharding.batch_sharding(mesh)),
                         out_shardings=(shardings, sharding.replicated(mesh)))
    state, metrics = train_step(state, sharding.global_batch({"image": images}, mesh))
  return state, shardings, metrics


CONV_VQ_SMOKE = "conv_vq_photos.py:smoke"


@pytest.mark.parametrize("ici_sizes, preset", [((8, 1, 1), "data_parallel"), ((2, 4, 1), "fsdp"),
                                               ((2, 2, 2), "fsdp_tensor")])
def test_sharded_step_equals_single_device_step(ici_sizes, preset):
  want, _, want_metrics = _one_step(CONV_VQ_SMOKE, (1, 1, 1), "data_parallel")
  got, shardings, metrics = _one_step(CONV_VQ_SMOKE, ici_sizes, preset)
  np.testing.assert_allclose(metrics["loss"], want_metrics["loss"], rtol=1e-5)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=2e-4, atol=2e-6)
  # Parameters really are laid out as the rules say.
  kernel = got.params["encoder"]["Conv_0"]["kernel"]  # [3, 3, 3, 8]: conv_out = 8
  conv_out_axes = {"data_parallel": None, "fsdp": "fsdp", "fsdp_tensor": "fsdp"}[preset]
  assert kernel.sharding.spec == PartitionSpec(None, None, None, conv_out_axes)
  assert shardings.params["encoder"]["Conv_0"]["kernel"] == kernel.sharding
  if preset == "fsdp_tensor":  # conv_in -> tensor where it divides: a 16 -> 16 conv of the second level
    block = got.params["encoder"]["ResidualBlock_1"]["Conv_1"]["kernel"]
    assert block.sharding.spec == PartitionSpec(None, None, "tensor", "fsdp")
  assert got.opt_state[1][0].mu["encoder"]["Conv_0"]["kernel"].sharding.spec == kernel.sharding.spec


def test_titok_step_on_an_fsdp_tensor_mesh_equals_single_device_step():
  want, _, want_metrics = _one_step("titok_photos.py:smoke", (1, 1, 1), "data_parallel")
  got, _, metrics = _one_step("titok_photos.py:smoke", (2, 2, 2), "fsdp_tensor")
  np.testing.assert_allclose(metrics["loss"], want_metrics["loss"], rtol=1e-5)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=2e-4, atol=2e-6)
  specs = {jax.tree_util.keystr(path): leaf.sharding.spec
           for path, leaf in jax.tree_util.tree_leaves_with_path(got.params)}
  mlp_in = [spec for path, spec in specs.items() if "'mlp'" in path and "'hidden'" in path and "kernel" in path]
  attention_q = [spec for path, spec in specs.items() if "'query'" in path and "kernel" in path]
  assert mlp_in and all(spec == PartitionSpec("fsdp", "tensor") for spec in mlp_in)
  assert attention_q and all(spec == PartitionSpec("fsdp", "tensor", None) for spec in attention_q)


def test_checkpoint_restores_across_meshes(tmp_path):
  saved, _, _ = _one_step(CONV_VQ_SMOKE, (2, 4, 1), "fsdp")
  from jaxtok import data  # pylint: disable=g-import-not-at-top
  iterator = iter(data.train_dataset(data.make_source("photos", "", "train"), data.CropOptions(32, 0.2, 0.5, True),
                                     batch_size=2, seed=0))
  saver = checkpoint.Checkpointer(tmp_path, keep=1)
  saver.save(1, saved, iterator)
  saver.wait()
  for ici_sizes, preset in (((1, 1, 1), "data_parallel"), ((4, 2, 1), "fsdp_tensor")):
    like, shardings, _ = _one_step(CONV_VQ_SMOKE, ici_sizes, preset)
    restored = checkpoint.Checkpointer(tmp_path, keep=1).restore(1, like, iterator)
    for r, s, l in zip(jax.tree.leaves(restored), jax.tree.leaves(saved), jax.tree.leaves(like)):
      np.testing.assert_array_equal(np.asarray(r), np.asarray(s))
      assert r.sharding.is_equivalent_to(l.sharding, r.ndim)
  saver.close()


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_data_parallel_to_identical_parameters(tmp_path, compile_fast_flag):
  """Two localhost processes of 2 CPU devices each (gloo collectives) run 3 data-parallel steps of the main job."""
  script = ("import numpy as np, jax\n"
            "from jax.experimental import multihost_utils\n"
            "from jaxtok import main\n"
            "from jaxtok.train import run as run_lib\n"
            "write_summary = run_lib.Run._write_summary\n"
            "def dump_params_then_write_summary(run, *args, **kwargs):\n"
            "  leaves = multihost_utils.process_allgather(jax.tree.leaves(run.state.params), tiled=True)\n"
            "  np.savez(f'{run.workdir}/params_{jax.process_index()}.npz', *[np.asarray(x) for x in leaves])\n"
            "  return write_summary(run, *args, **kwargs)\n"
            "run_lib.Run._write_summary = dump_params_then_write_summary\n"
            "main.run()\n")
  port = _free_port()
  common = ["--config=experiments/conv_vq_photos.py:smoke", f"--workdir={tmp_path}", f"--coordinator_address=localhost:{port}",
            "--num_processes=2", "--config.train.num_steps=3", "--config.checkpoint.every_steps=3",
            "--config.eval.every_steps=3"]
  env = {"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"--xla_force_host_platform_device_count=2 {compile_fast_flag}",
         "JAX_COMPILATION_CACHE_DIR": os.environ["JAX_COMPILATION_CACHE_DIR"]}
  processes = [subprocess.Popen([sys.executable, "-c", script, *common, f"--process_id={i}"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
  try:
    outputs = [p.communicate(timeout=400) for p in processes]
  finally:
    for p in processes:
      p.kill()
  for p, (_, stderr) in zip(processes, outputs):
    assert p.returncode == 0, stderr[-4000:]
  first, second = (np.load(tmp_path / f"params_{i}.npz") for i in range(2))
  assert len(first.files) > 10
  for name in first.files:
    np.testing.assert_array_equal(first[name], second[name])
    assert np.all(np.isfinite(first[name]))
  summary = json.loads((tmp_path / "metrics.json").read_text())
  assert summary["step"] == 3 and (tmp_path / "checkpoints" / "3").is_dir()
  assert {p.name for p in (tmp_path / "checkpoints" / "3" / "data").iterdir()} >= {"process_0-of-2.json",
                                                                                 "process_1-of-2.json"}
