"""Grouped (product / multi-codebook) vector quantization, as MVQ targets: the channels are split into
`num_groups` equal groups, each quantized by its own VectorQuantizer; indices `[..., num_groups]`.
"""
import math

import einops
import jax
import jax.numpy as jnp

from jaxtok.quantizers import base
from jaxtok.quantizers import vq


class GroupedVQ(vq.VQOptions):
  __doc__ = f"""num_groups independent codebooks over channel groups: `quantizer(x [..., D], train=False)` ->
  QuantizerOutput with indices `[..., num_groups]` int32 and `quantized` the groups' codes concatenated `[..., D]`.

  Loss: the mean of the groups' losses (each a mean over its elements, so the total is a mean over all channels).
  Metrics: the groups' metrics averaged. State and RNG: those of each group's VectorQuantizer.

  Attributes:
    num_groups: g; the input dimension must be divisible by g, each group has dim / g channels (or codebook_dim
      after its own projection).
  and the VectorQuantizer fields, applied to each group:
{vq.FIELDS_DOC}  """

  num_groups: int = 2

  @property
  def bits_per_token(self) -> float:
    return self.num_groups * math.log2(self.codebook_size)

  def setup(self):
    if self.num_groups < 1:
      raise ValueError(f"GroupedVQ num_groups must be >= 1, got {self.num_groups}.")
    self.groups = [vq.VectorQuantizer(**vq.vq_options(self), name=f"group_{i}") for i in range(self.num_groups)]

  def _split(self, x: jax.Array) -> jax.Array:
    if x.shape[-1] % self.num_groups:
      raise ValueError(f"GroupedVQ expects a last dimension divisible by num_groups={self.num_groups}, "
                       f"got shape {x.shape}.")
    return einops.rearrange(x, "... (g d) -> g ... d", g=self.num_groups)

  def __call__(self, x: jax.Array, *, train: bool = False) -> base.QuantizerOutput:
    """x `[..., D]` -> QuantizerOutput (see the class docstring)."""
    base.check_input(x, None, "GroupedVQ")
    outputs = [group(part, train=train) for group, part in zip(self.groups, self._split(x))]
    metrics = {name: jnp.mean(jnp.stack([output.metrics[name] for output in outputs]))
               for name in outputs[0].metrics}
    return base.QuantizerOutput(
        quantized=jnp.concatenate([output.quantized for output in outputs], axis=-1),
        indices=jnp.stack([output.indices for output in outputs], axis=-1),
        loss=sum(output.loss for output in outputs) / self.num_groups, metrics=metrics)

  def indices_to_codes(self, indices: jax.Array) -> jax.Array:
    """indices `[..., num_groups]` int -> quantized vectors `[..., dim]` (groups concatenated)."""
    base.check_integer_indices(indices, "GroupedVQ")
    if indices.shape[-1:] != (self.num_groups,):
      raise ValueError(f"GroupedVQ expects indices [..., {self.num_groups}], got shape {indices.shape}.")
    return jnp.concatenate([group.indices_to_codes(indices[..., i]) for i, group in enumerate(self.groups)], -1)

  def codes_to_indices(self, codes: jax.Array) -> jax.Array:
    """codes `[..., num_groups * group code dim]` in the groups' lookup space -> indices `[..., num_groups]`."""
    return jnp.stack([group.codes_to_indices(part) for group, part in zip(self.groups, self._split(codes))], -1)
