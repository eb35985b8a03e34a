"""A few hundred steps of the runner's train step on a tiny flexible TiTok lower the held-out loss clearly."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxtok.tokenizers import titok
from jaxtok.train import optimizer as optimizer_lib
from jaxtok.train import step as step_lib
from jaxtok.train.state import TrainState

SIZE = 16


def smooth_images(rng: np.random.Generator, batch: int) -> np.ndarray:
  """Sums of three random low-frequency plane waves per channel, in [-1, 1]: `[batch, SIZE, SIZE, 3]`."""
  y, x = np.meshgrid(np.linspace(0, 1, SIZE), np.linspace(0, 1, SIZE), indexing="ij")
  frequencies = rng.uniform(-2.0, 2.0, (batch, 3, 3, 2))
  phases = rng.uniform(0, 2 * np.pi, (batch, 3, 3))
  waves = np.sin(2 * np.pi * (frequencies[..., 0, None, None] * y + frequencies[..., 1, None, None] * x)
                 + phases[..., None, None])
  return np.clip(np.transpose(waves.mean(axis=2), (0, 2, 3, 1)), -1, 1).astype(np.float32)


@pytest.mark.slow
def test_flexible_titok_learns():
  model = titok.TiTok(image_size=SIZE, patch_size=4, num_latent_tokens=8, token_dim=4, encoder_size="micro",
                      decoder_size="micro", quantizer={"name": "fsq", "levels": (8, 5, 5, 5)},
                      decoder_output="pixels", legacy_token_projection=False, latent_attention="causal",
                      token_dropout="nested_dropout")
  optimizer_config = ml_collections.ConfigDict(dict(learning_rate=3e-3, warmup_steps=20, end_learning_rate_fraction=0.1,
                                                    weight_decay=0.0, beta1=0.9, beta2=0.99, grad_clip_norm=1.0))
  num_steps = 300
  optimizer = optimizer_lib.make_optimizer(optimizer_config, num_steps)
  variables = nn.unbox(jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, SIZE, SIZE, 3))))
  params = variables.pop("params")
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=dict(variables),
                     opt_state=optimizer.init(params), ema_params=jax.tree.map(jnp.copy, params),
                     rng=jax.random.PRNGKey(1))
  train_step = jax.jit(step_lib.make_train_step(
      model, optimizer, loss_kind="l2", ema_decay=0.0,
      learning_rate_fn=optimizer_lib.learning_rate_schedule(optimizer_config, num_steps)), donate_argnums=0)
  rng = np.random.default_rng(0)
  held_out = smooth_images(np.random.default_rng(1), 32)
  eval_loss = jax.jit(lambda params, model_state: jnp.mean(
      (model.apply({"params": params, **model_state}, held_out)[0] - held_out)**2))
  before = float(eval_loss(state.params, state.model_state))
  for _ in range(num_steps):
    state, metrics = train_step(state, {"image": smooth_images(rng, 16)})
  after = float(eval_loss(state.params, state.model_state))
  assert np.isfinite(float(metrics["loss"]))
  assert after < 0.3 * before, (before, after)
