"""The one pattern every kernel op follows (openxla/tokamax's `Op`, lighter).

An `Op` is an XLA reference plus Pallas `Backend`s. Each backend says, for a lowering platform and a problem (say
`dim=32, dtype=float32`), why it cannot run (`unavailable_reason`, None when it can), and takes a frozen
`BlockSizes` config that it fills with defaults and validates before lowering. `Op.resolve(implementation,
**problem)` turns the user's `implementation=` into one function with the reference's signature:

- `None`: every usable kernel is staged with `jax.lax.platform_dependent`, the reference as the default branch, so
  one traced program lowers to Triton on cuda, Mosaic on tpu and the reference on cpu. The choice is made for the
  platform being lowered for (`jax.export`, AOT lowering), not by the default backend at trace time.
- `'xla'`: the reference.
- a backend's name: its kernel on the platforms where it can run. Lowering it anywhere else raises
  `NotImplementedError` with the backend's reason; when the reason holds on every platform (say a head size too
  large for any of them) it raises at once, in the function the user called.
"""
import dataclasses
from typing import Any, Callable, Mapping

import jax
from jax.extend import core
from jax.interpreters import mlir

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
REFERENCE = "xla"


@dataclasses.dataclass(frozen=True)
class BlockSizes:
  """Base of every backend's launch configuration: frozen (a hashable static argument) and validated before lowering."""

  def validate(self) -> None:
    """Raises ValueError naming the field, the rule and the value for any size the backend cannot tile."""


def require_power_of_two(config: BlockSizes, names: tuple[str, ...], minimum: int) -> None:
  """ValueError unless each named field of `config` is a power of two >= minimum."""
  for name in names:
    value = getattr(config, name)
    if value < minimum or value & (value - 1):
      raise ValueError(f"{name} must be a power of two >= {minimum}, got {value}")


def require_multiple(config: BlockSizes, names: tuple[str, ...], multiple: int) -> None:
  """ValueError unless each named field of `config` is a positive multiple of `multiple`."""
  for name in names:
    value = getattr(config, name)
    if value <= 0 or value % multiple:
      raise ValueError(f"{name} must be a positive multiple of {multiple} ({name} % {multiple} == 0), got {value}")


@dataclasses.dataclass(frozen=True)
class Backend:
  """One Pallas implementation of an op.

  Attributes:
    name: the `implementation=` value that selects it.
    platforms: lowering platforms it compiles for (`'cuda'`, `'tpu'`).
    kernel: same contract as the op's reference, plus keyword `block_sizes` (None: the backend's defaults).
    block_sizes: its `BlockSizes` subclass.
    unavailable_reason: `(platform, **problem) -> str | None`, why it cannot run there for this problem.
  """
  name: str
  platforms: tuple[str, ...]
  kernel: Callable[..., Any]
  block_sizes: type[BlockSizes]
  unavailable_reason: Callable[..., str | None]


@dataclasses.dataclass(frozen=True)
class Op:
  """A kernel op: its reference, its backends and, per lowering platform, the backends to try, fastest first."""
  name: str
  reference: Callable[..., Any]
  backends: tuple[Backend, ...]
  preferred: Mapping[str, tuple[str, ...]]

  @property
  def implementations(self) -> tuple[str, ...]:
    return (REFERENCE, *(backend.name for backend in self.backends))

  def backend(self, name: str) -> Backend:
    return next(backend for backend in self.backends if backend.name == name)

  def unavailable_reason(self, implementation: str, platform: str, **problem) -> str | None:
    """Why `implementation` cannot run when lowering for `platform`, or None (the reference runs everywhere)."""
    self._check_name(implementation)
    if implementation == REFERENCE:
      return None
    backend = self.backend(implementation)
    reason = backend.unavailable_reason(platform, **problem)
    if reason is None and platform not in backend.platforms:
      return f"{implementation} compiles for {' / '.join(backend.platforms)} only, not for {platform}"
    return reason

  def resolve(self, implementation: str | None, block_sizes: BlockSizes | None = None,
              **problem) -> Callable[..., Any]:
    """The function `implementation` means here, with the reference's signature (see the module docstring).

    Array arguments are passed positionally; keyword arguments (static values, masks) are closed over.
    """
    if implementation is None:
      if block_sizes is not None:
        raise ValueError(f"{self.name}: block_sizes needs an explicit implementation, got implementation=None")
      return self._platform_dependent(self._preferred_kernels(problem), self.reference)
    self._check_name(implementation)
    if implementation == REFERENCE:
      if block_sizes is not None:
        raise ValueError(f"{self.name}: implementation='xla' takes no block_sizes, got {block_sizes}")
      return self.reference
    backend = self.backend(implementation)
    kernel = self._configured(backend, block_sizes)
    reasons = {platform: self.unavailable_reason(implementation, platform, **problem) for platform in PLATFORMS}
    kernels = {platform: kernel for platform in backend.platforms if reasons[platform] is None}
    if not kernels:
      raise NotImplementedError(f"{self.name} implementation={implementation!r} cannot run: "
                                + "; ".join(reasons[platform] for platform in backend.platforms))
    refusal = _refusal(self.reference, f"{self.name} implementation={implementation!r}",
                       tuple((p, reason) for p, reason in reasons.items() if reason is not None))
    return self._platform_dependent(kernels, refusal)

  def _check_name(self, implementation: str) -> None:
    if implementation not in self.implementations:
      raise ValueError(f"implementation must be None or one of {self.implementations}, got {implementation!r}")

  def _preferred_kernels(self, problem) -> dict[str, Callable[..., Any]]:
    """Per platform, the kernel of the first preferred backend that can run the problem there."""
    kernels = {}
    for platform, names in self.preferred.items():
      usable = [name for name in names if self.unavailable_reason(name, platform, **problem) is None]
      if usable:
        kernels[platform] = self.backend(usable[0]).kernel
    return kernels

  def _configured(self, backend: Backend, block_sizes: BlockSizes | None) -> Callable[..., Any]:
    if block_sizes is None:
      return backend.kernel
    if not isinstance(block_sizes, backend.block_sizes):
      raise ValueError(f"{self.name} implementation={backend.name!r} takes block_sizes of type "
                       f"{backend.block_sizes.__module__}.{backend.block_sizes.__qualname__}, got {block_sizes!r}")
    block_sizes.validate()
    return _with_block_sizes(backend.kernel, block_sizes)

  @staticmethod
  def _platform_dependent(kernels: dict[str, Callable[..., Any]], default: Callable[..., Any]) -> Callable[..., Any]:
    if not kernels:
      return default

    def call(*arrays, **options):
      bound = {}  # one branch per distinct function, so platforms sharing a kernel share its traced branch
      branch = lambda fn: bound.setdefault(fn, lambda *a: fn(*a, **options))
      return jax.lax.platform_dependent(*arrays, default=branch(default),
                                        **{platform: branch(fn) for platform, fn in kernels.items()})

    return call


def _with_block_sizes(kernel: Callable[..., Any], block_sizes: BlockSizes) -> Callable[..., Any]:
  return lambda *arrays, **options: kernel(*arrays, block_sizes=block_sizes, **options)


# An operation standing for a kernel that cannot run on the platform it is lowered for: its lowering raises.
_unavailable_p = core.Primitive("kernel_unavailable")
_unavailable_p.multiple_results = True
_unavailable_p.def_abstract_eval(lambda *, out_avals, label, reasons: out_avals)
_unavailable_p.def_impl(lambda **params: jax.jit(lambda: _unavailable_p.bind(**params))())


def _raise_unavailable(ctx, *, out_avals, label, reasons):
  del out_avals
  by_platform = dict(reasons)
  lowering = [p for p in ctx.module_context.platforms if p in by_platform] or list(ctx.module_context.platforms)
  details = "; ".join(by_platform.get(p, f"no kernel for {p}") for p in lowering)
  raise NotImplementedError(f"{label} cannot run when lowering for {', '.join(lowering)}: {details}")


mlir.register_lowering(_unavailable_p, _raise_unavailable)


def _refusal(reference: Callable[..., Any], label: str, reasons: tuple[tuple[str, str], ...]) -> Callable[..., Any]:
  """A function with the reference's outputs whose lowering raises NotImplementedError with the platform's reason."""

  def refuse(*arrays, **options):
    shapes = jax.eval_shape(lambda *a: reference(*a, **options), *arrays)
    leaves, tree = jax.tree.flatten(shapes)
    out_avals = tuple(jax.core.ShapedArray(leaf.shape, leaf.dtype) for leaf in leaves)
    return jax.tree.unflatten(tree, _unavailable_p.bind(out_avals=out_avals, label=label, reasons=reasons))

  return refuse
