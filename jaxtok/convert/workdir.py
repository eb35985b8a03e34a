"""A converted model as a training workdir: `config.py` plus an orbax checkpoint that `python -m jaxtok.evaluate`
(and `python -m jaxtok.main`, to fine-tune) read as they are.

Written in the runner's layout (`jaxtok.train.run.Run`, which also records `config.json`): the checkpoint is a whole
TrainState (converted weights as `params` and `ema_params`, a fresh optimizer state) and the data iterator's
position, saved by a `Run` built from the config, so the config's data must be readable here. The weights are saved as step 1 (the runner
treats step 0 as "nothing saved yet").
"""
import dataclasses
import pathlib
from typing import Any

import flax.linen as nn
import jax
import ml_collections

from jaxtok import registry
from jaxtok.train import run as run_lib

CONVERTED_STEP = 1


def model_fields(model: nn.Module) -> dict[str, Any]:
  """The dataclass fields of a linen module (what `registry.build_model` takes back)."""
  return {field.name: getattr(model, field.name) for field in dataclasses.fields(model)
          if field.name not in ("parent", "name")}


def config_with_model(base: ml_collections.ConfigDict, model: nn.Module) -> ml_collections.ConfigDict:
  """`base` (an experiment config: data, eval, optimizer, ...) with its model section replaced by `model`'s."""
  names = [name for name, entry in registry.MODELS.items() if entry.module.endswith(f":{type(model).__name__}")]
  if len(names) != 1:
    raise ValueError(f"{type(model).__name__} is not (once) in jaxtok.registry.MODELS.")
  config = ml_collections.ConfigDict(base.to_dict())
  config.model_name = names[0]
  config.model = ml_collections.ConfigDict(model_fields(model))
  return config


def write_config(path: pathlib.Path, config: ml_collections.ConfigDict, header: str) -> None:
  """Writes `config` as an experiment config file (`get_config()` returning it, locked by the runner)."""
  path.write_text(f'"""{header}"""\nimport ml_collections\n\n\ndef get_config(arg=None):\n  del arg\n'
                  f"  return ml_collections.ConfigDict({config.to_dict()!r})\n")


def write_workdir(model: nn.Module, variables: dict[str, Any], base_config: ml_collections.ConfigDict,
                  workdir: str | pathlib.Path, header: str) -> pathlib.Path:
  """Writes `<workdir>/config.py` and the checkpoint of `variables`; returns the config path.

  `python -m jaxtok.evaluate --config=<workdir>/config.py --workdir=<workdir>` then evaluates the converted model.
  """
  workdir = pathlib.Path(workdir)
  if (workdir / "checkpoints").exists():
    raise FileExistsError(f"{workdir / 'checkpoints'} exists; convert into a new workdir.")
  workdir.mkdir(parents=True, exist_ok=True)
  config = config_with_model(base_config, model)
  config_path = workdir / "config.py"
  write_config(config_path, config, header)
  run = run_lib.Run(config, workdir)
  try:
    place = lambda like, value: jax.device_put(value, like.sharding)
    params = jax.tree.map(place, run.state.params, variables["params"])
    model_state = jax.tree.map(place, run.state.model_state,
                               {name: value for name, value in variables.items() if name != "params"})
    run.state = run.state.replace(step=run.state.step + CONVERTED_STEP, params=params, ema_params=params,
                                  model_state=model_state)
    run.save(CONVERTED_STEP)
  finally:
    run.close()
  return config_path
