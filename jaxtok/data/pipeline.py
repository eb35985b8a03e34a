"""grain pipelines: a source -> batches of `{"image": float32 [batch, size, size, 3] in [-1, 1], "label": int32 [batch]}`.

Training streams forever (shuffled, reshuffled and re-cropped each epoch); evaluation yields the same fixed crops every
time. Both are deterministic functions of the seed, and the training iterator's state is checkpointable
(`iterator.get_state()` / `set_state()`, or orbax via `grain.checkpoint.CheckpointSave`).
"""
import dataclasses
import functools
from typing import Any

import grain
from grain import experimental as grain_experimental
import numpy as np

from jaxtok.data import photos
from jaxtok.data import shuffle
from jaxtok.data import sources
from jaxtok.data import transforms

SOURCE_NAMES = ("photos", "image_folder", "array_record", "tfds")

# Reading ahead in grain's thread pool (its defaults: 16 threads, a 500-element buffer) pays where a read waits on a
# file. For images already decoded in memory (and for token arrays) it only adds GIL contention and a scan of the whole
# buffer per element: on 2 CPU cores the quickstart trained at 14.5 steps/s with it and 16.7 without, on the same
# batches (jax's asynchronous dispatch still overlaps cutting the next batch with the running step).
IN_MEMORY_READ_OPTIONS = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)


@dataclasses.dataclass(frozen=True)
class CropOptions:
  """How examples are cut from source images.

  Attributes:
    image_size: side of the square crops, in pixels.
    min_fraction, max_fraction: a crop window's side is a uniform fraction in [min_fraction, max_fraction] of the
      image's short side (0 < min <= max <= 1), resized to image_size.
    random_flip: mirror training crops left-right with probability 1/2.
  """

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


class NoReadableImagesError(ValueError):
  """Every image of a source (or of this host's shard of it) failed to decode."""


class _ReadableShard:
  """This host's shard of a source (items `shard_index`, `shard_index + shard_count`, ...), random access.

  It remembers which of its items could not be decoded and raises NoReadableImagesError, naming the source, once
  every item has failed: grain skips unreadable items, so a source without a single readable image would otherwise
  keep a training or filling evaluation stream reading forever.
  """

  def __init__(self, source, shard_index: int, shard_count: int):
    if not 0 <= shard_index < shard_count:
      raise ValueError(f"Expected 0 <= shard_index < shard_count, got {shard_index} and {shard_count}.")
    self._source, self._indices = source, range(shard_index, len(source), shard_count)
    self._shard = "" if shard_count == 1 else f" (shard {shard_index} of {shard_count})"
    self._unreadable: set[int] = set()

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, index: int) -> sources.Item:
    item = self._source[self._indices[index]]
    if item is None:
      self._unreadable.add(index)
      if len(self._unreadable) == len(self._indices):
        raise NoReadableImagesError(self._error_message())
    return item

  def _error_message(self) -> str:
    description = getattr(self._source, "description", type(self._source).__name__)
    reasons = getattr(getattr(self._source, "skipped", None), "reasons", {})
    first = next(iter(reasons.items()), None)
    example = f" First failure: {first[0]}: {first[1]}." if first else ""
    return (f"None of the {len(self._indices)} images of {description}{self._shard} could be decoded; expected at "
            f"least one readable image.{example}")


def _shard(source, shard_index: int, shard_count: int) -> grain.MapDataset:
  return grain.MapDataset.source(_ReadableShard(source, shard_index, shard_count))


def read_options(source) -> grain.ReadOptions:
  """How grain reads `source`: on demand in the calling thread when it is in memory, else grain's read-ahead."""
  return IN_MEMORY_READ_OPTIONS if isinstance(source, sources.InMemoryImageSource) else grain.ReadOptions()


def train_dataset(source, options: CropOptions, *, batch_size: int, seed: int, shard_index: int = 0,
                  shard_count: int = 1, worker_count: int = 0) -> grain.IterDataset:
  """An endless stream of `batch_size` random crops; each host (shard) reads a disjoint part of the source."""
  dataset = shuffle.EpochShuffle(_shard(source, shard_index, shard_count), seed)
  dataset = dataset.random_map(functools.partial(_crop_example, options=options, flip=options.random_flip), seed=seed)
  stream = dataset.to_iter_dataset(read_options(source)).batch(batch_size, drop_remainder=True)
  if worker_count > 0:
    stream = stream.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
  return stream


def eval_dataset(source, options: CropOptions, *, num_images: int, batch_size: int, seed: int, shard_index: int = 0,
                 shard_count: int = 1, crop: str = "random") -> grain.IterDataset:
  """`num_images` fixed, unflipped crops of readable images, identical on every call with the same seed.

  crop: "random" cycles through the source cutting seeded random windows (`options`' fractions), as many passes as
  it takes: an unreadable image is skipped and the count filled from the next readable ones, so corrupt files never
  shrink the evaluation set. "center" takes the centred full-short-side square of each of the first `num_images`
  readable images (at most one per image: fewer when the source has fewer readable images; the caller sees the
  count). A source without any readable image raises NoReadableImagesError.
  """
  if crop not in EVAL_CROPS:
    raise ValueError(f"eval crop must be one of {EVAL_CROPS}, got {crop!r}.")
  if num_images < 1:
    raise ValueError(f"num_images must be >= 1, got {num_images}.")
  dataset = _shard(source, shard_index, shard_count)
  if crop == "center" and num_images > len(dataset):
    raise ValueError(f"Center crops give one image per source image: num_images={num_images} exceeds the "
                     f"{len(dataset)} images of the source.")
  if crop == "random":
    dataset = dataset.repeat(None, reseed_each_epoch=True)
  dataset = dataset.random_map(functools.partial(_crop_example, options=options, flip=False, center=crop == "center"),
                               seed=seed)
  readable = grain_experimental.LimitIterDataset(dataset.to_iter_dataset(read_options(source)), count=num_images)
  return readable.batch(batch_size, drop_remainder=False)


def crop_options(data_config: Any) -> CropOptions:
  """The CropOptions named by a config's `data` section."""
  if data_config.image_size < 8:
    raise ValueError(f"data.image_size must be at least 8, got {data_config.image_size}.")
  return CropOptions(data_config.image_size, data_config.crop_min_fraction, data_config.crop_max_fraction,
                     data_config.random_flip)
