"""The training state: everything a checkpoint must hold to resume a run exactly."""
from typing import Any, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxtok import sharding


@flax.struct.dataclass
class TrainState:
  """Attributes:
    step: int32 scalar, optimizer steps taken.
    params: the model's "params" collection.
    model_state: the model's other collections (e.g. "quantizer": EMA codebooks, usage counters), a dict.
    opt_state: the optax optimizer state.
    ema_params: exponential moving average of `params` (equal to `params` when the EMA decay is 0).
    rng: uint32 `[2]` base key; step s uses `fold_in(rng, s)`, so a resumed run draws the same numbers.
    discriminator_params, discriminator_opt_state: the PatchGAN discriminator's params and optimizer state when
      the run has an adversarial loss, else None.
  """

  step: jax.Array
  params: Any
  model_state: Any
  opt_state: Any
  ema_params: Any
  rng: jax.Array
  discriminator_params: Any = None
  discriminator_opt_state: Any = None

  def apply_gradients(self, grads: Any, optimizer: optax.GradientTransformation, ema_decay: float,
                      **changes: Any) -> "TrainState":
    """The state after one optimizer update of `params` by `grads`: step + 1, the EMA of the new params, and
    `changes` to the other fields (a new `model_state`, the discriminator's params, ...)."""
    updates, opt_state = optimizer.update(grads, self.opt_state, self.params)
    params = optax.apply_updates(self.params, updates)
    return self.replace(step=self.step + 1, params=params, opt_state=opt_state,
                        ema_params=ema_update(self.ema_params, params, ema_decay), **changes)

  def eval_variables(self, use_ema: bool) -> dict[str, Any]:
    """The variables evaluation and sampling apply: EMA params when `use_ema`, and the model's other collections."""
    return {"params": self.ema_params if use_ema else self.params, **self.model_state}


def ema_update(ema_params: Any, params: Any, decay: float) -> Any:
  """decay * ema + (1 - decay) * params, leaf by leaf."""
  return jax.tree.map(lambda ema, new: decay * ema + (1.0 - decay) * new, ema_params, params)


def create_train_state(model: flax.linen.Module, optimizer: optax.GradientTransformation,
                       example_images: jax.Array | tuple[jax.Array, ...], seed: int, mesh: jax.sharding.Mesh,
                       rules: Sequence[tuple[str, Any]],
                       discriminator: flax.linen.Module | None = None) -> tuple[TrainState, Any]:
  """Initialises the model on `example_images` `[batch, height, width, 3]` and wraps it with optimizer state.

  A tuple `example_images` is passed as the model's positional inputs instead (a generator's `(tokens, labels)`).

  A `discriminator` (adversarial loss) is initialised too, with its own state of the same `optimizer`.

  Returns:
    (state, shardings): the state laid out on `mesh` as the logical-axis `rules` say (see jaxtok.sharding), and the
    matching tree of NamedShardings, for the train step's in/out shardings and for restoring checkpoints.
  """
  init_rng, quantizer_rng, train_rng = jax.random.split(jax.random.PRNGKey(seed), 3)
  rngs = {"params": init_rng, "quantizer": quantizer_rng, "dropout": init_rng}

  @jax.jit
  def initialise(rngs, example_images):
    inputs = example_images if isinstance(example_images, tuple) else (example_images,)
    variables = flax.core.unfreeze(model.init(rngs, *inputs, train=False))
    params = variables.pop("params")
    discriminator_params = discriminator_opt_state = None
    if discriminator is not None:  # it judges images: the model's first input
      discriminator_params = discriminator.init(jax.random.fold_in(init_rng, 1), inputs[0])["params"]
      discriminator_opt_state = optimizer.init(discriminator_params)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                      opt_state=optimizer.init(params), ema_params=params, rng=train_rng,
                      discriminator_params=discriminator_params, discriminator_opt_state=discriminator_opt_state)

  abstract_state = jax.eval_shape(initialise, rngs, example_images)  # keeps the params' logical-axis boxes
  shardings = sharding.tree_shardings(abstract_state, mesh, rules)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    state = jax.jit(lambda r, x: nn.unbox(initialise(r, x)), out_shardings=shardings)(rngs, example_images)
  return state, shardings
