"""A trained tokenizer restored read-only from its workdir, for encoding images to tokens and decoding tokens back.

Generator training (MaskGIT, Chang et al. 2022) works on the token ids of a frozen tokenizer; this wraps the
checkpoint restore of `jaxtok.train.loop.Run` (EMA weights when the tokenizer's config uses an EMA) with jitted
`encode` and `decode` functions.
"""
import dataclasses
import pathlib
from typing import Any, Callable

import einops
import flax.linen as nn
import jax
import numpy as np

from jaxtok import config_validation


# Tokenizers whose indices are a 2D grid `[b, h, w(, C)]`, flattened in raster order to `[b, h * w(, C)]`.
GRID_TOKENIZERS = ("conv_vq_autoencoder", "vqgan")


@dataclasses.dataclass
class FrozenTokenizer:
  """Attributes:
    config: the tokenizer's experiment config.
    step: the checkpoint step restored.
    codebook_size: ids per token.
    grid_shape: the shape of one image's indices as the tokenizer gives them (`(h, w)`, `(L,)`, `(L, C)`, ...).
    encode: images `[b, s, s, 3]` float32 in [-1, 1] -> NumPy int32 token sequences `[b, L]` or `[b, L, C]` (a 2D
      grid flattened in raster order).
    decode: token sequences of `encode`'s shape -> NumPy float32 images `[b, s, s, 3]` in about [-1, 1].
  """
  config: Any
  step: int
  codebook_size: int
  grid_shape: tuple[int, ...]
  encode: Callable[[np.ndarray], np.ndarray]
  decode: Callable[[np.ndarray], np.ndarray]


def restore(config: Any, workdir: str | pathlib.Path, step: int | None = None) -> FrozenTokenizer:
  """Restores the tokenizer of `config` from checkpoint `step` (None: the latest) of `workdir`."""
  from jaxtok.train import loop  # pylint: disable=g-import-not-at-top  # loop imports the data pipelines

  workdir = pathlib.Path(workdir)
  if not (workdir / "checkpoints").is_dir():
    raise config_validation.ConfigError(f"No tokenizer checkpoints in {workdir}: train the tokenizer first "
                                        f"(python -m jaxtok.main --config=<tokenizer config> --workdir={workdir}).")
  run = loop.Run(config, workdir, restore_step=step, write_logs=False)
  run.close()
  if run.start_step == 0:
    raise config_validation.ConfigError(f"No checkpoint in {workdir / 'checkpoints'}.")
  model, mesh, rules = run.model, run.mesh, run.rules
  variables = {"params": run.eval_params, **run.state.model_state}
  encode_fn = jax.jit(lambda v, images: model.apply(v, images, method="encode")[0])
  decode_fn = jax.jit(lambda v, indices: model.apply(v, indices, method="decode_indices"))
  size = config.data.image_size
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    grid_shape = tuple(jax.eval_shape(encode_fn, variables, jax.ShapeDtypeStruct((1, size, size, 3),
                                                                                 np.float32)).shape[1:])
  is_grid = config.model_name in GRID_TOKENIZERS

  def encode(images: np.ndarray) -> np.ndarray:
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      indices = np.asarray(encode_fn(variables, images)).astype(np.int32)
    return einops.rearrange(indices, "b h w ... -> b (h w) ...") if is_grid else indices

  def decode(tokens: np.ndarray) -> np.ndarray:
    indices = np.reshape(tokens, (len(tokens),) + grid_shape)
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return np.asarray(decode_fn(variables, indices), np.float32)

  return FrozenTokenizer(config=config, step=run.start_step, codebook_size=int(model.codebook_size),
                         grid_shape=grid_shape, encode=encode, decode=decode)
