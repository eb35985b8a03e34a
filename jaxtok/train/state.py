"""The training state: everything a checkpoint must hold to resume a run exactly."""
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  """Attributes:
    step: int32 scalar, optimizer steps taken.
    params: the model's "params" collection.
    model_state: the model's other collections (e.g. "quantizer": EMA codebooks, usage counters), a dict.
    opt_state: the optax optimizer state.
    ema_params: exponential moving average of `params` (equal to `params` when the EMA decay is 0).
    rng: uint32 `[2]` base key; step s uses `fold_in(rng, s)`, so a resumed run draws the same numbers.
  """

  step: jax.Array
  params: Any
  model_state: Any
  opt_state: Any
  ema_params: Any
  rng: jax.Array


def create_train_state(model: flax.linen.Module, optimizer: optax.GradientTransformation, example_images: jax.Array,
                       seed: int) -> TrainState:
  """Initialises the model on `example_images` `[batch, height, width, 3]` and wraps it with optimizer state."""
  init_rng, quantizer_rng, train_rng = jax.random.split(jax.random.PRNGKey(seed), 3)
  rngs = {"params": init_rng, "quantizer": quantizer_rng, "dropout": init_rng}

  @jax.jit
  def initialise(rngs, example_images):
    variables = flax.core.unfreeze(model.init(rngs, example_images, train=False))
    params = variables.pop("params")
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                      opt_state=optimizer.init(params), ema_params=params, rng=train_rng)

  return initialise(rngs, example_images)
