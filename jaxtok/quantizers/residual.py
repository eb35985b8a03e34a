"""Residual vector quantization (SoundStream, EnCodec, DAC): each stage quantizes what the previous ones left.

`r_0 = x`, `q_i = VQ_i(r_i)`, `r_{i+1} = r_i - q_i`, output `sum_i q_i`. The residual is not stop-gradiented (as
in DAC): with straight-through stages, `r_{i+1}` is constant in x, so the gradient of the output to x is exactly the
identity, and the stages' projections (codebook_dim) still receive gradients. Quantizer dropout (SoundStream): in
training, with probability `quantizer_dropout_rate` an example keeps only its first n ~ U{1..num_stages} stages in
the output (every stage still learns its codebook on its residual), for scalable bitrate at inference.
"""
import math

import jax
import jax.numpy as jnp

from jaxtok.quantizers import base
from jaxtok.quantizers import vq


def quantizer_dropout_mask(key: jax.Array, batch: int, num_stages: int, rate: float) -> jax.Array:
  """`[batch, num_stages]` float32: 1 for the stages an example keeps (a prefix of random length w.p. `rate`)."""
  drop_key, length_key = jax.random.split(key)
  lengths = jax.random.randint(length_key, (batch,), 1, num_stages + 1)
  lengths = jnp.where(jax.random.bernoulli(drop_key, rate, (batch,)), lengths, num_stages)
  return (jnp.arange(num_stages)[None, :] < lengths[:, None]).astype(jnp.float32)


class ResidualVQ(vq.VQOptions):
  __doc__ = f"""num_stages vector quantizers in residual: `quantizer(x [batch, ..., D], train=False)` -> QuantizerOutput
  with indices `[batch, ..., num_stages]` int32 and `quantized` the sum of the stages' codes.

  Loss: the sum of the stages' losses. Metrics: the stages' metrics averaged, plus "active_stages".

  Attributes:
    num_stages: number of residual stages n.
    shared_codebook: one VectorQuantizer (codebook and state) used by all stages instead of one per stage; its
      state (EMA, usage counter) is then updated once per stage, in stage order.
    quantizer_dropout_rate: probability that a training example uses a random prefix of the stages, drawn from the
      "quantizer" RNG stream; inputs are `[batch, ...]`, the prefix is per batch element.
  and the VectorQuantizer fields, applied to every stage:
{vq.FIELDS_DOC}  """

  num_stages: int = 4
  shared_codebook: bool = False
  quantizer_dropout_rate: float = 0.0

  @property
  def bits_per_token(self) -> float:
    return self.num_stages * math.log2(self.codebook_size)

  def setup(self):
    if self.num_stages < 1:
      raise ValueError(f"ResidualVQ num_stages must be >= 1, got {self.num_stages}.")
    if not 0.0 <= self.quantizer_dropout_rate <= 1.0:
      raise ValueError(f"quantizer_dropout_rate must lie in [0, 1], got {self.quantizer_dropout_rate}.")
    if self.shared_codebook:
      shared = vq.VectorQuantizer(**vq.vq_options(self), name="shared_stage")
      self.stages = [shared] * self.num_stages
    else:
      self.stages = [vq.VectorQuantizer(**vq.vq_options(self), name=f"stage_{i}") for i in range(self.num_stages)]

  def __call__(self, x: jax.Array, *, train: bool = False) -> base.QuantizerOutput:
    """x `[batch, ..., D]` -> QuantizerOutput (see the class docstring)."""
    base.check_input(x, None, "ResidualVQ")
    if x.ndim < 2:
      raise ValueError(f"ResidualVQ expects input [batch, ..., dim], got shape {x.shape}.")
    residual, outputs = x.astype(jnp.float32), []
    for stage in self.stages:
      outputs.append(stage(residual, train=train))
      residual = residual - outputs[-1].quantized.astype(jnp.float32)
    stage_quantized = jnp.stack([output.quantized.astype(jnp.float32) for output in outputs], axis=-1)
    keep = jnp.ones((x.shape[0], self.num_stages), jnp.float32)
    if train and self.quantizer_dropout_rate > 0:
      keep = quantizer_dropout_mask(self.make_rng("quantizer"), x.shape[0], self.num_stages,
                                    self.quantizer_dropout_rate)
    keep_per_element = jnp.reshape(keep, (x.shape[0],) + (1,) * (x.ndim - 1) + (self.num_stages,))
    quantized = jnp.sum(stage_quantized * keep_per_element, axis=-1)
    metrics = {name: jnp.mean(jnp.stack([output.metrics[name] for output in outputs]))
               for name in outputs[0].metrics}
    metrics["active_stages"] = jnp.mean(jnp.sum(keep, axis=-1))
    return base.QuantizerOutput(quantized=quantized.astype(x.dtype),
                                indices=jnp.stack([output.indices for output in outputs], axis=-1),
                                loss=sum(output.loss for output in outputs), metrics=metrics)

  def indices_to_codes(self, indices: jax.Array) -> jax.Array:
    """indices `[..., num_stages]` int -> the sum of the stages' codes `[..., input dim]`."""
    base.check_integer_indices(indices, "ResidualVQ")
    if indices.shape[-1:] != (self.num_stages,):
      raise ValueError(f"ResidualVQ expects indices [..., {self.num_stages}], got shape {indices.shape}.")
    return sum(stage.indices_to_codes(indices[..., i]) for i, stage in enumerate(self.stages))

  def codes_to_indices(self, codes: jax.Array) -> jax.Array:
    """Vectors `[..., dim]` -> indices `[..., num_stages]` by greedy residual lookup, as `__call__` (no codebook_dim).

    A sum of codes need not decompose back into the same stages: greedy lookup of `indices_to_codes(i)` can differ
    from i, so round trips go indices -> codes, while this maps inputs to their indices.
    """
    if self.codebook_dim is not None:
      raise ValueError(f"ResidualVQ.codes_to_indices needs codebook_dim=None (codes in the input space), "
                       f"got codebook_dim={self.codebook_dim}.")
    residual, indices = codes.astype(jnp.float32), []
    for stage in self.stages:
      indices.append(stage.codes_to_indices(residual))
      residual = residual - stage.indices_to_codes(indices[-1])
    return jnp.stack(indices, axis=-1)
