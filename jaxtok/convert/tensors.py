"""Bookkeeping shared by the converters: every official tensor is used exactly once, every jaxtok parameter is filled
with the shape the jaxtok model declares, and nothing is left over on either side."""
from typing import Any, Iterable, Mapping

import flax
import flax.linen as nn
import jax
import numpy as np


class OfficialTensors:
  """Hands out each tensor of an official state dict once, as float32 NumPy.

  Args:
    state_dict: `{name: array}` (e.g. from `load_state_dict`).
    dropped: names that are not weights and are discarded if present (e.g. LlamaGen's `freqs_cis`).
    source: what the tensors are, for error messages.
  """

  def __init__(self, state_dict: Mapping[str, np.ndarray], *, dropped: Iterable[str] = (), source: str = "checkpoint"):
    self._remaining = {name: value for name, value in state_dict.items() if name not in set(dropped)}
    self._source = source

  def has(self, name: str) -> bool:
    """Whether `name` is among the tensors not used yet (for optional layers such as shortcut convolutions)."""
    return name in self._remaining

  def take(self, name: str) -> np.ndarray:
    """The tensor `name` as float32, removed from the remaining ones; KeyError naming close names if absent."""
    if name not in self._remaining:
      prefix = name.rsplit(".", 1)[0]
      near = sorted(other for other in self._remaining if other.startswith(prefix))[:8]
      raise KeyError(f"{self._source} has no tensor {name!r} (or it was already used); tensors under "
                     f"{prefix!r}: {near or 'none'}.")
    return np.asarray(self._remaining.pop(name), np.float32)

  def finish(self) -> None:
    """ValueError if any tensor was never used (a checkpoint of another model or size)."""
    if self._remaining:
      names = sorted(self._remaining)
      raise ValueError(f"{len(names)} tensors of the {self._source} were not converted, e.g. {names[:10]}: it does "
                       "not match the requested model.")


def conv_kernel(weight: np.ndarray) -> np.ndarray:
  """torch Conv2d weight `[out, in, kh, kw]` -> flax `[kh, kw, in, out]`."""
  return np.transpose(weight, (2, 3, 1, 0))


def linear_kernel(weight: np.ndarray) -> np.ndarray:
  """torch Linear weight `[out, in]` -> flax Dense kernel `[in, out]` (a transposed view)."""
  return weight.T


def variables_for(model: nn.Module, converted: Mapping[str, Any], *init_args, **init_kwargs) -> dict[str, Any]:
  """The model's variables from `converted` collections (`{"params": ..., ...}`), after checking each against the
  tree the model declares (`jax.eval_shape` of `model.init(key, *init_args, **init_kwargs)`, nothing computed).
  Declared collections not converted (e.g. quantizer usage counters) start at zero. ValueError naming every
  missing, extra or mis-shaped entry."""
  declared = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.key(0), *init_args, **init_kwargs)))
  for name, collection in converted.items():
    flat = lambda tree: {"/".join(path): np.shape(leaf) for path, leaf in flax.traverse_util.flatten_dict(
        dict(tree)).items()}
    expected, given = flat(declared.get(name, {})), flat(collection)
    missing, extra = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    wrong = sorted(key for key in set(expected) & set(given) if expected[key] != given[key])
    if missing or extra or wrong:
      raise ValueError(f"converted {name!r} do not match {type(model).__name__}: missing {missing[:10]}, extra "
                       f"{extra[:10]}, wrong shapes {[(key, given[key], expected[key]) for key in wrong[:10]]}.")
  variables = {name: jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), collection)
               for name, collection in declared.items() if name not in converted}
  return {**{name: dict(collection) for name, collection in converted.items()}, **variables}


def parameter_count(model: nn.Module, *init_args, **init_kwargs) -> int:
  """Number of scalars in the model's "params" collection, from `jax.eval_shape` (no memory, no compute)."""
  declared = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.key(0), *init_args, **init_kwargs)))
  return int(sum(np.prod(leaf.shape, dtype=np.int64) for leaf in jax.tree.leaves(declared["params"])))
