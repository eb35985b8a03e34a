"""The Task protocol: what one kind of model tells the one training Run (`jaxtok.train.run`).

The Run owns the scaffolding every model shares: the mesh and its rules, the batch-divisibility check, the
optimizer, the sharded TrainState, the jitted train step with its shardings, checkpoints and resumption, the step
loop with its progress bar, SIGTERM save and non-finite-loss stop, the metrics log and metrics.json. A task says what
differs: its config schema, its model, an example batch, the training batches, the pure train step, the evaluation
and its part of the summary. `jaxtok.registry` names the task of each model; `jaxtok.train.tasks.tokenizer` trains
the image tokenizers, `jaxtok.train.tasks.generator` the token generators.

A task is constructed as `Task(config, workdir, mesh)` from a config that passed `Task.check_config`; constructing it
is cheap, its model and data are built when first asked for.
"""
import dataclasses
import pathlib
from typing import Any, Callable, ClassVar, Iterator, Mapping, Protocol

import flax.linen as nn
import jax
import numpy as np
import optax

from jaxtok.train.state import TrainState

Metrics = dict[str, jax.Array]
TrainStep = Callable[[TrainState, Any], tuple[TrainState, Metrics]]


@dataclasses.dataclass
class Evaluation:
  """scalars: the evaluation's figures (logged, returned, in metrics.json); grids: uint8 `[H, W, 3]` pictures by
  name, saved as `<name>.png` (and `images/<name>_step<N>.png` during training) and logged to TensorBoard."""
  scalars: dict[str, float]
  grids: dict[str, np.ndarray]


class Task(Protocol):
  """One kind of model the Run trains.

  Attributes:
    fields: every config field with what it means (the schema `check_config` holds configs to).
    batch_fields: dotted config paths of the global training batch size, then of the evaluation batch size (both
      must divide over the mesh's batch axes and the processes).
    example_name: what one training example is ("images", "sequences"), for throughput figures.
    evaluates_untrained: whether a fresh run also evaluates at step 0.
    config: the experiment config.
    model: the linen module trained (built on first use).
    discriminator: a second module whose parameters and optimizer state the TrainState carries (the PatchGAN of an
      adversarial loss), or None.
  """
  fields: ClassVar[Mapping[str, Any]]
  batch_fields: ClassVar[tuple[str, str]]
  example_name: ClassVar[str]
  evaluates_untrained: ClassVar[bool]
  config: Any

  @classmethod
  def check_config(cls, config: Any) -> None:
    """Raises ConfigError for an unknown, misspelled, missing or out-of-range field."""

  @property
  def model(self) -> nn.Module: ...

  @property
  def discriminator(self) -> nn.Module | None: ...

  def example_batch(self, size: int) -> tuple[np.ndarray, ...]:
    """The model's positional inputs for `size` examples, for initialisation (zeros of the right shapes)."""

  def start_state(self, state: TrainState) -> TrainState:
    """The state of a fresh run before its first step, from the initialised one (weights a config starts from)."""

  def train_batches(self) -> Iterator[dict[str, np.ndarray]]:
    """This host's training batches, endless and checkpointable (a grain iterator)."""

  def make_train_step(self, optimizer: optax.GradientTransformation,
                      learning_rate_fn: Callable[[jax.Array], jax.Array]) -> TrainStep:
    """The pure `(state, global batch) -> (state, metrics)` step; metrics hold at least "loss"."""

  def evaluate(self, variables: dict[str, Any], step: int, output_dir: pathlib.Path) -> Evaluation:
    """Evaluates `variables` (evaluation weights and other collections) under the current mesh; may write
    task-specific files (a token curve, ...) into `output_dir`."""

  def summary(self, eval_history: list[dict[str, float]]) -> dict[str, Any]:
    """The task's own entries of metrics.json."""

  def save_curves(self, path: pathlib.Path, train_history: list[dict[str, float]],
                  eval_history: list[dict[str, float]]) -> None:
    """Writes the training curves PNG."""

  @classmethod
  def headline(cls, summary: dict[str, Any]) -> str:
    """One line that says how the run ended, printed by `jaxtok.main` ("" when there is nothing to say)."""
