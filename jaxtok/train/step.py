"""The pure training step of a quantized autoencoder: reconstruction + quantizer loss, AdamW, EMA of weights."""
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxtok.train.state import TrainState

RECONSTRUCTION_LOSSES = ("l2", "l1")
Metrics = dict[str, jax.Array]


def reconstruction_loss(images: jax.Array, reconstructions: jax.Array, kind: str) -> jax.Array:
  """Mean squared ("l2") or absolute ("l1") error over all pixels of `[batch, height, width, 3]`."""
  difference = reconstructions.astype(jnp.float32) - images.astype(jnp.float32)
  if kind == "l2":
    return jnp.mean(jnp.square(difference))
  if kind == "l1":
    return jnp.mean(jnp.abs(difference))
  raise ValueError(f"Unknown reconstruction loss {kind!r}; expected one of {RECONSTRUCTION_LOSSES}.")


def ema_update(ema_params: Any, params: Any, decay: float) -> Any:
  """decay * ema + (1 - decay) * params, leaf by leaf."""
  return jax.tree.map(lambda ema, new: decay * ema + (1.0 - decay) * new, ema_params, params)


def make_train_step(model: nn.Module, optimizer: optax.GradientTransformation, *, loss_kind: str, ema_decay: float,
                    learning_rate_fn: Callable[[jax.Array], jax.Array]) -> Callable[[TrainState, Any],
                                                                                      tuple[TrainState, Metrics]]:
  """Returns `train_step(state, batch) -> (state, metrics)`, pure (jit it, donating the state)."""
  if loss_kind not in RECONSTRUCTION_LOSSES:
    raise ValueError(f"Unknown reconstruction loss {loss_kind!r}; expected one of {RECONSTRUCTION_LOSSES}.")

  def loss_fn(params, model_state, images, rng):
    quantizer_rng, dropout_rng = jax.random.split(rng)
    (reconstructions, quantizer_output), new_model_state = model.apply(
        {"params": params, **model_state}, images, train=True, mutable=list(model_state),
        rngs={"quantizer": quantizer_rng, "dropout": dropout_rng})
    pixel_loss = reconstruction_loss(images, reconstructions, loss_kind)
    loss = pixel_loss + quantizer_output.loss
    metrics = {"reconstruction_loss": pixel_loss, "quantizer_loss": quantizer_output.loss,
               **{f"quantizer/{k}": v for k, v in quantizer_output.metrics.items()}}
    return loss, (new_model_state, metrics)

  def train_step(state: TrainState, batch: Any) -> tuple[TrainState, Metrics]:
    rng = jax.random.fold_in(state.rng, state.step)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, (model_state, metrics)), grads = grad_fn(state.params, state.model_state, batch["image"], rng)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, model_state=dict(model_state), opt_state=opt_state,
                              ema_params=ema_update(state.ema_params, params, ema_decay))
    metrics.update(loss=loss, grad_norm=optax.tree.norm(grads), learning_rate=learning_rate_fn(state.step))
    return new_state, metrics

  return train_step
