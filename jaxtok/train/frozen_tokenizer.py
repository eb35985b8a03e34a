"""A trained tokenizer restored read-only from its workdir, for encoding images to tokens and decoding tokens back,
and the token extraction of generator training.

Generator training (MaskGIT, Chang et al. 2022) works on the token ids of a frozen tokenizer: `restore` loads its
evaluation weights (`jaxtok.train.inference.restore_for_inference`) and wraps jitted `encode` and `decode` functions;
`extract_tokens` encodes crops of the tokenizer's training images once into a token file (`jaxtok.data.tokens`).
"""
import dataclasses
import pathlib
from typing import Any, Callable

import einops
import flax.linen as nn
import jax
import numpy as np

from jaxtok import registry
from jaxtok.data import tokens as tokens_lib
from jaxtok.train import inference
from jaxtok.train import workdir_config

# Fields of a given tokenizer config that may differ from the recorded one: how it was trained, not how it encodes.
_MAY_DIFFER = workdir_config.RUN_CONTROL_FIELDS + ("seed", "optimizer", "losses", "eval", "train.num_steps",
                                                   "train.reconstruction_loss")


@dataclasses.dataclass
class FrozenTokenizer:
  """Attributes:
    config: the tokenizer's experiment config.
    workdir: its training workdir.
    step: the checkpoint step restored.
    codebook_size: ids per token.
    grid_shape: the shape of one image's indices as the tokenizer gives them (`(h, w)`, `(L,)`, `(L, C)`, ...).
    encode: images `[b, s, s, 3]` float32 in [-1, 1] -> NumPy int32 token sequences `[b, L]` or `[b, L, C]` (a 2D
      grid flattened in raster order).
    decode: token sequences of `encode`'s shape -> NumPy float32 images `[b, s, s, 3]` in about [-1, 1].
  """
  config: Any
  workdir: pathlib.Path
  step: int
  codebook_size: int
  grid_shape: tuple[int, ...]
  encode: Callable[[np.ndarray], np.ndarray]
  decode: Callable[[np.ndarray], np.ndarray]


def restore(config: Any | None, workdir: str | pathlib.Path, step: int | None = None) -> FrozenTokenizer:
  """Restores the tokenizer trained in `workdir` from checkpoint `step` (None: the latest); `config` None = the
  config recorded there."""
  restored = inference.restore_for_inference(config, workdir, step, may_differ=_MAY_DIFFER,
                                             purpose="encoding and decoding tokens")
  model, variables, mesh, rules = restored.model, restored.variables, restored.mesh, restored.rules
  encode_fn = jax.jit(lambda v, images: model.apply(v, images, method="encode")[0])
  to_images = restored.task.output_to_images or (lambda decoded: decoded)  # a stage-1 TiTok decodes through its VQGAN
  decode_fn = jax.jit(lambda v, indices: to_images(model.apply(v, indices, method="decode_indices")))
  size = restored.config.data.image_size
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    grid_shape = tuple(jax.eval_shape(encode_fn, variables, jax.ShapeDtypeStruct((1, size, size, 3),
                                                                                 np.float32)).shape[1:])
  is_grid = registry.entry(restored.config.model_name).grid_tokens

  def encode(images: np.ndarray) -> np.ndarray:
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      indices = np.asarray(encode_fn(variables, images)).astype(np.int32)
    return einops.rearrange(indices, "b h w ... -> b (h w) ...") if is_grid else indices

  def decode(tokens: np.ndarray) -> np.ndarray:
    indices = np.reshape(tokens, (len(tokens),) + grid_shape)
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return np.asarray(decode_fn(variables, indices), np.float32)

  return FrozenTokenizer(config=restored.config, workdir=pathlib.Path(workdir), step=restored.step,
                         codebook_size=int(model.codebook_size), grid_shape=grid_shape, encode=encode, decode=decode)


def extract_tokens(tokenizer: FrozenTokenizer, split: str, num_images: int, seed: int,
                   output_path: str | pathlib.Path, batch_size: int) -> tokens_lib.TokenSet:
  """Encodes `num_images` crops with `tokenizer` and writes them to `output_path` (its folder is created).

  Args:
    tokenizer: the restored tokenizer.
    split: "train" or "eval": crops of the tokenizer's training images, random or another seed's unflipped ones
      (see `jaxtok.data.tokens`).
    num_images: crops to encode.
    seed: seed of the crop stream.
    output_path: the `.npz` file written.
    batch_size: images encoded per call.

  Returns:
    The TokenSet written.
  """
  if split not in tokens_lib.SPLITS:
    raise ValueError(f"split must be one of {tokens_lib.SPLITS}, got {split!r}.")
  if num_images < 1 or batch_size < 1:
    raise ValueError(f"num_images and batch_size must be positive, got {num_images} and {batch_size}.")
  stream = tokens_lib.crop_stream(tokenizer.config.data, split, seed, batch_size)
  tokens, labels = [], []
  for _ in range(-(-num_images // batch_size)):
    batch = next(stream)
    tokens.append(tokenizer.encode(batch["image"]))
    labels.append(batch["label"])
  token_set = tokens_lib.TokenSet(tokens=np.concatenate(tokens)[:num_images].astype(np.int32),
                                  labels=np.concatenate(labels)[:num_images].astype(np.int32),
                                  codebook_size=tokenizer.codebook_size, grid_shape=tuple(tokenizer.grid_shape),
                                  tokenizer_workdir=str(tokenizer.workdir), tokenizer_step=tokenizer.step,
                                  class_names=tokens_lib.class_names(tokenizer.config.data))
  tokens_lib.save_tokens(output_path, token_set, split=split, seed=seed)
  return token_set
