"""Vector quantization (VQ-VAE) with the options of its successors: cosine / factorized codes (ViT-VQGAN), EMA
codebooks, k-means initialisation, dead-code restart, the rotation trick and an entropy penalty.

State (collection "quantizer", updated only when it is mutable and `train=True`, never during `init`):
  steps_since_used `[K]`: training steps since each code was last hit (windowed usage, dead-code restart; a
    restarted code starts again at 0, so it counts as used for one `usage_window`).
  usage_steps: training steps counted (int32 scalar), so that windowed usage counts only codes actually hit.
  codebook, cluster_size, embed_sum (use_ema): the EMA codebook and its statistics.
  codebook_offset `[K, D]` (learned codebook with kmeans_init or dead-code restart): the codebook in use is
    `params["codebook"] + codebook_offset`, so re-seeding a code moves it at once while its gradient still trains
    the parameter.
  initialized (kmeans_init): whether the first training batch has seeded the codebook.
RNG: stream "quantizer" (k-means seeding, dead-code restart), only when those are on and state is updated.
All statistics reduce over the global batch (see `codebook_state`).
"""
import math

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtok.kernels.codebook_lookup import codebook_lookup
from jaxtok.nn.normalization import l2_normalize
from jaxtok.quantizers import base
from jaxtok.quantizers import codebook_state
from jaxtok.quantizers import entropy
from jaxtok.quantizers import estimators
from jaxtok.quantizers import kmeans

DISTANCES = ("l2", "cosine")


def vq_loss(z: jax.Array, codes: jax.Array, *, commitment_cost: float, codebook_cost: float) -> jax.Array:
  """`commitment_cost * |z - sg(codes)|^2 + codebook_cost * |sg(z) - codes|^2`, means over `[N, D]`, float32."""
  z, codes = z.astype(jnp.float32), codes.astype(jnp.float32)
  commitment = jnp.mean((z - jax.lax.stop_gradient(codes))**2)
  codebook = jnp.mean((jax.lax.stop_gradient(z) - codes)**2)
  return commitment_cost * commitment + codebook_cost * codebook


def pairwise_distances(z: jax.Array, codebook: jax.Array, distance: str) -> jax.Array:
  """z `[N, D]`, codebook `[K, D]` -> `[N, K]` float32: squared euclidean, or 1 - cos."""
  z, codebook = z.astype(jnp.float32), codebook.astype(jnp.float32)
  if distance == "cosine":
    return 1.0 - l2_normalize(z) @ l2_normalize(codebook).T
  return jnp.sum(z * z, -1, keepdims=True) - 2.0 * z @ codebook.T + jnp.sum(codebook * codebook, -1)


def check_vq_options(options) -> None:
  """Raises ValueError for an invalid field of a VQOptions module."""
  if options.codebook_size < 1:
    raise ValueError(f"codebook_size must be >= 1, got {options.codebook_size}.")
  if options.codebook_dim is not None and options.codebook_dim < 1:
    raise ValueError(f"codebook_dim must be None or >= 1, got {options.codebook_dim}.")
  if options.distance not in DISTANCES:
    raise ValueError(f"distance must be one of {DISTANCES}, got {options.distance!r}.")
  if options.estimator not in estimators.ESTIMATORS:
    raise ValueError(f"estimator must be one of {estimators.ESTIMATORS}, got {options.estimator!r}.")
  if not 0.0 <= options.ema_decay < 1.0:
    raise ValueError(f"ema_decay must lie in [0, 1), got {options.ema_decay}.")


FIELDS_DOC = """\
    codebook_size: number of codes K.
    codebook_dim: when set, inputs are projected to this dimension for the lookup and back after it (factorized
      codes, ViT-VQGAN); otherwise codes have the input's dimension.
    distance: 'l2' (squared euclidean) or 'cosine' (inputs and codes l2-normalised; quantized vectors are unit).
    commitment_cost: beta, weight of `|z - sg(code)|^2`.
    codebook_cost: weight of `|sg(z) - code|^2` (learned codebook only; ignored with use_ema).
    use_ema: learn the codebook by exponential moving averages instead of by loss.
    ema_decay, ema_epsilon: EMA decay and Laplace smoothing of the counts.
    kmeans_init: seed the codebook by k-means++ and `kmeans_iterations` Lloyd steps on the first training batch.
    kmeans_iterations: Lloyd steps of that seeding.
    dead_code_window: re-seed codes unused for this many training steps from batch vectors (0: never).
    usage_window: steps over which the "window_codebook_usage" metric counts a code as used.
    estimator: gradient to the input, 'ste' (straight-through) or 'rotation' (the rotation trick).
    entropy_cost: weight of `per_sample_entropy - codebook_entropy` over softmax(-distance / entropy_temperature)
      (builds the `[N, K]` distances; 0 disables it).
    entropy_temperature: temperature of that softmax.
    lookup_impl: `implementation=` of `jaxtok.kernels.codebook_lookup` (None: fastest available).
"""


class VQOptions(nn.Module):
  __doc__ = f"""The fields of a vector quantizer, shared by VectorQuantizer, ResidualVQ and GroupedVQ.

  Attributes:
{FIELDS_DOC}  """

  codebook_size: int
  codebook_dim: int | None = None
  distance: str = "l2"
  commitment_cost: float = 0.25
  codebook_cost: float = 1.0
  use_ema: bool = False
  ema_decay: float = 0.99
  ema_epsilon: float = 1e-5
  kmeans_init: bool = False
  kmeans_iterations: int = 10
  dead_code_window: int = 0
  usage_window: int = 100
  estimator: str = "ste"
  entropy_cost: float = 0.0
  entropy_temperature: float = 1.0
  lookup_impl: str | None = None


def vq_options(module: VQOptions) -> dict:
  """The VQOptions fields of `module`, to build VectorQuantizer stages or groups with the same settings."""
  return {name: getattr(module, name) for name in VQOptions.__dataclass_fields__ if name not in ("parent", "name")}


class VectorQuantizer(VQOptions):
  __doc__ = f"""Nearest-code quantizer (VQ-VAE and the options of its successors, see the module docstring).

  `quantizer(x, train=False)`: x `[..., D]` float -> QuantizerOutput with `quantized` `[..., D]` (x's dtype),
  `indices` `[...]` int32, `loss` (commitment + codebook terms, weighted) and `metrics` ("perplexity",
  "codebook_usage", "window_codebook_usage", "quantization_error", ...). Training updates (EMA codebook, usage
  counters, k-means seeding, dead-code restart) need `train=True` with the "quantizer" collection mutable; k-means
  and dead-code restart draw from the "quantizer" RNG stream.

  Example:
    vq = VectorQuantizer(codebook_size=512)
    variables = vq.init(jax.random.key(0), x)
    out = vq.apply(variables, x)                                # out.indices [...]
    out, state = vq.apply(variables, x, train=True, mutable=["quantizer"])

  Attributes:
{FIELDS_DOC}  """

  @property
  def bits_per_token(self) -> float:
    return math.log2(self.codebook_size)

  @property
  def _keeps_offset(self) -> bool:
    return not self.use_ema and (self.kmeans_init or self.dead_code_window > 0)

  def _stored_input_dim(self) -> int | None:
    if self.codebook_dim is not None:
      kernel = self.get_variable("params", "project_in_kernel")
      return None if kernel is None else kernel.shape[0]
    codebook = nn.unbox(self.get_variable("quantizer" if self.use_ema else "params", "codebook"))
    return None if codebook is None else codebook.shape[1]

  def _codebook_variables(self, dim: int):
    """Creates (on init) and returns (codebook variable or param, offset variable or None)."""
    initializer = nn.initializers.variance_scaling(1.0, "fan_in", "uniform", in_axis=-1, out_axis=-2)
    shape = (self.codebook_size, dim)
    if self.use_ema:
      codebook = self.variable("quantizer", "codebook", lambda: initializer(self.make_rng("params"), shape))
      self.variable("quantizer", "cluster_size", jnp.ones, (self.codebook_size,), jnp.float32)
      self.variable("quantizer", "embed_sum", lambda: codebook.value)
      return codebook, None
    param = self.param("codebook", nn.with_logical_partitioning(initializer, ("codebook", None)), shape, jnp.float32)
    offset = self.variable("quantizer", "codebook_offset", jnp.zeros, shape, jnp.float32) if self._keeps_offset \
        else None
    return param, offset

  def _current_codebook(self) -> jax.Array:
    """The codebook in use, `[K, codebook dim]` float32, read from a bound module."""
    if self.use_ema:
      return self.get_variable("quantizer", "codebook")
    codebook = nn.unbox(self.get_variable("params", "codebook"))  # boxed with its logical axes during init
    return codebook + self.get_variable("quantizer", "codebook_offset") if self._keeps_offset else codebook

  def _lookup_space(self, codebook: jax.Array) -> jax.Array:
    return l2_normalize(codebook) if self.distance == "cosine" else codebook

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> base.QuantizerOutput:
    """x `[..., D]` -> QuantizerOutput; `train=True` with "quantizer" mutable updates the codebook state."""
    check_vq_options(self)
    base.check_input(x, self._stored_input_dim(), type(self).__name__)
    z = einops.rearrange(x, "... d -> (...) d").astype(jnp.float32)
    if self.codebook_dim is not None:
      z = base.project(self, "project_in", z, self.codebook_dim)
    z = l2_normalize(z) if self.distance == "cosine" else z
    update = base.updates_state(self, train)
    codebook = self._codebook_in_use(z, update)
    lookup_codebook = self._lookup_space(codebook)
    indices = codebook_lookup(jax.lax.stop_gradient(z), jax.lax.stop_gradient(lookup_codebook),
                              distance=self.distance, implementation=self.lookup_impl)
    codes = lookup_codebook[indices]
    loss = vq_loss(z, codes, commitment_cost=self.commitment_cost,
                   codebook_cost=0.0 if self.use_ema else self.codebook_cost)
    metrics = {**base.usage_metrics(indices, self.codebook_size),
               "quantization_error": jnp.mean(jnp.sum((z - jax.lax.stop_gradient(codes))**2, axis=-1))}
    if self.entropy_cost:
      per_sample, codebook_entropy = entropy.entropy_terms(
          -pairwise_distances(z, lookup_codebook, self.distance) / self.entropy_temperature)
      loss += self.entropy_cost * (per_sample - codebook_entropy)
      metrics.update(per_sample_entropy=per_sample, codebook_entropy=codebook_entropy)
    metrics.update(self._update_statistics(z, indices, update))
    quantized = estimators.apply_estimator(self.estimator, z, codes)
    if self.codebook_dim is not None:
      quantized = base.project(self, "project_out", quantized, x.shape[-1])
    return base.QuantizerOutput(quantized=jnp.reshape(quantized, x.shape).astype(x.dtype),
                                indices=jnp.reshape(indices, x.shape[:-1]), loss=loss, metrics=metrics)

  def _codebook_in_use(self, z: jax.Array, update: bool) -> jax.Array:
    """The codebook for this batch; on the first training batch with kmeans_init, k-means centroids of z."""
    codebook, offset = self._codebook_variables(z.shape[-1])
    current = codebook.value if self.use_ema else codebook + (offset.value if offset is not None else 0.0)
    if not self.kmeans_init:
      return current
    initialized = self.variable("quantizer", "initialized", lambda: jnp.zeros((), bool))
    if not update:
      return current
    key = self.make_rng("quantizer")
    seeded = jax.lax.cond(
        initialized.value, lambda: current,
        lambda: kmeans.kmeans(key, z, self.codebook_size, iterations=self.kmeans_iterations, distance=self.distance,
                              lookup_impl=self.lookup_impl))
    self._store_codebook(seeded, ~initialized.value)
    initialized.value = jnp.ones((), bool)
    return seeded

  def _store_codebook(self, new_codebook: jax.Array, replaced) -> None:
    """Writes `new_codebook` `[K, D]` as the codebook in use; EMA statistics restart at rows `replaced` (`[K]`)."""
    replaced = jnp.broadcast_to(replaced, (self.codebook_size,))
    if self.use_ema:
      cluster_size = self.get_variable("quantizer", "cluster_size")
      embed_sum = self.get_variable("quantizer", "embed_sum")
      self.put_variable("quantizer", "codebook", new_codebook)
      self.put_variable("quantizer", "embed_sum", jnp.where(replaced[:, None], new_codebook, embed_sum))
      self.put_variable("quantizer", "cluster_size", jnp.where(replaced, 1.0, cluster_size))
    else:
      param = jax.lax.stop_gradient(nn.unbox(self.get_variable("params", "codebook")))
      self.put_variable("quantizer", "codebook_offset", new_codebook - param)

  def _update_statistics(self, z: jax.Array, indices: jax.Array, update: bool) -> dict[str, jax.Array]:
    """EMA step, usage counter and dead-code restart (when `update`); returns the windowed usage metric."""
    z = jax.lax.stop_gradient(z)
    if update and self.use_ema:
      cluster_size, embed_sum, codebook = codebook_state.ema_codebook_update(
          self.get_variable("quantizer", "cluster_size"), self.get_variable("quantizer", "embed_sum"), z, indices,
          decay=self.ema_decay, epsilon=self.ema_epsilon)
      for name, value in (("cluster_size", cluster_size), ("embed_sum", embed_sum), ("codebook", codebook)):
        self.put_variable("quantizer", name, value)
    counts = base.code_histogram(indices, self.codebook_size)
    steps, metrics = codebook_state.track_usage(self, counts, window=self.usage_window, update=update)
    if update and self.dead_code_window > 0:
      dead = codebook_state.dead_codes(steps, self.dead_code_window)
      restarted = codebook_state.restart_dead_codes(self.make_rng("quantizer"), self._current_codebook(), dead, z)
      self._store_codebook(restarted, dead)
      self.put_variable("quantizer", "steps_since_used", jnp.where(dead, 0, steps))
      metrics["restarted_codes"] = jnp.sum(dead.astype(jnp.float32))
    return metrics

  def indices_to_codes(self, indices: jax.Array) -> jax.Array:
    """indices `[...]` int -> the quantized vectors `[..., input dim]` (through project_out when factorized)."""
    base.check_integer_indices(indices, type(self).__name__)
    codes = self._lookup_space(self._current_codebook())[indices]
    return base.project_stored(self, "project_out", codes) if self.codebook_dim is not None else codes

  def codes_to_indices(self, codes: jax.Array) -> jax.Array:
    """codes `[..., codebook dim]` in the lookup space (before project_out) -> nearest code indices `[...]` int32."""
    codebook = self._lookup_space(self._current_codebook())
    base.check_input(codes, codebook.shape[-1], f"{type(self).__name__}.codes_to_indices")
    flat = einops.rearrange(codes, "... d -> (...) d")
    indices = codebook_lookup(flat, codebook, distance=self.distance, implementation=self.lookup_impl)
    return jnp.reshape(indices, codes.shape[:-1])
