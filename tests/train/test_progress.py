"""The training progress bar: steps count when they have run, the rate leaves out compilation and pauses, the ETA
follows the wall-clock pace, and log lines never share a line with the bar."""
import io

from absl import logging

from jaxtok.train import progress as progress_lib


class _Clock:
  def __init__(self):
    self.now = 0.0

  def __call__(self) -> float:
    return self.now


class _Loss:
  """Stands for a dispatched step's loss: ready once the step has run."""

  def __init__(self):
    self.ready = False

  def is_ready(self) -> bool:
    return self.ready

  def block_until_ready(self) -> "_Loss":
    self.ready = True
    return self


def test_counts_steps_when_they_have_run_and_times_training_only():
  clock, out = _Clock(), io.StringIO()
  bar = progress_lib.Progress(0, 101, 8, "images", file=out, clock=clock)
  assert bar.describe() == "compiling"
  clock.now = 20.0  # the first step compiles
  bar.queued(1, _Loss())  # waited for: timing starts after it
  assert bar.done == 1 and bar.describe() == "timing"  # no ETA from the compilation time
  losses = [_Loss() for _ in range(50)]
  for step, loss in enumerate(losses, start=2):
    clock.now += 0.01  # dispatching is fast ...
    bar.queued(step, loss)
  assert bar.done == 1, "queued steps that have not run are not counted"
  clock.now = 45.0  # ... running is not: steps 2..51 took 25 s
  for loss in losses:
    loss.ready = True
  bar.queued(52, _Loss())
  assert bar.done == 51 and bar.timed_steps == 50 and bar.train_seconds == 25.0
  assert bar.describe() == "2.00 steps/s, 16 images/s, ETA 0:00:25"  # 50 steps left at 0.5 s each
  with bar.paused():  # an evaluation
    clock.now += 10.0
  clock.now += 0.5
  bar.wait_through(52)  # blocks on step 52's loss
  bar.show_loss(0.1234)
  assert bar.train_seconds == 25.5 and bar.timed_steps == 51  # the pause is not training time
  # The rate is training only; the ETA keeps the pauses: 49 steps at (35.5 s / 51 steps).
  assert bar.describe() == f"2.00 steps/s, 16 images/s, ETA 0:00:{round(49 * 35.5 / 51)}, loss 0.1234"
  bar._bar.close()  # pylint: disable=protected-access


def test_log_lines_print_above_the_bar_on_their_own_line():
  logging.use_absl_handler()  # as absl.app.run does for the entry points
  out = io.StringIO()
  with progress_lib.Progress(0, 10, 4, "images", file=out, clock=_Clock()) as bar:
    bar.queued(1, _Loss())
    logging.warning("Eval at step 1: something")
  lines = [line for line in out.getvalue().split("\n") if "Eval at step 1" in line]
  assert len(lines) == 1
  assert "train:" not in lines[0].split("\r")[-1] and lines[0].split("\r")[-1].startswith("W")
  assert "step 1" not in out.getvalue().split("\n")[-1]  # the bar is redrawn after it, not glued to it
