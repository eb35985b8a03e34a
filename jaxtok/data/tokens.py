"""Pre-extracted tokens: a dataset encoded once by a frozen tokenizer, so generator training (MaskGIT, Chang et al.
2022, "MaskGIT: Masked Generative Image Transformer", trains on the tokens of a fixed VQ tokenizer) never re-runs it.

An `.npz` file holds `tokens` int32 `[n, L]` (a 2D grid flattened in raster order) or `[n, L, C]` (multi-codebook),
`labels` int32 `[n]`, and metadata: `codebook_size`, `grid_shape` (the tokenizer's own index shape per image),
`tokenizer_workdir`, `tokenizer_step`, `class_names` (by label, when the source names its classes), `split`, `seed`.

Which crops (`crop_stream`): split "train" draws crops from the tokenizer config's training pipeline (its source's
train split, random crops and flips, reshuffled each epoch) with `seed`; split "eval" draws crops of the SAME training
images (so a class-conditional generator's held-out set has the same classes) with another seed, unflipped. The
encoding itself is `jaxtok.train.frozen_tokenizer.extract_tokens`. `token_batches` streams shuffled batches of a token
file as a checkpointable grain iterator.
"""
import dataclasses
import pathlib
from typing import Any

import grain
import numpy as np

from jaxtok.data import photos
from jaxtok.data import pipeline
from jaxtok.data import sources

SPLITS = ("train", "eval")


@dataclasses.dataclass(frozen=True)
class TokenSet:
  """tokens: int32 `[n, L]` or `[n, L, C]`; labels: int32 `[n]`; the rest is metadata of the extraction."""
  tokens: np.ndarray
  labels: np.ndarray
  codebook_size: int
  grid_shape: tuple[int, ...]
  tokenizer_workdir: str
  tokenizer_step: int
  class_names: tuple[str, ...] = ()

  @property
  def sequence_length(self) -> int:
    return self.tokens.shape[1]

  @property
  def num_codebooks(self) -> int | None:
    return self.tokens.shape[2] if self.tokens.ndim == 3 else None


def crop_stream(data_config: Any, split: str, seed: int, batch_size: int):
  """Batches of crops of a tokenizer config's training images (its `data` section): random (train) or another seed's,
  unflipped (eval)."""
  options = pipeline.crop_options(data_config)
  if split == "eval":
    options = dataclasses.replace(options, random_flip=False)
  source = pipeline.make_source(data_config.source, data_config.train_location, data_config.train_split)
  return iter(pipeline.train_dataset(source, options, batch_size=batch_size, seed=seed))


def class_names(data_config: Any) -> tuple[str, ...]:
  """The names of a config's data classes by label: the embedded photos' names, an image folder's class folders; ()
  for sources that do not name their classes."""
  if data_config.source == "photos":
    return tuple(photo.name for photo in photos.PHOTOS)
  if data_config.source == "image_folder":
    return tuple(sources.ImageFolderSource(data_config.train_location).class_names)
  return ()


def save_tokens(path: str | pathlib.Path, token_set: TokenSet, split: str = "", seed: int = -1) -> None:
  """Writes `token_set` as an `.npz` (atomically: a partial file never has the final name)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  partial = path.with_name(path.name + ".partial.npz")
  np.savez(partial, tokens=token_set.tokens, labels=token_set.labels, codebook_size=token_set.codebook_size,
           grid_shape=np.asarray(token_set.grid_shape, np.int64), tokenizer_workdir=token_set.tokenizer_workdir,
           tokenizer_step=token_set.tokenizer_step, class_names=np.asarray(token_set.class_names, str), split=split,
           seed=seed)
  partial.rename(path)


def load_tokens(path: str | pathlib.Path) -> TokenSet:
  """Reads a token file, checking shapes, dtypes and id ranges with clear errors."""
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f"No token file {path}.")
  with np.load(path) as file:
    missing = {"tokens", "labels", "codebook_size", "grid_shape"} - set(file.files)
    if missing:
      raise ValueError(f"Token file {path} lacks {sorted(missing)}; it has {sorted(file.files)}.")
    token_set = TokenSet(tokens=file["tokens"], labels=file["labels"], codebook_size=int(file["codebook_size"]),
                         grid_shape=tuple(int(x) for x in file["grid_shape"]),
                         tokenizer_workdir=str(file["tokenizer_workdir"]) if "tokenizer_workdir" in file.files else "",
                         tokenizer_step=int(file["tokenizer_step"]) if "tokenizer_step" in file.files else -1,
                         class_names=tuple(str(n) for n in file["class_names"]) if "class_names" in file.files else ())
  check_token_set(token_set, str(path))
  return token_set


def check_token_set(token_set: TokenSet, name: str = "tokens") -> None:
  """Raises ValueError unless tokens are int32 `[n, L(, C)]` in [0, codebook_size) and labels int32 `[n]` >= 0."""
  tokens, labels = token_set.tokens, token_set.labels
  if tokens.dtype != np.int32 or tokens.ndim not in (2, 3):
    raise ValueError(f"{name}: tokens must be int32 [n, length] or [n, length, codebooks], got {tokens.dtype} "
                     f"{tokens.shape}.")
  if labels.dtype != np.int32 or labels.shape != tokens.shape[:1]:
    raise ValueError(f"{name}: labels must be int32 [n] = {tokens.shape[:1]}, got {labels.dtype} {labels.shape}.")
  if tokens.size and (tokens.min() < 0 or tokens.max() >= token_set.codebook_size):
    raise ValueError(f"{name}: token ids must lie in [0, codebook_size={token_set.codebook_size}), got "
                     f"[{tokens.min()}, {tokens.max()}].")
  if labels.size and labels.min() < 0:
    raise ValueError(f"{name}: labels must be >= 0, got {labels.min()}.")


class _TokenSource:
  """Random access to (tokens, label) pairs for grain."""

  def __init__(self, token_set: TokenSet):
    self._tokens, self._labels = token_set.tokens, token_set.labels

  def __len__(self) -> int:
    return len(self._tokens)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {"tokens": self._tokens[index], "label": self._labels[index]}


def token_batches(token_set: TokenSet, *, batch_size: int, seed: int, shard_index: int = 0,
                  shard_count: int = 1) -> grain.DatasetIterator:
  """An endless, checkpointable stream of `{"tokens": int32 [batch, L(, C)], "label": int32 [batch]}`.

  The order is a deterministic function of `seed` (reshuffled each epoch); each host reads a disjoint shard.
  """
  if len(token_set.tokens) < batch_size * shard_count:
    raise ValueError(f"A batch of {batch_size} per host x {shard_count} hosts needs at least that many sequences, "
                     f"got {len(token_set.tokens)}.")
  dataset = grain.MapDataset.source(_TokenSource(token_set))[shard_index::shard_count]
  stream = dataset.shuffle(seed=seed).repeat().to_iter_dataset(pipeline.IN_MEMORY_READ_OPTIONS)
  return iter(stream.batch(batch_size, drop_remainder=True))
