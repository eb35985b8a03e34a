"""grain pipelines: a source -> batches of `{"image": float32 [batch, size, size, 3] in [-1, 1], "label": int32 [batch]}`.

Training streams forever (shuffled, reshuffled and re-cropped each epoch); evaluation yields the same fixed crops every
time. Both are deterministic functions of the seed, and the training iterator's state is checkpointable
(`iterator.get_state()` / `set_state()`, or orbax via `grain.checkpoint.CheckpointSave`).
"""
import dataclasses
import functools
import math
from typing import Any

import grain
import numpy as np

from jaxtok.data import photos
from jaxtok.data import sources
from jaxtok.data import transforms

SOURCE_NAMES = ("photos", "image_folder", "array_record", "tfds")


@dataclasses.dataclass(frozen=True)
class CropOptions:
  """How examples are cut from source images: side `image_size`, window a fraction of the short side."""

  image_size: int
  min_fraction: float
  max_fraction: float
  random_flip: bool


def make_source(source: str, location: str, split: str):
  """Builds a random-access source.

  Args:
    source: one of SOURCE_NAMES.
    location: "" for photos; a folder for image_folder; a path or list of paths for array_record; "name" for tfds.
    split: "train" or "eval" for photos; the TFDS split name for tfds; unused otherwise.
  """
  if source == "photos":
    if location:
      raise ValueError(f"The photos source is embedded and takes no location, got {location!r}.")
    return sources.InMemoryImageSource(photos.load_photos(split))
  if source == "image_folder":
    return sources.ImageFolderSource(location)
  if source == "array_record":
    return sources.ArrayRecordImageSource(location)
  if source == "tfds":
    return sources.TfdsImageSource(location, split)
  raise ValueError(f"Unknown data source {source!r}; expected one of {SOURCE_NAMES}.")


EVAL_CROPS = ("random", "center")


def _crop_example(item: sources.Item, rng: np.random.Generator, options: CropOptions, flip: bool,
                  center: bool = False) -> sources.Item:
  if item is None:
    return None
  if center:
    image = transforms.center_crop(item["image"], options.image_size)
  else:
    image = transforms.random_resized_crop(item["image"], options.image_size, rng, options.min_fraction,
                                           options.max_fraction)
  if flip:
    image = transforms.random_flip(image, rng)
  return {"image": transforms.to_float(image), "label": np.int32(item["label"])}


def _shard(dataset: grain.MapDataset, shard_index: int, shard_count: int) -> grain.MapDataset:
  if not 0 <= shard_index < shard_count:
    raise ValueError(f"Expected 0 <= shard_index < shard_count, got {shard_index} and {shard_count}.")
  return dataset[shard_index::shard_count]


def train_dataset(source, options: CropOptions, *, batch_size: int, seed: int, shard_index: int = 0,
                  shard_count: int = 1, worker_count: int = 0) -> grain.IterDataset:
  """An endless stream of `batch_size` random crops; each host (shard) reads a disjoint part of the source."""
  dataset = _shard(grain.MapDataset.source(source), shard_index, shard_count)
  dataset = dataset.shuffle(seed=seed).repeat()
  dataset = dataset.random_map(functools.partial(_crop_example, options=options, flip=options.random_flip), seed=seed)
  stream = dataset.to_iter_dataset().batch(batch_size, drop_remainder=True)
  if worker_count > 0:
    stream = stream.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
  return stream


def eval_dataset(source, options: CropOptions, *, num_images: int, batch_size: int, seed: int, shard_index: int = 0,
                 shard_count: int = 1, crop: str = "random") -> grain.IterDataset:
  """`num_images` fixed, unflipped crops, identical on every call with the same seed.

  crop: "random" cycles through the source cutting seeded random windows (`options`' fractions); "center" takes the
  centred full-short-side square of each of the first `num_images` images (at most one per image).
  """
  if crop not in EVAL_CROPS:
    raise ValueError(f"eval crop must be one of {EVAL_CROPS}, got {crop!r}.")
  dataset = _shard(grain.MapDataset.source(source), shard_index, shard_count)
  if crop == "center" and num_images > len(dataset):
    raise ValueError(f"Center crops give one image per source image: num_images={num_images} exceeds the "
                     f"{len(dataset)} images of the source.")
  dataset = dataset.repeat(math.ceil(num_images / len(dataset)), reseed_each_epoch=True)[:num_images]
  dataset = dataset.random_map(functools.partial(_crop_example, options=options, flip=False, center=crop == "center"),
                               seed=seed)
  return dataset.to_iter_dataset().batch(batch_size, drop_remainder=False)


def crop_options(data_config: Any) -> CropOptions:
  """The CropOptions named by a config's `data` section."""
  if data_config.image_size < 8:
    raise ValueError(f"data.image_size must be at least 8, got {data_config.image_size}.")
  return CropOptions(data_config.image_size, data_config.crop_min_fraction, data_config.crop_max_fraction,
                     data_config.random_flip)
