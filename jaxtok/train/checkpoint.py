"""orbax checkpoints holding the TrainState and the grain iterator's position."""
import pathlib
from typing import Any

from absl import logging
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

  def wait(self) -> None:
    """Blocks until every started save is on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def restore_if_saved(checkpointer: Checkpointer, step: int | None, state: Any, data_iterator: Any) -> tuple[Any, int]:
  """Restores checkpoint `step` (None: the latest, if any) into (state, data_iterator).

  Returns (state, the step restored), or the given state and 0 when `step` is None and nothing is saved; raises
  ConfigError for a `step` that was not saved.
  """
  if step is None:
    step = checkpointer.latest_step()
    if step is None:
      return state, 0
  elif step not in checkpointer.all_steps():
    raise config_validation.ConfigError(f"No checkpoint at step {step} in {checkpointer.directory}; saved steps: "
                                        f"{checkpointer.all_steps()}.")
  state = checkpointer.restore(step, state, data_iterator)
  logging.info("Resumed from the checkpoint at step %d in %s.", step, checkpointer.directory.parent)
  return state, step
