"""orbax checkpoints holding the TrainState and the grain iterator's position."""
import pathlib
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

from jaxtok import config_validation


class Checkpointer:
  """Saves and restores (TrainState, data iterator) pairs under `directory`, keeping the last `keep`."""

  def __init__(self, directory: pathlib.Path, keep: int):
    self.directory = pathlib.Path(directory).absolute()
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=True)
    self._manager = ocp.CheckpointManager(pathlib.Path(directory).absolute(), options=options,
                                          item_names=("state", "data"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, data_iterator: Any) -> None:
    """Starts saving (asynchronously for the state); the iterator position is written at once."""
    self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                     data=grain.checkpoint.CheckpointSave(data_iterator)), force=True)

  def restore(self, step: int, like_state: Any, data_iterator: Any) -> Any:
    """Returns the state saved at `step` (shaped and sharded like `like_state`); moves `data_iterator` there too."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), data=grain.checkpoint.CheckpointRestore(data_iterator)))
    return restored["state"]

  def restore_fields(self, step: int, abstract_fields: dict[str, Any]) -> dict[str, Any]:
    """Reads only some fields of the state saved at `step` (e.g. `{"ema_params": ..., "model_state": ...}`), each
    shaped and sharded as its abstract tree of `jax.ShapeDtypeStruct`s says; optimizer state and data iterator
    position stay on disk."""
    restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=abstract_fields, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_fields),
        partial_restore=True)))
    return restored["state"]

  def wait(self) -> None:
    """Blocks until every started save is on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def saved_steps(workdir: pathlib.Path) -> list[int]:
  """The steps of the finished checkpoints in `<workdir>/checkpoints`, ascending ([] when there are none)."""
  directory = pathlib.Path(workdir) / "checkpoints"
  return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit()) if directory.is_dir() else []


def saved_step(workdir: pathlib.Path, step: int | None = None) -> int:
  """The checkpoint step to load from `<workdir>/checkpoints`: `step`, or the latest when None.

  Raises ConfigError when there is none to load (the one "no checkpoint here" check of jaxtok), naming the saved
  steps for a `step` that was not saved.
  """
  directory = pathlib.Path(workdir) / "checkpoints"
  saved = saved_steps(workdir)
  if not saved:
    raise config_validation.ConfigError(f"No checkpoint in {directory}: train first with python -m jaxtok.main "
                                        f"--config=<experiment config> --workdir={workdir}.")
  if step is None:
    return saved[-1]
  if step not in saved:
    raise config_validation.ConfigError(f"No checkpoint at step {step} in {directory}; saved steps: {saved}.")
  return step
