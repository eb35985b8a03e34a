"""PatchGAN discriminator with hinge loss, and the adaptive generator weight of VQGAN (Esser et al. 2021)."""
import flax.linen as nn
import jax
import jax.numpy as jnp


def _conv(features: int, strides: int, name: str) -> nn.Conv:
  return nn.Conv(features, (4, 4), strides=(strides, strides), padding=1, name=name,
                 kernel_init=nn.with_logical_partitioning(nn.initializers.normal(0.02),
                                                          ("conv_height", "conv_width", "conv_in", "conv_out")),
                 bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("conv_out",)))


class PatchDiscriminator(nn.Module):
  """The pix2pix / taming-transformers NLayerDiscriminator: one real-vs-fake logit per overlapping patch.

  images `[batch, H, W, 3]` -> logits `[batch, H / 2^num_layers - 2, W / 2^num_layers - 2, 1]` float32.
  GroupNorm replaces BatchNorm so the discriminator carries no batch statistics.

  Attributes:
    base_channels: channels of the first layer, doubled per layer up to 8x.
    num_layers: stride-2 layers.
  """

  base_channels: int = 64
  num_layers: int = 3

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"PatchDiscriminator expects images [batch, H, W, 3], got shape {images.shape}.")
    x = nn.leaky_relu(_conv(self.base_channels, 2, "conv0")(images.astype(jnp.float32)), 0.2)
    for layer in range(1, self.num_layers + 1):
      channels = self.base_channels * min(2**layer, 8)
      x = _conv(channels, 2 if layer < self.num_layers else 1, f"conv{layer}")(x)
      x = nn.leaky_relu(nn.GroupNorm(num_groups=min(32, channels), name=f"norm{layer}")(x), 0.2)
    return _conv(1, 1, "logits")(x)


def hinge_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """`(mean(relu(1 - real)) + mean(relu(1 + fake))) / 2`, float32."""
  real = jnp.mean(jax.nn.relu(1.0 - real_logits.astype(jnp.float32)))
  fake = jnp.mean(jax.nn.relu(1.0 + fake_logits.astype(jnp.float32)))
  return 0.5 * (real + fake)


def generator_adversarial_loss(fake_logits: jax.Array) -> jax.Array:
  """The generator's hinge loss `-mean(fake logits)`."""
  return -jnp.mean(fake_logits.astype(jnp.float32))


def adaptive_generator_weight(reconstruction_grad: jax.Array, adversarial_grad: jax.Array,
                              max_weight: float = 1e4) -> jax.Array:
  """`||grad nll|| / (||grad gan|| + 1e-4)`, clipped to [0, max_weight], without gradient.

  Both gradients are taken with respect to the decoder's last layer (VQGAN's `calculate_adaptive_weight`), so the
  adversarial term pulls on it as hard as the reconstruction terms do.
  """
  ratio = jnp.linalg.norm(reconstruction_grad.astype(jnp.float32)) / (
      jnp.linalg.norm(adversarial_grad.astype(jnp.float32)) + 1e-4)
  return jax.lax.stop_gradient(jnp.clip(ratio, 0.0, max_weight))


def started(step: jax.Array, start_step: int) -> jax.Array:
  """1.0 from `start_step` on, else 0.0 (the discriminator and its loss stay off before)."""
  return (step >= start_step).astype(jnp.float32)
