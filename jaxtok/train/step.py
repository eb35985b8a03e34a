"""The pure training step of a quantized autoencoder: reconstruction + quantizer loss (+ perceptual and PatchGAN
losses when configured), AdamW, EMA of weights.

One backward pass serves every generator term: the model's forward is linearised once (`jax.vjp`), the losses on the
reconstruction give its cotangent, and the adaptive adversarial weight reads two extra pullbacks restricted (by
XLA's dead-code elimination) to the decoder's last layer.
"""
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxtok.losses import adversarial
from jaxtok.losses import perceptual
from jaxtok.losses.reconstruction import RECONSTRUCTION_LOSSES, reconstruction_loss
from jaxtok.losses.settings import LossSettings
from jaxtok.train.state import TrainState

Metrics = dict[str, jax.Array]


def _leaf(tree: Any, path: tuple[str, ...]) -> jax.Array:
  for key in path:
    tree = tree[key]
  return nn.unbox(tree)


def _discriminator_update(losses: LossSettings, optimizer: optax.GradientTransformation, state: TrainState,
                          images: jax.Array, reconstructions: jax.Array) -> tuple[Any, Any, Metrics]:
  """One hinge-loss step of the discriminator, applied only from `adversarial_start_step` on."""

  def loss_fn(params):
    real = losses.discriminator.apply({"params": params}, images)
    fake = losses.discriminator.apply({"params": params}, jax.lax.stop_gradient(reconstructions))
    return adversarial.hinge_discriminator_loss(real, fake), (jnp.mean(real), jnp.mean(fake))

  (loss, (real, fake)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.discriminator_params)
  updates, opt_state = optimizer.update(grads, state.discriminator_opt_state, state.discriminator_params)
  params = optax.apply_updates(state.discriminator_params, updates)
  active = state.step >= losses.adversarial_start_step
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(active, n, o), new, old)
  return (keep(params, state.discriminator_params), keep(opt_state, state.discriminator_opt_state),
          {"discriminator/loss": loss, "discriminator/real_logit": real, "discriminator/fake_logit": fake})


def make_train_step(model: nn.Module, optimizer: optax.GradientTransformation, *, loss_kind: str, ema_decay: float,
                    learning_rate_fn: Callable[[jax.Array], jax.Array],
                    losses: LossSettings | None = None) -> Callable[[TrainState, Any], tuple[TrainState, Metrics]]:
  """Returns `train_step(state, batch) -> (state, metrics)`, pure (jit it, donating the state).

  `losses` adds the perceptual and adversarial terms; with a discriminator the state must hold its params and
  optimizer state (`create_train_state(..., discriminator=...)`), which the same step updates with `optimizer`.
  """
  if loss_kind not in RECONSTRUCTION_LOSSES:
    raise ValueError(f"Unknown reconstruction loss {loss_kind!r}; expected one of {RECONSTRUCTION_LOSSES}.")
  losses = losses or LossSettings()
  adversarial_on = losses.adversarial_weight > 0
  if adversarial_on and not hasattr(model, "last_layer_path"):
    raise ValueError(f"The adversarial loss needs a model with `last_layer_path`; {type(model).__name__} has none.")

  def pixel_losses(images, reconstructions):
    pixel = reconstruction_loss(images, reconstructions, loss_kind)
    metrics = {"reconstruction_loss": pixel}
    if losses.perceptual_weight > 0:
      distance = jnp.mean(perceptual.lpips(losses.perceptual_params, images, reconstructions,
                                           losses.perceptual_stages))
      metrics["perceptual_loss"] = distance
      pixel = pixel + losses.perceptual_weight * distance
    return pixel, metrics

  def train_step(state: TrainState, batch: Any) -> tuple[TrainState, Metrics]:
    images = batch["image"]
    quantizer_rng, dropout_rng = jax.random.split(jax.random.fold_in(state.rng, state.step))

    def forward(params):
      (reconstructions, output), model_state = model.apply(
          {"params": params, **state.model_state}, images, train=True, mutable=list(state.model_state),
          rngs={"quantizer": quantizer_rng, "dropout": dropout_rng})
      return (reconstructions, output.loss), (output.metrics, model_state)

    (reconstructions, quantizer_loss), pullback, (quantizer_metrics, model_state) = jax.vjp(
        forward, state.params, has_aux=True)
    (nll, metrics), nll_cotangent = jax.value_and_grad(pixel_losses, argnums=1, has_aux=True)(images, reconstructions)
    metrics.update(quantizer_loss=quantizer_loss, **{f"quantizer/{k}": v for k, v in quantizer_metrics.items()})
    cotangent, loss, new_state = nll_cotangent, nll + quantizer_loss, {}
    if adversarial_on:
      generator_loss_fn = lambda r: adversarial.generator_adversarial_loss(
          losses.discriminator.apply({"params": state.discriminator_params}, r))
      generator_loss, generator_cotangent = jax.value_and_grad(generator_loss_fn)(reconstructions)
      last_layer_grad = lambda c: _leaf(pullback((c, jnp.zeros_like(quantizer_loss)))[0], model.last_layer_path)
      weight = (losses.adversarial_weight * adversarial.started(state.step, losses.adversarial_start_step)
                * adversarial.adaptive_generator_weight(last_layer_grad(nll_cotangent),
                                                        last_layer_grad(generator_cotangent)))
      cotangent = cotangent + weight * generator_cotangent
      loss = loss + weight * generator_loss
      params, opt_state, discriminator_metrics = _discriminator_update(losses, optimizer, state, images,
                                                                       reconstructions)
      new_state = {"discriminator_params": params, "discriminator_opt_state": opt_state}
      metrics.update(generator_adversarial_loss=generator_loss, adaptive_weight=weight, **discriminator_metrics)
    grads = pullback((cotangent.astype(reconstructions.dtype), jnp.ones_like(quantizer_loss)))[0]
    new_state = state.apply_gradients(grads, optimizer, ema_decay, model_state=dict(model_state), **new_state)
    metrics.update(loss=loss, grad_norm=optax.tree.norm(grads), learning_rate=learning_rate_fn(state.step))
    return new_state, metrics

  return train_step
