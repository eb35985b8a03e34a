"""The step loop shared by the training runners (tokenizer: jaxtok.train.loop; generator:
jaxtok.train.generator_loop), with SIGTERM handling, the non-finite-loss stop and the "is this step due" rule.

A run object drives it through this protocol: attributes `config` (with `train.log_every_steps`, `eval.every_steps`,
`checkpoint.every_steps`), `mesh`, `rules`, `state`, `train_step` (jitted `(state, global batch) -> (state,
metrics)`), `train_iterator` (host-local NumPy batches), `start_step`, `num_steps`, `batch_size`, `log`
(metrics_log.MetricsLog), and methods `evaluate(step)`, `save(step)`, `close()`.
"""
import contextlib
import signal
import time
from typing import Any, Iterator

from absl import logging
import flax.linen as nn
import jax
import numpy as np
import tqdm

from jaxtok import sharding


class NonFiniteLossError(RuntimeError):
  """The training loss became NaN or infinite; nothing from that step on was checkpointed."""


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[dict[str, bool]]:
  """Yields a flag dict whose "stop" turns True when SIGTERM arrives; restores the previous handler after."""
  flag = {"stop": False}

  def handler(signum, frame):
    del signum, frame
    logging.warning("SIGTERM received: saving a checkpoint at the end of this step, then stopping.")
    flag["stop"] = True

  previous = signal.signal(signal.SIGTERM, handler)
  try:
    yield flag
  finally:
    signal.signal(signal.SIGTERM, previous)


def check_finite(pending: list[tuple[int, dict[str, jax.Array]]]) -> dict[str, float]:
  """Fetches the metrics of steps run since the last check; raises on the first non-finite loss; returns the last."""
  last = {}
  for step, metrics in pending:
    last = {name: float(np.asarray(value.addressable_data(0))) for name, value in metrics.items()}
    if not np.isfinite(last["loss"]):
      raise NonFiniteLossError(f"The training loss became {last['loss']} at step {step}; stopping before any "
                               "checkpoint of this state is written.")
  pending.clear()
  return last


def is_due(step: int, every: int, last_step: int) -> bool:
  """True every `every` steps and at the last step."""
  return step % every == 0 or step == last_step


def _train(run: Any, progress: tqdm.tqdm, stop: dict[str, bool]) -> tuple[int, dict[str, float], float]:
  """Runs steps from run.start_step; returns (last step, last eval results or {}, seconds spent training)."""
  config, pending, eval_results = run.config, [], {}
  step, started, train_seconds = run.start_step, time.perf_counter(), 0.0
  while step < run.num_steps:
    run.state, metrics = run.train_step(run.state, sharding.global_batch(next(run.train_iterator), run.mesh))
    step += 1
    if step == run.start_step + 1:
      started = time.perf_counter()  # throughput excludes the first step's compilation
    pending.append((step, metrics))
    progress.update(1)
    stopping = stop["stop"]  # read once: SIGTERM may arrive while this step is being logged
    checkpoint_due = is_due(step, config.checkpoint.every_steps, run.num_steps) or stopping
    if is_due(step, config.train.log_every_steps, run.num_steps) or checkpoint_due:
      last = check_finite(pending)
      train_seconds += time.perf_counter() - started
      run.log.write("train", step, last)
      examples_per_second = (step - run.start_step - 1) * run.batch_size / max(train_seconds, 1e-9)
      progress.set_postfix(loss=f"{last['loss']:.4f}", examples_per_s=f"{examples_per_second:.0f}")
      started = time.perf_counter()
    if is_due(step, config.eval.every_steps, run.num_steps):
      eval_results = run.evaluate(step)
    if checkpoint_due:
      run.save(step)
    if is_due(step, config.eval.every_steps, run.num_steps) or checkpoint_due:
      started = time.perf_counter()  # throughput counts training only
    if stopping:
      logging.warning("Stopped by SIGTERM after saving the checkpoint at step %d.", step)
      break
  return step, eval_results, train_seconds


def train_until_done(run: Any) -> tuple[int, dict[str, float], float]:
  """Trains `run` to its last step (or a SIGTERM) under its mesh, then closes it.

  Returns (last step, last eval results or {}, seconds spent training).
  """
  try:
    with stop_on_sigterm() as stop, jax.set_mesh(run.mesh), nn.logical_axis_rules(run.rules):
      with tqdm.tqdm(total=run.num_steps, initial=run.start_step, desc="train", unit="step", dynamic_ncols=True,
                     mininterval=1.0) as progress:
        return _train(run, progress, stop)
  finally:
    run.close()
