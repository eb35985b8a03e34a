"""A converted model on disk: one `.npz` holding its variables (flattened, "collection/a/b" keys) and, under
"__model__", the module's class and fields as JSON, so `load_converted` rebuilds both without the official code."""
import dataclasses
import importlib
import json
import pathlib
from typing import Any

import flax.linen as nn
import flax.traverse_util
import numpy as np

MODEL_KEY = "__model__"


def model_spec(model: nn.Module) -> dict[str, Any]:
  """`{"class": "module:Class", "fields": {...}}` of a linen module whose fields are JSON values."""
  fields = {field.name: getattr(model, field.name) for field in dataclasses.fields(model)
            if field.name not in ("parent", "name")}
  return {"class": f"{type(model).__module__}:{type(model).__qualname__}", "fields": fields}


def save_converted(path: str | pathlib.Path, model: nn.Module, variables: dict[str, Any]) -> pathlib.Path:
  """Writes `variables` and the model's spec to `path` (`.npz`); returns the path."""
  path = pathlib.Path(path)
  flat = flax.traverse_util.flatten_dict(variables, sep="/")
  arrays = {name: np.asarray(value) for name, value in flat.items()}
  arrays[MODEL_KEY] = np.asarray(json.dumps(model_spec(model)))
  with path.open("wb") as file:
    np.savez(file, **arrays)
  return path


def _tuples(value: Any) -> Any:
  """JSON lists back to the tuples linen fields hold (e.g. channel_multipliers)."""
  return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def load_converted(path: str | pathlib.Path) -> tuple[nn.Module, dict[str, Any]]:
  """The `(model, variables)` that `save_converted` (or `python -m jaxtok.convert`) wrote to `path`."""
  with np.load(path, allow_pickle=False) as data:
    if MODEL_KEY not in data.files:
      raise ValueError(f"{path} has no {MODEL_KEY!r} entry: it was not written by jaxtok.convert.save_converted.")
    spec = json.loads(str(data[MODEL_KEY]))
    variables = flax.traverse_util.unflatten_dict({name: data[name] for name in data.files if name != MODEL_KEY},
                                                  sep="/")
  module_name, class_name = spec["class"].split(":")
  if module_name.split(".")[0] != "jaxtok":
    raise ValueError(f"{path} names the model class {spec['class']!r}; only jaxtok modules are imported.")
  cls = getattr(importlib.import_module(module_name), class_name)
  return cls(**{name: _tuples(value) for name, value in spec["fields"].items()}), variables
