"""Audio tokenizer: frame rate, round trip, and a few optimisation steps lowering the STFT + L1 loss."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxtok.tokenizers import audio

RESOLUTIONS = ((64, 16), (128, 32))


def make_model(quantizer=None):
  return audio.AudioTokenizer(channels=(8, 16), strides=(2, 4), latent_dim=4, sample_rate=8000,
                              quantizer=quantizer or {"name": "fsq", "levels": (5, 5, 5, 5)})


def sine_waves(seed: int, batch: int = 4, samples: int = 256) -> jnp.ndarray:
  rng = np.random.default_rng(seed)
  time = np.arange(samples) / 8000
  frequencies = rng.uniform(100, 1500, (batch, 2, 1))
  return jnp.asarray(0.4 * np.sin(2 * np.pi * frequencies * time).sum(axis=1), jnp.float32)


def test_shapes_round_trip_and_rates():
  model = make_model({"name": "residual_vq", "codebook_size": 16, "num_stages": 2})
  waves = sine_waves(0)
  variables = model.init(jax.random.PRNGKey(0), waves)
  reconstruction, output = model.apply(variables, waves)
  assert model.hop == 8 and model.tokens_per_second == 1000
  assert reconstruction.shape == waves.shape and output.indices.shape == (4, 32, 2)
  decoded = model.apply(variables, output.indices, method=model.decode_indices)
  np.testing.assert_allclose(decoded, reconstruction, atol=1e-5)
  with pytest.raises(ValueError, match=r"multiple of the hop 8, got shape \(4, 250\)"):
    model.apply(variables, waves[:, :250])
  assert audio.AudioTokenizer(quantizer={"name": "vq", "codebook_size": 8}).tokens_per_second == 75


def test_training_lowers_the_spectral_loss():
  model = make_model()
  waves = sine_waves(1)
  variables = model.init(jax.random.PRNGKey(0), waves)
  optimizer = optax.adam(1e-2)

  def loss_fn(params, state):
    (reconstruction, output), new_state = model.apply({"params": params, **state}, waves, train=True,
                                                      mutable=list(state))
    return audio.audio_reconstruction_loss(waves, reconstruction, RESOLUTIONS) + output.loss, new_state

  @jax.jit
  def step(params, opt_state, state):
    (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, state, loss

  params = variables.pop("params")
  state, opt_state = dict(variables), optimizer.init(params)
  losses = []
  for _ in range(150):
    params, opt_state, state, loss = step(params, opt_state, state)
    losses.append(float(loss))
  assert np.mean(losses[-5:]) < 0.7 * losses[0], losses[::25]
