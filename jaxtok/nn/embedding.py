"""Learned embedding tables and vectors (token, class, position, mask and latent tokens)."""
import flax.linen as nn
import jax
import jax.numpy as jnp


def embedding(module: nn.Module, name: str, shape: tuple[int, ...], axes: tuple[str | None, ...],
              stddev: float | None = None) -> jax.Array:
  """A learned embedding parameter of `shape`, N(0, stddev^2) (default 1 / shape[-1], as TiTok; BERT's 0.02),
  float32, with logical axes `axes`."""
  stddev = shape[-1]**-0.5 if stddev is None else stddev
  init = nn.with_logical_partitioning(nn.initializers.normal(stddev), axes)
  return module.param(name, init, shape, jnp.float32)
