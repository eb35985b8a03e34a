"""Reading official checkpoints as `{name: np.ndarray}` without ever executing pickled code.

- `.safetensors`: parsed here (an 8-byte little-endian header length, a JSON header, then raw little-endian tensor
  bytes), so neither torch nor the safetensors package is needed.
- `.bin` / `.pt` / `.pth` / `.ckpt`: `torch.load(..., weights_only=True)`, which unpickles only tensors and plain
  containers (and, here, `argparse.Namespace`, which some training scripts store beside the weights). torch is an
  optional dependency: `pip install 'jaxtok[torch]'`.
- `.npz`: `np.load(..., allow_pickle=False)` (the test fixtures).

A checkpoint that nests its weights (LlamaGen's `{"model": ..., "args": ...}`, Lightning's `{"state_dict": ...}`) is
unwrapped by `key`, or automatically when exactly one of `NESTED_KEYS` holds the tensors.
"""
import argparse
import json
import pathlib
import struct
from typing import Any

import ml_dtypes
import numpy as np

SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16, "I64": np.int64,
    "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}
TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
NESTED_KEYS = ("model", "state_dict", "module", "ema")


def load_state_dict(path: str | pathlib.Path, key: str | None = None) -> dict[str, np.ndarray]:
  """The tensors of a checkpoint file as NumPy arrays, keyed by their names in the official module.

  Args:
    path: a `.safetensors`, `.bin` / `.pt` / `.pth` / `.ckpt` (torch) or `.npz` file.
    key: the entry holding the weights in a nested checkpoint (e.g. "model"); None unwraps one of `NESTED_KEYS`
      when the top level is not itself a flat dict of tensors.

  Returns:
    `{name: array}` with the stored dtypes (bfloat16 as `ml_dtypes.bfloat16`).
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"No checkpoint file at {path}.")
  suffix = path.suffix.lower()
  if suffix == ".safetensors":
    return _unwrap(read_safetensors(path), key, path)
  if suffix == ".npz":
    with np.load(path, allow_pickle=False) as file:
      return _unwrap({name: file[name] for name in file.files}, key, path)
  if suffix in TORCH_SUFFIXES:
    return _unwrap(_read_torch(path), key, path)
  raise ValueError(f"Unsupported checkpoint format {suffix!r} of {path}; expected .safetensors, .npz or one of "
                   f"{TORCH_SUFFIXES}.")


def read_safetensors(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """Every tensor of a `.safetensors` file, read with NumPy alone."""
  data = pathlib.Path(path).read_bytes()
  if len(data) < 8:
    raise ValueError(f"{path} is too short to be a safetensors file ({len(data)} bytes).")
  (header_length,) = struct.unpack("<Q", data[:8])
  if header_length > len(data) - 8:
    raise ValueError(f"{path}: safetensors header of {header_length} bytes runs past the file's {len(data)} bytes.")
  header = json.loads(data[8:8 + header_length])
  body = memoryview(data)[8 + header_length:]
  tensors = {}
  for name, entry in header.items():
    if name == "__metadata__":
      continue
    if entry["dtype"] not in SAFETENSORS_DTYPES:
      raise ValueError(f"{path}: tensor {name!r} has dtype {entry['dtype']}; supported: {sorted(SAFETENSORS_DTYPES)}.")
    dtype = np.dtype(SAFETENSORS_DTYPES[entry["dtype"]])
    begin, end = entry["data_offsets"]
    expected = int(np.prod(entry["shape"], dtype=np.int64)) * dtype.itemsize
    if end - begin != expected or end > len(body):
      raise ValueError(f"{path}: tensor {name!r} {entry['dtype']}{entry['shape']} needs {expected} bytes, its "
                       f"offsets [{begin}, {end}) give {end - begin} (body {len(body)} bytes).")
    tensors[name] = np.frombuffer(body[begin:end], dtype.newbyteorder("<")).reshape(entry["shape"]).copy()
  return tensors


def _read_torch(path: pathlib.Path) -> Any:
  try:
    import torch  # pylint: disable=g-import-not-at-top  # optional dependency
  except ImportError as error:
    raise ImportError(f"Reading {path.name} needs torch: pip install 'jaxtok[torch]' (or convert the file to "
                      ".safetensors, which needs nothing).") from error
  with torch.serialization.safe_globals([argparse.Namespace]):
    loaded = torch.load(path, map_location="cpu", weights_only=True)
  return _torch_to_numpy(loaded, torch)


def _torch_to_numpy(value: Any, torch: Any) -> Any:
  """Tensors -> NumPy arrays (bfloat16 kept as ml_dtypes.bfloat16) inside nested dicts; other values unchanged."""
  if isinstance(value, torch.Tensor):
    tensor = value.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
      return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()
  if isinstance(value, dict):
    return {name: _torch_to_numpy(item, torch) for name, item in value.items()}
  return value


def _is_flat_tensor_dict(value: Any) -> bool:
  return isinstance(value, dict) and bool(value) and all(isinstance(item, np.ndarray) for item in value.values())


def _unwrap(loaded: Any, key: str | None, path: pathlib.Path) -> dict[str, np.ndarray]:
  """The flat `{name: array}` inside `loaded`: `loaded[key]`, `loaded` itself, or its single nested weights entry."""
  if not isinstance(loaded, dict):
    raise ValueError(f"{path} holds a {type(loaded).__name__}, not a dict of tensors.")
  if key is not None:
    if key not in loaded:
      raise KeyError(f"{path} has no entry {key!r}; its top-level entries: {sorted(loaded)}.")
    loaded = loaded[key]
  elif not _is_flat_tensor_dict(loaded):
    nested = [name for name in NESTED_KEYS if _is_flat_tensor_dict(loaded.get(name))]
    if len(nested) != 1:
      raise ValueError(f"{path} is not a flat dict of tensors and holds weights under {nested or 'none'} of "
                       f"{NESTED_KEYS}; pass key= (top-level entries: {sorted(loaded)}).")
    loaded = loaded[nested[0]]
  if not _is_flat_tensor_dict(loaded):
    raise ValueError(f"The weights of {path} (key {key!r}) are not a flat dict of tensors.")
  return loaded
