"""Autoregressive generator on the embedded photos: a small class-conditional causal transformer trained on the
quickstart tokenizer's tokens, read left to right (raster order for a 2D grid). The same data, budget and fields as
`maskgit_photos.py` (so the two compare directly) with `model_name = "autoregressive"`; the sampling section's
temperature, top_k, top_p and guidance_scale apply, its masked-decoding fields are ignored.

  python -m jaxtok.main --config=experiments/quickstart.py --workdir=workdirs/quickstart
  python -m jaxtok.main --config=experiments/ar_photos.py --workdir=workdirs/ar_photos
  python -m jaxtok.sample --config=experiments/ar_photos.py --workdir=workdirs/ar_photos

Speculative decoding of such a model (a smaller draft trained the same way) is benchmarked by
`benchmarks/speculative.py --tokens=workdirs/ar_photos/tokens/train.npz`.
"""
import importlib.util
import pathlib

import ml_collections


def _maskgit_photos_config(arg: str | None) -> ml_collections.ConfigDict:
  """get_config of the sibling maskgit_photos.py (config files are loaded by path, not as a package)."""
  spec = importlib.util.spec_from_file_location("maskgit_photos", pathlib.Path(__file__).with_name("maskgit_photos.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  if arg not in (None, "", "smoke"):
    raise ValueError(f"Unknown ar_photos argument {arg!r}; expected nothing or 'smoke'.")
  config = _maskgit_photos_config(arg or None)
  config.model_name = "autoregressive"
  config.train.label_smoothing = 0.0
  return config
