"""The training progress bar: honest step counts, rate and ETA, with log lines printed above it.

jit-compiled steps return as soon as they are queued, so counting calls races ahead of the device and then stalls
when the host waits for it. This bar counts a step when its loss is ready: checked without blocking after each
dispatch (`jax.Array.is_ready`), and waited for step by step when the loop must sync (`wait_through`). It measures
the rate on training time only (after the first step's compilation, without evaluations and checkpoint saves), and
estimates the time left from the wall-clock pace since then, evaluations included. While it is shown, whatever goes
to stderr (absl log lines included) is written through `tqdm.write`, on its own lines above the bar.
"""
import contextlib
import datetime
import sys
import time
from typing import Any, Callable, Iterator, TextIO

from absl import logging
import jax
import tqdm


class _AboveTheBar:
  """A stream that writes through `tqdm.write`: the bar is cleared, the text printed, the bar drawn again."""

  def __init__(self, file: TextIO):
    self._file = file

  def write(self, text: str) -> None:
    tqdm.tqdm.write(text, file=self._file, end="")

  def flush(self) -> None:
    self._file.flush()


class Progress:
  """Counts finished steps from `start_step` to `num_steps` of `batch_size` examples (called `example_name`)."""

  def __init__(self, start_step: int, num_steps: int, batch_size: int, example_name: str, *,
               file: TextIO | None = None, clock: Callable[[], float] = time.perf_counter):
    self._file, self._clock = file or sys.stderr, clock
    self._num_steps, self._batch_size, self._example_name = num_steps, batch_size, example_name
    self._queued: list[tuple[int, Any]] = []
    self.done = start_step  # steps known finished
    self._timed_from: tuple[int, float] | None = None  # (step, time) when timing began: the first step finished
    self._paused_seconds, self._loss = 0.0, None
    self._bar = tqdm.tqdm(total=num_steps, initial=start_step, desc="train", unit="step", file=self._file,
                          dynamic_ncols=True, mininterval=1.0,
                          bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
    self._bar.set_postfix_str("compiling")

  def __enter__(self) -> "Progress":
    above = _AboveTheBar(self._file)
    self._redirect = contextlib.ExitStack()
    self._redirect.enter_context(contextlib.redirect_stderr(above))
    handler = logging.get_absl_handler().python_handler  # holds the stderr it was created with
    previous = handler.setStream(above)
    if previous is not None:
      self._redirect.callback(handler.setStream, previous)
    return self

  def __exit__(self, *exc_info) -> None:
    self._redirect.close()
    self._bar.close()

  def queued(self, step: int, loss: jax.Array) -> None:
    """Step `step` was dispatched; `loss` becomes ready when it has run. The first one is waited for, so timing
    starts exactly after the compilation."""
    self._queued.append((step, loss))
    if self._timed_from is None:
      jax.block_until_ready(loss)
    self._advance()

  def wait_through(self, step: int) -> None:
    """Blocks until every queued step up to `step` has run, counting each one as it finishes (the bar keeps moving
    while the host waits for the device)."""
    while self._queued and self._queued[0][0] <= step:
      queued_step, loss = self._queued.pop(0)
      jax.block_until_ready(loss)
      self._mark_done(queued_step)
      self._show()

  def show_loss(self, loss: float) -> None:
    self._loss = loss
    self._show()

  @contextlib.contextmanager
  def paused(self) -> Iterator[None]:
    """Time spent inside (evaluation, checkpoint saves) does not count as training."""
    started = self._clock()
    try:
      yield
    finally:
      self._paused_seconds += self._clock() - started

  @property
  def train_seconds(self) -> float:
    """Seconds spent training since the first step finished (0 before)."""
    if self._timed_from is None:
      return 0.0
    return self._clock() - self._timed_from[1] - self._paused_seconds

  @property
  def timed_steps(self) -> int:
    """Steps finished within `train_seconds`."""
    return self.done - self._timed_from[0] if self._timed_from else 0

  def _advance(self) -> None:
    while self._queued and self._queued[0][1].is_ready():
      self._mark_done(self._queued.pop(0)[0])
    self._show()

  def _mark_done(self, step: int) -> None:
    if step <= self.done:
      return
    if self._timed_from is None:
      self._timed_from, self._paused_seconds = (step, self._clock()), 0.0
    self.done = step

  def _show(self) -> None:
    self._bar.n = self.done
    self._bar.set_postfix_str(self.describe(), refresh=False)
    if self.done == self._num_steps:
      self._bar.refresh()
    else:
      self._bar.update(0)  # redraws at most once per mininterval

  def describe(self) -> str:
    """Rate, examples per second, time left and the last loss, as the bar shows them."""
    parts = []
    if self.timed_steps > 0 and self.train_seconds > 0:
      rate = self.timed_steps / self.train_seconds
      wall = self._clock() - self._timed_from[1]
      left = (self._num_steps - self.done) * wall / self.timed_steps
      parts = [f"{rate:.2f} steps/s", f"{rate * self._batch_size:.0f} {self._example_name}/s",
               f"ETA {datetime.timedelta(seconds=round(left))}"]
    elif self.done < self._num_steps:
      parts = ["compiling" if self._timed_from is None else "timing"]
    if self._loss is not None:
      parts.append(f"loss {self._loss:.4f}")
    return ", ".join(parts)
