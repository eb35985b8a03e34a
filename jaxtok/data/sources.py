"""Random-access image sources. Each item is `{"image": uint8 [height, width, 3], "label": int}` or None.

None marks an image that could not be decoded: it is skipped downstream, counted in `source.skipped`, and reported
once per file in the log, so one corrupt file among millions never stops a run; a source with no readable image at
all stops the pipeline with an error naming it (`pipeline.NoReadableImagesError`). (With grain worker processes each
worker counts its own skips.) Each source's `description` names it in such messages.
"""
import collections
import pathlib
from typing import Any, Sequence

from absl import logging
import numpy as np

from jaxtok.data import decoding

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
Item = dict[str, Any] | None


class SkippedImages:
  """Counts images that failed to decode; logs each distinct one once."""

  def __init__(self):
    self.reasons: dict[str, str] = collections.OrderedDict()

  def record(self, name: str, error: Exception) -> None:
    if name not in self.reasons:
      self.reasons[name] = f"{type(error).__name__}: {error}"
      logging.warning("Skipping unreadable image %s (%s); %d skipped so far.", name, self.reasons[name], len(self))

  def __len__(self) -> int:
    return len(self.reasons)


def _decode_or_skip(encoded: bytes, name: str, label: int, skipped: SkippedImages) -> Item:
  try:
    return {"image": decoding.decode_rgb(encoded), "label": label}
  except Exception as error:  # pylint: disable=broad-except  # any decoder failure means "skip this file"
    skipped.record(name, error)
    return None


class _RecordSource:
  """What every source here shares: `len` is that of `self._records` (what `__getitem__` reads), `skipped` counts
  its unreadable images and `description` names it."""

  def __init__(self, records: Sequence[Any], description: str):
    self._records = records
    self.skipped = SkippedImages()
    self.description = description

  def __len__(self) -> int:
    return len(self._records)


class InMemoryImageSource(_RecordSource):
  """Already-decoded images with labels (the embedded photos).

  Args:
    images_and_labels: (uint8 image `[height, width, 3]`, int label) pairs.
  """

  def __init__(self, images_and_labels: Sequence[tuple[np.ndarray, int]]):
    for image, _ in images_and_labels:
      if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"Expected uint8 images [height, width, 3], got {image.dtype} {image.shape}.")
    super().__init__(list(images_and_labels), f"{len(images_and_labels)} in-memory images")

  def __getitem__(self, index: int) -> Item:
    image, label = self._records[index]
    return {"image": image, "label": label}


class ImageFolderSource(_RecordSource):
  """Every jpg/png/webp file below `root`, found recursively, in sorted order.

  Labels: files directly inside class folders (`root/<class>/.../x.jpg`, the ImageNet layout) get the index of their
  class folder in sorted order; files directly in `root` get label 0. `class_names` lists the folders.

  Args:
    root: the folder.
    extensions: file suffixes to read (case-insensitive).
  """

  def __init__(self, root: str | pathlib.Path, extensions: Sequence[str] = IMAGE_EXTENSIONS):
    root = pathlib.Path(root)
    if not root.is_dir():
      raise FileNotFoundError(f"Image folder {str(root)!r} does not exist or is not a directory.")
    suffixes = tuple(extension.lower() for extension in extensions)
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not paths:
      raise ValueError(f"No images with extensions {suffixes} found below {str(root)!r}.")
    super().__init__(paths, f"the image folder {str(root)!r}")
    top_folders = {p.relative_to(root).parts[0] for p in paths if len(p.relative_to(root).parts) > 1}
    self.class_names = sorted(top_folders)
    index_of = {name: i for i, name in enumerate(self.class_names)}
    self._labels = [index_of.get(p.relative_to(root).parts[0], 0) for p in paths]

  def __getitem__(self, index: int) -> Item:
    path = self._records[index]
    try:
      encoded = path.read_bytes()
    except OSError as error:
      self.skipped.record(str(path), error)
      return None
    return _decode_or_skip(encoded, str(path), self._labels[index], self.skipped)


class ArrayRecordImageSource(_RecordSource):
  """ArrayRecord files whose records are encoded images (PNG/JPEG/WebP bytes); every label is 0."""

  def __init__(self, paths: str | Sequence[str]):
    import grain  # pylint: disable=g-import-not-at-top

    super().__init__(grain.sources.ArrayRecordDataSource(paths), f"the ArrayRecord file(s) {paths!r}")

  def __getitem__(self, index: int) -> Item:
    return _decode_or_skip(self._records[index], f"record {index}", 0, self.skipped)


class TfdsImageSource(_RecordSource):
  """A TFDS dataset with an "image" feature (and optional "label"), read through `tfds.data_sources`."""

  def __init__(self, name: str, split: str, data_dir: str | None = None):
    try:
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    except ImportError as error:
      raise ImportError("The TFDS source needs tensorflow-datasets: pip install 'jaxtok[tfds]'.") from error
    super().__init__(tfds.data_sources.load(name, split=split, data_dir=data_dir),
                     f"the TFDS dataset {name!r} (split {split!r})")

  def __getitem__(self, index: int) -> Item:
    record = self._records[index]
    image = np.asarray(record["image"], dtype=np.uint8)
    if image.ndim == 2 or image.shape[-1] == 1:
      image = np.broadcast_to(image.reshape(image.shape[:2] + (1,)), image.shape[:2] + (3,))
    return {"image": image, "label": int(record.get("label", 0))}
