"""Scalars (and image grids) written to TensorBoard event files, and the scalars to a JSON-lines history that
survives restarts."""
import json
import math
import pathlib

import numpy as np
import tensorboardX


class MetricsLog:
  """Writes `{name: value}` scalars at a step to `workdir/tensorboard` and `workdir/history_<kind>.jsonl`.

  On resume from step s, entries after s (written by the interrupted run past its last checkpoint) are dropped, so the
  history always describes the run that led to the current state.
  """

  def __init__(self, workdir: pathlib.Path, resumed_step: int, write_files: bool = True):
    self._paths = {kind: workdir / f"history_{kind}.jsonl" for kind in ("train", "eval")}
    self.history = {kind: self._load(path, resumed_step) for kind, path in self._paths.items()}
    self._writer = None
    if write_files:  # in multi-host runs only process 0 writes
      self._writer = tensorboardX.SummaryWriter(str(workdir / "tensorboard"), purge_step=resumed_step or None)
      for kind, path in self._paths.items():
        path.write_text("".join(json.dumps(entry) + "\n" for entry in self.history[kind]))

  @staticmethod
  def _load(path: pathlib.Path, up_to_step: int) -> list[dict[str, float]]:
    if not path.exists():
      return []
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [entry for entry in entries if entry["step"] <= up_to_step]

  def write(self, kind: str, step: int, scalars: dict[str, float]) -> None:
    entry = {"step": step, **{k: float(v) for k, v in scalars.items()}}
    self.history[kind].append(entry)
    if self._writer is None:
      return
    with self._paths[kind].open("a") as file:
      file.write(json.dumps({k: (v if math.isfinite(v) else str(v)) for k, v in entry.items()}) + "\n")
    for name, value in scalars.items():
      self._writer.add_scalar(f"{kind}/{name}", float(value), step)
    self._writer.flush()

  def write_images(self, kind: str, step: int, pictures: dict[str, np.ndarray]) -> None:
    """Logs uint8 `[H, W, 3]` pictures to TensorBoard as `<kind>/<name>` images of `step`."""
    if self._writer is None:
      return
    for name, picture in pictures.items():
      self._writer.add_image(f"{kind}/{name}", picture, step, dataformats="HWC")
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
