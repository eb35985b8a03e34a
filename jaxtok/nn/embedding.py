"""Learned embedding tables and vectors (token, class, position, mask and latent tokens)."""
import flax.linen as nn
import jax
import jax.numpy as jnp


def embedding(module: nn.Module, name: str, shape: tuple[int, ...], axes: tuple[str | None, ...]) -> jax.Array:
  """A learned embedding parameter of `shape`, N(0, 1 / shape[-1]) as TiTok, float32, with logical axes `axes`."""
  init = nn.with_logical_partitioning(nn.initializers.normal(shape[-1]**-0.5), axes)
  return module.param(name, init, shape, jnp.float32)
