"""Weights of a trained workdir, restored for inference: what `jaxtok.evaluate`, `jaxtok.sample` and the token
extraction of generator training (`jaxtok.train.frozen_tokenizer`) use.

Only the evaluation weights (EMA when the config has an EMA) and the model's other collections are read from the
checkpoint; no optimizer, data pipeline or train step is built.
"""
import dataclasses
import pathlib
from typing import Any, Iterable

from absl import logging
import flax
import flax.linen as nn
import jax

from jaxtok import registry
from jaxtok import sharding
from jaxtok.train import checkpoint
from jaxtok.train import workdir_config


@dataclasses.dataclass
class Restored:
  """A checkpoint ready to apply.

  Attributes:
    config: the workdir's experiment config (the one given, checked against the recorded one, or the recorded one).
    task: the model's training task (jaxtok.train.tasks), for its evaluation and, for generators, its sampler.
    model: the linen module.
    variables: `{"params": evaluation weights, **other collections}` laid out on `mesh`.
    step: the checkpoint step restored.
    mesh, rules: the mesh and logical-axis rules of the config; apply the model under them.
  """
  config: Any
  task: Any
  model: nn.Module
  variables: dict[str, Any]
  step: int
  mesh: jax.sharding.Mesh
  rules: tuple[tuple[str, Any], ...]


def abstract_variables(model: nn.Module, example_inputs: tuple[Any, ...], mesh: jax.sharding.Mesh,
                       rules: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
  """The shapes, dtypes and shardings of `model.init(..., *example_inputs)`'s variables, computed without any."""
  keys = {name: jax.random.PRNGKey(0) for name in ("params", "quantizer", "dropout")}
  boxed = jax.eval_shape(lambda: flax.core.unfreeze(model.init(keys, *example_inputs, train=False)))
  shardings = sharding.tree_shardings(boxed, mesh, rules)
  return jax.tree.map(lambda leaf, where: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=where),
                      nn.unbox(boxed), shardings)


def restore_for_inference(config: Any | None, workdir: str | pathlib.Path, step: int | None = None, *,
                          may_differ: Iterable[str] = workdir_config.RUN_CONTROL_FIELDS,
                          purpose: str = "inference") -> Restored:
  """Restores checkpoint `step` (None: the latest) of `workdir` for inference.

  Args:
    config: the experiment config; None = the one recorded in the workdir. A given config that differs from the
      recorded one outside `may_differ` raises ConfigError naming the fields.
    workdir: a training workdir.
    step: the checkpoint step; a step that was not saved raises ConfigError naming the saved ones.
    may_differ: dotted config paths the caller may change (evaluation settings, sampling settings, ...).
    purpose: what the weights are for, for the log line.
  """
  workdir = pathlib.Path(workdir)
  step = checkpoint.saved_step(workdir, step)
  config = workdir_config.resolve(config, workdir, may_differ)
  task_class = registry.task_class(config.model_name)
  task_class.check_config(config)
  mesh = sharding.make_mesh(config.mesh.ici_sizes, config.mesh.dcn_sizes)
  rules = sharding.logical_rules(config.mesh.rules_preset, config.mesh.extra_rules)
  task = task_class(config, workdir, mesh)
  abstract = abstract_variables(task.model, task.example_batch(1), mesh, rules)
  weights = "ema_params" if config.train.ema_decay > 0 else "params"
  wanted = {weights: abstract.pop("params")}
  if abstract:
    wanted["model_state"] = abstract
  checkpointer = checkpoint.Checkpointer(workdir / "checkpoints", keep=config.checkpoint.keep)
  try:
    restored = checkpointer.restore_fields(step, wanted)
  finally:
    checkpointer.close()
  logging.info("Loaded the checkpoint at step %d of %s (%s weights) for %s.", step, workdir,
               "EMA" if weights == "ema_params" else "raw", purpose)
  variables = {"params": restored[weights], **restored.get("model_state", {})}
  return Restored(config=config, task=task, model=task.model, variables=variables, step=step, mesh=mesh,
                  rules=rules)
