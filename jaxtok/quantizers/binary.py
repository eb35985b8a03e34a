"""What LFQ and BSQ share: sign codes, their entropy regulariser, indices (dense or packed) and usage metrics.

Both quantize each of `dim` channels to `+-scale` (LFQ: scale 1; BSQ: the input is first projected onto the unit
sphere and scale is 1/sqrt(dim)). The entropy terms use softmax(-|z - c|^2 / temperature) over all 2^dim codes c,
which factorises over bits with bit logits `4 * scale * z / temperature`; see `jaxtok.quantizers.entropy`.
"""
import math
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok.nn.normalization import l2_normalize
from jaxtok.quantizers import base
from jaxtok.quantizers import codebook_state
from jaxtok.quantizers import entropy
from jaxtok.quantizers import estimators
from jaxtok.quantizers import packing


def sign_codes(z: jax.Array, scale: float) -> jax.Array:
  """`+scale` where z > 0, `-scale` elsewhere, float32."""
  return jnp.where(z > 0, scale, -scale).astype(jnp.float32)


def binary_entropy_loss(z: jax.Array, scale: float, *, temperature: float, diversity_gamma: float,
                        max_group_bits: int) -> tuple[jax.Array, dict[str, jax.Array]]:
  """z `[N, d]` -> (`per_sample_entropy - diversity_gamma * codebook_entropy`, the two entropies)."""
  bit_logits = 4.0 * scale * z.astype(jnp.float32) / temperature
  per_sample, codebook = entropy.binary_entropy_terms(bit_logits, max_group_bits)
  return per_sample - diversity_gamma * codebook, {"per_sample_entropy": per_sample, "codebook_entropy": codebook}


def grouped_usage_metrics(bits: jax.Array, max_group_bits: int) -> dict[str, jax.Array]:
  """Usage of huge binary codebooks, over the same bit groups as the entropy. bits `[N, d]` bool.

  Returns "perplexity": exp of the summed entropies of the groups' hard code frequencies (an upper bound on the
  joint perplexity), "group_codebook_usage": mean over groups of the fraction of the group's codes hit.
  """
  log_perplexity, usage, start = jnp.zeros(()), [], 0
  sizes = entropy.group_sizes(bits.shape[-1], max_group_bits)
  for size in sizes:
    group = base.usage_metrics(packing.bits_to_indices(bits[:, start:start + size], packed=False), 2**size)
    log_perplexity += jnp.log(group["perplexity"])
    usage.append(group["codebook_usage"])
    start += size
  return {"perplexity": jnp.exp(log_perplexity), "group_codebook_usage": jnp.mean(jnp.stack(usage))}


FIELDS_DOC = """\
    dim: code bits d (2^d codes).
    input_dim: when set and different from dim, dense projections map input_dim -> dim -> input_dim.
    commitment_cost: weight of `|z - sg(code)|^2` (mean over elements).
    entropy_cost: weight of `per_sample_entropy - diversity_gamma * codebook_entropy` (0 disables it).
    diversity_gamma: weight of the codebook entropy inside the entropy term.
    entropy_temperature: temperature of softmax(-distance / temperature) over the codes.
    entropy_group_bits: codebook entropy is exact over groups of at most this many bits g (exact for d <= g);
      it costs a `[tokens, 2^g]` table per group, so for d in the hundreds prefer g = 8 (16 groups for 128 bits).
    packed_indices: indices as uint32 words `[..., ceil(d / 32)]` (needed for d > 31) instead of int32 `[...]`.
    usage_window: steps over which "window_codebook_usage" counts a code as used (d <= 20 only).
  No RNG. State: "quantizer"/steps_since_used `[2^d]` and usage_steps `[]` when d <= 20 and indices are dense.
"""
CALL_DOC = """\
  `quantizer(x, train=False)`: x `[..., input_dim or dim]` float -> QuantizerOutput with `quantized` of x's shape and
  dtype, `indices` int32 `[...]` (uint32 words `[..., ceil(dim / 32)]` when packed_indices), `loss` (commitment +
  entropy terms, weighted) and `metrics` ("perplexity", "codebook_usage", "window_codebook_usage", the entropies).
"""


class BinaryQuantizer(nn.Module):
  __doc__ = f"""Fields and methods of LFQ and BSQ (see their docstrings); subclasses set `on_sphere`.

  Attributes:
{FIELDS_DOC}  """

  on_sphere: ClassVar[bool] = False

  dim: int
  input_dim: int | None = None
  commitment_cost: float = 0.25
  entropy_cost: float = 0.1
  diversity_gamma: float = 1.0
  entropy_temperature: float = 0.01
  entropy_group_bits: int = 12
  packed_indices: bool = False
  usage_window: int = 100

  @property
  def codebook_size(self) -> int | None:
    return 2**self.dim if self.dim <= packing.MAX_DENSE_BITS else None

  @property
  def bits_per_token(self) -> float:
    return float(self.dim)

  @property
  def code_scale(self) -> float:
    return 1.0 / math.sqrt(self.dim) if self.on_sphere else 1.0

  @property
  def _projects(self) -> bool:
    return self.input_dim is not None and self.input_dim != self.dim

  def _check_options(self) -> None:
    if self.dim < 1:
      raise ValueError(f"{type(self).__name__} dim must be >= 1, got {self.dim}.")
    if not self.packed_indices:
      packing.check_dense_bits(self.dim, type(self).__name__)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> base.QuantizerOutput:
    """x `[..., input_dim or dim]` -> QuantizerOutput; `train=True` with "quantizer" mutable updates usage state."""
    self._check_options()
    base.check_input(x, self.input_dim or self.dim, type(self).__name__)
    z = x.astype(jnp.float32)
    z = base.project(self, "project_in", z, self.dim) if self._projects else z
    if self.on_sphere:
      z = l2_normalize(z)
    codes = sign_codes(z, self.code_scale)
    flat_z = jnp.reshape(z, (-1, self.dim))
    loss = self.commitment_cost * jnp.mean((z - jax.lax.stop_gradient(codes))**2)
    metrics = {}
    if self.entropy_cost:
      entropy_loss, metrics = binary_entropy_loss(flat_z, self.code_scale, temperature=self.entropy_temperature,
                                                  diversity_gamma=self.diversity_gamma,
                                                  max_group_bits=self.entropy_group_bits)
      loss += self.entropy_cost * entropy_loss
    indices = packing.bits_to_indices(z > 0, packed=self.packed_indices)
    metrics.update(self._usage_metrics(flat_z > 0, indices, train))
    quantized = estimators.straight_through(z, codes)
    quantized = base.project(self, "project_out", quantized, x.shape[-1]) if self._projects else quantized
    return base.QuantizerOutput(quantized=quantized.astype(x.dtype), indices=indices, loss=loss, metrics=metrics)

  def _usage_metrics(self, bits: jax.Array, indices: jax.Array, train: bool) -> dict[str, jax.Array]:
    if self.packed_indices or 2**self.dim > codebook_state.MAX_TRACKED_CODES:
      return grouped_usage_metrics(bits, self.entropy_group_bits)
    counts = base.code_histogram(indices, 2**self.dim)
    _, window = codebook_state.track_usage(self, counts, window=self.usage_window,
                                           update=base.updates_state(self, train))
    return {**base.usage_metrics(indices, 2**self.dim), **window}

  def indices_to_codes(self, indices: jax.Array) -> jax.Array:
    """Indices (int32 `[...]`, or uint32 `[..., ceil(d / 32)]` when packed) -> quantized vectors `[..., input dim]`."""
    base.check_integer_indices(indices, type(self).__name__)
    bits = packing.indices_to_bits(indices, self.dim, packed=self.packed_indices)
    codes = sign_codes(bits, self.code_scale)
    return base.project_stored(self, "project_out", codes) if self._projects else codes

  def codes_to_indices(self, codes: jax.Array) -> jax.Array:
    """Codes `[..., d]` (before any projection; the sign of each channel is its bit) -> indices."""
    base.check_input(codes, self.dim, f"{type(self).__name__}.codes_to_indices")
    return packing.bits_to_indices(codes > 0, packed=self.packed_indices)
