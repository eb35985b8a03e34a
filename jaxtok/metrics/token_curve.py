"""Quality against number of tokens for flexible-length 1D tokenizers: PSNR at k = 1, 2, 4, ..., K, as JSON and PNG."""
import json
import pathlib
from typing import Any, Iterable

import flax.linen as nn
import jax
import numpy as np

from jaxtok.metrics import image_quality
from jaxtok.tokenizers import flexible


def make_prefix_psnr_fn(model: nn.Module):
  """Jitted `(params, model_state, images, num_tokens) -> per-image PSNR [batch]` of the k-token reconstruction."""

  def prefix_psnr(params, model_state, images, num_tokens):
    reconstructions, _ = model.apply({"params": params, **model_state}, images, num_tokens=num_tokens)
    return image_quality.psnr(images, reconstructions)

  return jax.jit(prefix_psnr, static_argnums=3)


def quality_vs_tokens(model: nn.Module, params: Any, model_state: Any,
                      batches: Iterable[dict[str, np.ndarray]]) -> dict[int, float]:
  """Mean PSNR over `batches` of reconstructions from the first k tokens, for k in 1, 2, 4, ..., K (K included).

  `model` must take `num_tokens=` in its `__call__` and have `num_latent_tokens` (e.g. a flexible TiTok).
  """
  lengths = flexible.prefix_lengths(model.num_latent_tokens, "powers_of_two")
  prefix_psnr = make_prefix_psnr_fn(model)
  per_length = {int(k): [] for k in lengths}
  for batch in batches:
    for k in per_length:
      per_length[k].append(np.asarray(prefix_psnr(params, model_state, batch["image"], k)))
  if not per_length[int(lengths[0])]:
    raise ValueError("The evaluation dataset yielded no batches.")
  return {k: float(np.mean(np.concatenate(values))) for k, values in per_length.items()}


def save_token_curve(directory: str | pathlib.Path, curve: dict[int, float],
                     baseline_psnr: float | None = None) -> None:
  """Writes `token_curve.json` ({"num_tokens": [...], "psnr": [...]}) and `token_curve.png` into `directory`."""
  from matplotlib import figure as figure_lib  # pylint: disable=g-import-not-at-top  # no pyplot: no global backend

  directory = pathlib.Path(directory)
  lengths = sorted(curve)
  record = {"num_tokens": lengths, "psnr": [curve[k] for k in lengths], "mean_colour_baseline_psnr": baseline_psnr}
  (directory / "token_curve.json").write_text(json.dumps(record, indent=2))
  figure = figure_lib.Figure(figsize=(5, 3.5))
  axes = figure.subplots()
  axes.plot(lengths, record["psnr"], marker="o", label="model")
  if baseline_psnr is not None:
    axes.axhline(baseline_psnr, linestyle="--", color="gray", label="mean-colour baseline")
  axes.set(xscale="log", xlabel="tokens kept (prefix length k)", ylabel="eval PSNR (dB)", title="PSNR vs tokens")
  axes.set_xticks(lengths, [str(k) for k in lengths])
  axes.legend()
  figure.tight_layout()
  figure.savefig(directory / "token_curve.png", dpi=100)
