"""What every quantizer returns, and the codebook-usage statistics they share."""
from typing import Any

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class QuantizerOutput:
  """The result of quantizing a batch.

  Attributes:
    quantized: same shape and dtype as the input `[..., dim]`; gradients reach the input through the quantizer's
      estimator (straight-through unless configured otherwise).
    indices: integer codes, `[...]` for one codebook or `[..., num_codebooks]` for several.
    loss: scalar auxiliary loss, already weighted (zero when the quantizer has none).
    metrics: scalar diagnostics keyed by name (e.g. "perplexity", "codebook_usage").
  """

  quantized: jax.Array
  indices: jax.Array
  loss: jax.Array
  metrics: dict[str, Any]


def code_histogram(indices: jax.Array, codebook_size: int) -> jax.Array:
  """Counts of each code. indices: any shape of ints in [0, codebook_size) -> `[codebook_size]` float32."""
  flat = jnp.reshape(indices, (-1,))
  return jnp.zeros((codebook_size,), jnp.float32).at[flat].add(1.0)


def usage_metrics(indices: jax.Array, codebook_size: int) -> dict[str, jax.Array]:
  """Perplexity (exp of the code entropy) and fraction of codes used, over all entries of `indices`.

  Args:
    indices: integer codes of any shape, values in [0, codebook_size).
    codebook_size: number of codes K.

  Returns:
    {"perplexity": in [1, K], "codebook_usage": fraction of the K codes hit at least once, in (0, 1]}.
  """
  counts = code_histogram(indices, codebook_size)
  probs = counts / jnp.maximum(jnp.sum(counts), 1.0)
  entropy = -jnp.sum(jnp.where(probs > 0, probs * jnp.log(jnp.where(probs > 0, probs, 1.0)), 0.0))
  return {
      "perplexity": jnp.exp(entropy),
      "codebook_usage": jnp.mean((counts > 0).astype(jnp.float32)),
  }


def check_input(x: jax.Array, expected_dim: int | None, quantizer: str) -> None:
  """Raises ValueError unless x is a floating array `[..., expected_dim]` (any last dim when expected_dim is None)."""
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"{quantizer} expects a floating-point input (float32, bfloat16, ...), got dtype {x.dtype}.")
  if x.ndim < 1:
    raise ValueError(f"{quantizer} expects an input [..., dim], got a scalar of shape {x.shape}.")
  if expected_dim is not None and x.shape[-1] != expected_dim:
    raise ValueError(f"{quantizer} expects input [..., {expected_dim}], got shape {x.shape} "
                     f"(last dimension {x.shape[-1]}).")


def check_integer_indices(indices: jax.Array, quantizer: str) -> None:
  """Raises ValueError unless `indices` has an integer dtype."""
  if not jnp.issubdtype(indices.dtype, jnp.integer):
    raise ValueError(f"{quantizer} expects integer indices, got dtype {indices.dtype}.")


def updates_state(module, train: bool) -> bool:
  """Whether a quantizer call should update its "quantizer" collection: training, mutable, and not `init`."""
  return train and module.is_mutable_collection("quantizer") and not module.is_initializing()


def project(module, name: str, x: jax.Array, features: int) -> jax.Array:
  """A dense layer `x @ kernel + bias` owned by `module` as params `{name}_kernel`, `{name}_bias` (float32).

  Call from the module's compact `__call__`; `project_stored` applies the same layer from any other method.
  """
  kernel = module.param(f"{name}_kernel", jax.nn.initializers.lecun_normal(), (x.shape[-1], features), jnp.float32)
  bias = module.param(f"{name}_bias", jax.nn.initializers.zeros, (features,), jnp.float32)
  return x.astype(jnp.float32) @ kernel + bias


def project_stored(module, name: str, x: jax.Array) -> jax.Array:
  """Applies the dense layer `name` created by `project`, reading its params from the bound module."""
  kernel = module.get_variable("params", f"{name}_kernel")
  bias = module.get_variable("params", f"{name}_bias")
  return x.astype(jnp.float32) @ kernel + bias
