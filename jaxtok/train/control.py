"""What the step loop of `jaxtok.train.run.Run` relies on: SIGTERM handling, the non-finite-loss stop and the "is
this step due" rule."""
import contextlib
import signal
from typing import Iterator

from absl import logging
import jax
import numpy as np


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
