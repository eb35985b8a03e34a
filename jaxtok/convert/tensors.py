"""Bookkeeping of a conversion: every official tensor is consumed exactly once, with the shape it must have, and the
converted parameters fill the jaxtok model's tree exactly.

A converter reads tensors with `OfficialTensors.take(name, shape)` and, once done, calls `finish()`, which raises
for any tensor it did not read; `take` raises for a missing name or a wrong shape. `place(tree, path, value)` builds
the nested parameter dict, and `check_against(params, abstract)` compares it with the model's own
`jax.eval_shape(model.init, ...)` parameters (missing / extra / mis-shaped leaves raise, named by path).
"""
from typing import Any, Mapping, Sequence

import jax
import numpy as np


class ConversionError(ValueError):
  """An official checkpoint does not fit the model it is converted to (names what is missing, extra or mis-shaped)."""


class OfficialTensors:
  """The tensors of an official state dict, each to be taken once.

  Args:
    state_dict: `{name: array}` (e.g. from `jaxtok.convert.load_state_dict`).
    source: what the tensors are, for error messages (e.g. "TiTok-L-32 checkpoint").
    ignore: names present in some official checkpoints that carry no parameters (buffers), dropped up front.
  """

  def __init__(self, state_dict: Mapping[str, np.ndarray], source: str, ignore: Sequence[str] = ()):
    self._remaining = {name: value for name, value in state_dict.items() if name not in ignore}
    self._taken: set[str] = set()
    self.source = source

  def take(self, name: str, shape: Sequence[int] | None = None) -> np.ndarray:
    """The tensor `name` as float32 NumPy, removed from the remaining ones; `shape` (if given) must match."""
    if name not in self._remaining:
      reason = "was already consumed" if name in self._taken else "is missing"
      raise ConversionError(f"{self.source}: tensor {name!r} {reason}.")
    value = np.asarray(self._remaining.pop(name), np.float32)
    self._taken.add(name)
    if shape is not None and tuple(value.shape) != tuple(shape):
      raise ConversionError(f"{self.source}: tensor {name!r} has shape {tuple(value.shape)}, expected "
                            f"{tuple(shape)}.")
    return value

  def has(self, name: str) -> bool:
    return name in self._remaining

  def names_with_prefix(self, prefix: str) -> list[str]:
    return sorted(name for name in self._remaining if name.startswith(prefix))

  def finish(self) -> None:
    """Raises ConversionError naming every tensor that no converter step consumed."""
    if self._remaining:
      names = sorted(self._remaining)
      shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
      raise ConversionError(f"{self.source}: unexpected tensors no jaxtok parameter takes: {shown}.")


def place(tree: dict, path: str, value: Any) -> None:
  """Sets `tree[a][b][c] = value` for `path` "a/b/c", creating the inner dicts; a path set twice raises."""
  *parents, leaf = path.split("/")
  for key in parents:
    tree = tree.setdefault(key, {})
  if leaf in tree:
    raise ConversionError(f"jaxtok parameter {path} set twice.")
  tree[leaf] = value


def check_against(params: Mapping[str, Any], abstract: Mapping[str, Any], model_name: str) -> None:
  """Raises ConversionError unless `params` has exactly `abstract`'s leaves, with its shapes (paths "a/b/c")."""
  flatten = lambda tree: {"/".join(str(getattr(k, "key", k)) for k in path): leaf
                          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}
  got, want = flatten(params), flatten(abstract)
  missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
  if missing or extra:
    raise ConversionError(f"{model_name}: converted parameters do not match the model: missing {missing}, "
                          f"extra {extra}.")
  wrong = [f"{path} {tuple(np.shape(got[path]))} (model: {tuple(want[path].shape)})" for path in sorted(want)
           if tuple(np.shape(got[path])) != tuple(want[path].shape)]
  if wrong:
    raise ConversionError(f"{model_name}: converted parameters with the wrong shape: {', '.join(wrong)}.")
