"""The train step with perceptual and adversarial terms: gradients, adaptive weight and discriminator schedule
against direct computations."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxtok.losses import adversarial
from jaxtok.losses import perceptual
from jaxtok.losses.settings import LossSettings
from jaxtok.tokenizers import titok
from jaxtok.train import step as step_lib
from jaxtok.train.state import TrainState

STAGES = ((4,), (6,))
START = 1


@pytest.fixture(scope="module")
def setup():
  model = titok.TiTok(image_size=8, patch_size=4, num_latent_tokens=4, token_dim=3, encoder_size="micro",
                      decoder_size="micro", quantizer={"name": "fsq", "levels": (5, 5, 5)}, decoder_output="pixels")
  images = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)), jnp.float32)
  losses = LossSettings(perceptual_weight=0.5, adversarial_weight=0.8, adversarial_start_step=START,
                        perceptual_params=perceptual.params_from_arrays(perceptual.random_perceptual_arrays(0, STAGES),
                                                                       STAGES),
                        perceptual_stages=STAGES, discriminator=adversarial.PatchDiscriminator(4, 1))
  optimizer = optax.adam(1e-2)
  variables = nn.unbox(model.init(jax.random.PRNGKey(0), images))
  discriminator_params = losses.discriminator.init(jax.random.PRNGKey(1), images)["params"]
  state = TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                     model_state={"quantizer": variables["quantizer"]},
                     opt_state=optimizer.init(variables["params"]), ema_params=variables["params"],
                     rng=jax.random.PRNGKey(2), discriminator_params=discriminator_params,
                     discriminator_opt_state=optimizer.init(discriminator_params))
  train_step = jax.jit(step_lib.make_train_step(model, optimizer, loss_kind="l1", ema_decay=0.0,
                                                learning_rate_fn=lambda s: 1e-2, losses=losses))
  return model, losses, images, state, train_step


def direct_terms(model, losses, state, images):
  """Loss terms as functions of the params, computed without the train step's vjp route."""
  forward = lambda p: model.apply({"params": p, **state.model_state}, images, train=True, mutable=["quantizer"])[0]
  nll = lambda p: (jnp.mean(jnp.abs(forward(p)[0] - images))
                   + losses.perceptual_weight * jnp.mean(perceptual.lpips(losses.perceptual_params, images,
                                                                          forward(p)[0], STAGES)))
  gan = lambda p: adversarial.generator_adversarial_loss(
      losses.discriminator.apply({"params": state.discriminator_params}, forward(p)[0]))
  quantizer = lambda p: forward(p)[1].loss
  return nll, gan, quantizer


def test_discriminator_waits_for_the_start_step_then_trains(setup):
  _, _, images, state, train_step = setup
  first, metrics = train_step(state, {"image": images})
  assert float(metrics["adaptive_weight"]) == 0.0
  jax.tree.map(np.testing.assert_array_equal, first.discriminator_params, state.discriminator_params)
  second, _ = train_step(first, {"image": images})
  changed = jax.tree.leaves(jax.tree.map(lambda a, b: np.abs(a - b).max(), second.discriminator_params,
                                         first.discriminator_params))
  assert max(changed) > 0


def test_adaptive_weight_and_loss_match_direct_gradients(setup):
  model, losses, images, state, train_step = setup
  state = state.replace(step=jnp.asarray(START, jnp.int32))
  _, metrics = train_step(state, {"image": images})
  nll, gan, quantizer = direct_terms(model, losses, state, images)
  last = lambda grads: functools.reduce(lambda tree, key: tree[key], model.last_layer_path, grads)
  expected_weight = losses.adversarial_weight * np.linalg.norm(last(jax.jit(jax.grad(nll))(state.params))) / (
      np.linalg.norm(last(jax.jit(jax.grad(gan))(state.params))) + 1e-4)
  np.testing.assert_allclose(metrics["adaptive_weight"], expected_weight, rtol=1e-3)
  total = lambda p: nll(p) + expected_weight * gan(p) + quantizer(p)
  loss, grads = jax.jit(jax.value_and_grad(total))(state.params)
  np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-4)
  np.testing.assert_allclose(metrics["grad_norm"], optax.tree.norm(grads), rtol=1e-3)
