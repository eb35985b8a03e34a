"""The main job: train the model of a config (a tokenizer or a generator, whichever `Task` its registry entry names)
with evaluation, checkpoints and resumption.

`train(config, workdir)` resumes from the latest checkpoint in `workdir` if there is one, so rerunning the same
command after a kill or preemption continues the run; the resumed run is bitwise identical on CPU to one that was
never interrupted (the state holds every random key, and the data iterator position is checkpointed). A finished
run reruns as a no-op that says so and leaves its outputs alone. A config that differs from the one the workdir was
trained with (`<workdir>/config.json`) stops before anything is restored. SIGTERM (a Cloud TPU preemption notice)
makes the loop save a checkpoint at the current step and return. A loss that becomes NaN or infinite stops the run
with NonFiniteLossError before any checkpoint of the bad state is written.
"""
import json
import pathlib
from typing import Any

from absl import logging
import flax.linen as nn
import jax

from jaxtok import config_validation
from jaxtok import registry
from jaxtok import sharding
from jaxtok.train import checkpoint
from jaxtok.train import control
from jaxtok.train import images
from jaxtok.train import metrics_log
from jaxtok.train import optimizer as optimizer_lib
from jaxtok.train import progress as progress_lib
from jaxtok.train import state as state_lib
from jaxtok.train import task as task_lib
from jaxtok.train import workdir_config

NonFiniteLossError = control.NonFiniteLossError  # raised by train; caught by jaxtok.main


def _config_value(config: Any, path: str) -> Any:
  for name in path.split("."):
    config = config[name]
  return config


def _check_divisible(config: Any, batch_fields: tuple[str, ...], batch_shards: int) -> None:
  """The global batches split evenly over hosts and over the mesh's batch axes (data x fsdp)."""
  for path in batch_fields:
    size = _config_value(config, path)
    for ways, what in ((batch_shards, "the mesh's data x fsdp devices"), (jax.process_count(), "the processes")):
      if size % ways:
        raise config_validation.ConfigError(f"Config field {path!r} = {size} must be divisible by {ways}, the "
                                            f"number of {what}.")


class Run:
  """Everything one training run holds: its task, mesh, state, jitted step, checkpoints and logs.

  Construction checks the config, restores the latest checkpoint of `workdir` (if any; after checking the config
  against the recorded one) and records the config of a fresh run.
  """

  def __init__(self, config: Any, workdir: pathlib.Path):
    task_class = registry.task_class(config.model_name)
    task_class.check_config(config)
    self.config, self.workdir = config, workdir
    self.mesh = sharding.make_mesh(config.mesh.ici_sizes, config.mesh.dcn_sizes)
    self.rules = sharding.logical_rules(config.mesh.rules_preset, config.mesh.extra_rules)
    self.is_chief = jax.process_index() == 0
    _check_divisible(config, task_class.batch_fields, self.mesh.shape["data"] * self.mesh.shape["fsdp"])
    self.task: task_lib.Task = task_class(config, workdir, self.mesh)
    if checkpoint.saved_steps(workdir):  # a run to resume: its config must be this one
      workdir_config.check_matches(config, workdir)
    self.num_steps = config.train.num_steps
    self.batch_size = _config_value(config, task_class.batch_fields[0])
    self.train_iterator = self.task.train_batches()
    optimizer = optimizer_lib.make_optimizer(config.optimizer, self.num_steps)
    example = self.task.example_batch(self.mesh.shape["data"] * self.mesh.shape["fsdp"])
    self.state, shardings = state_lib.create_train_state(self.task.model, optimizer, example, config.seed, self.mesh,
                                                         self.rules, discriminator=self.task.discriminator)
    step = self.task.make_train_step(optimizer, optimizer_lib.learning_rate_schedule(config.optimizer, self.num_steps))
    self.train_step = jax.jit(step, in_shardings=(shardings, sharding.batch_sharding(self.mesh)),
                              out_shardings=(shardings, sharding.replicated(self.mesh)), donate_argnums=0)
    self.checkpointer = checkpoint.Checkpointer(workdir / "checkpoints", keep=config.checkpoint.keep)
    latest = self.checkpointer.latest_step()
    self.start_step = latest or 0
    if latest is not None:
      self.state = self.checkpointer.restore(latest, self.state, self.train_iterator)
      logging.info("Resumed from the checkpoint at step %d in %s.", latest, workdir)
    else:
      self.state = self.task.start_state(self.state)
      if self.is_chief:
        workdir_config.record(config, workdir)
    self.log = metrics_log.MetricsLog(workdir, self.start_step, write_files=self.is_chief)

  @property
  def eval_variables(self) -> dict[str, Any]:
    return self.state.eval_variables(use_ema=self.config.train.ema_decay > 0)

  def evaluate(self, step: int) -> dict[str, float]:
    """Evaluates the current state: logs the scalars and grids, keeps the grids as PNGs in the workdir."""
    evaluation = self.task.evaluate(self.eval_variables, step, self.workdir)
    self.log.write("eval", step, evaluation.scalars)
    if self.is_chief:
      images.save_grids(self.workdir, evaluation.grids, step=step)
      self.log.write_images("eval", step, evaluation.grids)
    logging.info("Eval at step %d: %s", step, json.dumps({k: round(v, 4) for k, v in evaluation.scalars.items()}))
    return evaluation.scalars

  def save(self, step: int) -> None:
    self.checkpointer.save(step, self.state, self.train_iterator)

  def close(self) -> None:
    self.checkpointer.wait()
    self.checkpointer.close()
    self.log.close()

  def train(self) -> dict[str, Any]:
    """Trains to the last step (or a SIGTERM) under the mesh, closes the run; returns the summary."""
    bar = progress_lib.Progress(self.start_step, self.num_steps, self.batch_size, self.task.example_name)
    try:
      with control.stop_on_sigterm() as stop, jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules), bar:
        if self.start_step == 0 and self.task.evaluates_untrained:
          self.evaluate(0)
        step, eval_results = self._loop(bar, stop)
    finally:
      self.close()
    return self._write_summary(step, eval_results, bar)

  def _loop(self, bar: progress_lib.Progress, stop: dict[str, bool]) -> tuple[int, dict[str, float]]:
    """Runs steps from start_step; returns (last step, last eval results or {})."""
    every = {"log": self.config.train.log_every_steps, "eval": self.config.eval.every_steps,
             "checkpoint": self.config.checkpoint.every_steps}
    pending, eval_results, step = [], {}, self.start_step
    while step < self.num_steps:
      self.state, metrics = self.train_step(self.state, sharding.global_batch(next(self.train_iterator), self.mesh))
      step += 1
      pending.append((step, metrics))
      bar.queued(step, metrics["loss"])
      stopping = stop["stop"]  # read once: SIGTERM may arrive while this step is being logged
      due = {name: control.is_due(step, n, self.num_steps) for name, n in every.items()}
      due["checkpoint"] = due["checkpoint"] or stopping
      if due["log"] or due["checkpoint"]:
        bar.wait_through(step)
        last = control.check_finite(pending)
        bar.show_loss(last["loss"])
        self.log.write("train", step, last)
      with bar.paused():  # evaluation and checkpoint saves are not training time
        if due["eval"]:
          eval_results = self.evaluate(step)
        if due["checkpoint"]:
          self.save(step)
      if stopping:
        logging.warning("Stopped by SIGTERM after saving the checkpoint at step %d.", step)
        break
    return step, eval_results

  def _write_summary(self, step: int, eval_results: dict[str, float], bar: progress_lib.Progress) -> dict[str, Any]:
    evals, seconds, timed = self.log.history["eval"], bar.train_seconds, bar.timed_steps
    summary = {
        "step": step, "completed": step >= self.num_steps, "resumed_from_step": self.start_step,
        "final_eval": eval_results or (evals[-1] if evals else {}),
        "train_steps_per_second": timed / seconds if seconds else None,
        f"train_{self.task.example_name}_per_second": timed * self.batch_size / seconds if seconds else None,
        **self.task.summary(evals),
        "eval_history": evals,
        "config": self.config.to_dict(),
    }
    if self.is_chief:
      (self.workdir / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
      if self.log.history["train"] and evals:
        self.task.save_curves(self.workdir / "curves.png", self.log.history["train"], evals)
    return summary


def finished_summary(config: Any, workdir: pathlib.Path) -> dict[str, Any] | None:
  """The summary of a run in `workdir` that already reached `config`'s last step (None if it has not): its
  metrics.json as the run wrote it."""
  saved = checkpoint.saved_steps(workdir)
  if not saved or saved[-1] < config.train.num_steps:
    return None
  latest = saved[-1]
  workdir_config.check_matches(config, workdir)
  metrics = workdir / "metrics.json"
  return json.loads(metrics.read_text()) if metrics.exists() else {"step": latest, "completed": True}


def train(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains `config`'s model in `workdir` (resuming if possible); returns the summary also written to metrics.json.

  A run that already finished is left as it is: its metrics.json, logs and TensorBoard files keep the real run's
  figures, and its summary is returned.
  """
  workdir = pathlib.Path(workdir)
  registry.task_class(config.model_name).check_config(config)
  finished = finished_summary(config, workdir)
  if finished is not None:
    logging.info("%s already finished at step %d: nothing to do (its metrics.json, logs and checkpoints are left "
                 "as they are; raise train.num_steps in a new workdir to train longer).", workdir, finished["step"])
    return finished
  workdir.mkdir(parents=True, exist_ok=True)
  return Run(config, workdir).train()
