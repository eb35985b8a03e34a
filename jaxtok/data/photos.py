"""The embedded default dataset: colour photographs shipped inside scikit-image, scikit-learn and matplotlib wheels.

No download: each photo is read from the installed package. The split is by source photo, so eval crops come from
photos never seen in training. A photo's label is its index in `PHOTOS` (stable across splits), which later decoders
use as a class label.
"""
import dataclasses
import importlib.util
import pathlib

import numpy as np

from jaxtok.data import decoding


@dataclasses.dataclass(frozen=True)
class Photo:
  """One embedded photo: `package`'s file at `relative_path`, in split `split`."""

  name: str
  package: str
  relative_path: str
  split: str


# Eval photos are chosen to span the content of the training photos (an animal, an object close-up, a landscape).
PHOTOS = (
    Photo("astronaut", "skimage", "data/astronaut.png", "train"),
    Photo("rocket", "skimage", "data/rocket.jpg", "train"),
    Photo("motorcycle_left", "skimage", "data/motorcycle_left.png", "train"),
    Photo("motorcycle_right", "skimage", "data/motorcycle_right.png", "train"),  # same scene: same split as _left
    Photo("hubble_deep_field", "skimage", "data/hubble_deep_field.jpg", "train"),
    Photo("immunohistochemistry", "skimage", "data/ihc.png", "train"),
    Photo("retina", "skimage", "data/retina.jpg", "train"),
    Photo("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "train"),
    Photo("flower", "sklearn", "datasets/images/flower.jpg", "train"),
    Photo("chelsea", "skimage", "data/chelsea.png", "eval"),
    Photo("coffee", "skimage", "data/coffee.png", "eval"),
    Photo("china", "sklearn", "datasets/images/china.jpg", "eval"),
)
SPLITS = ("train", "eval")


def photo_path(photo: Photo) -> pathlib.Path:
  """Where `photo` lies inside its installed package, found without importing the package."""
  spec = importlib.util.find_spec(photo.package)
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(f"Photo {photo.name!r} needs the package {photo.package!r}, which is not installed.")
  return pathlib.Path(next(iter(spec.submodule_search_locations))) / photo.relative_path


def photos_in_split(split: str) -> list[tuple[int, Photo]]:
  """(label, photo) pairs of one split; label = index in PHOTOS."""
  if split not in SPLITS:
    raise ValueError(f"Unknown photos split {split!r}; expected one of {SPLITS}.")
  return [(label, photo) for label, photo in enumerate(PHOTOS) if photo.split == split]


def load_photos(split: str) -> list[tuple[np.ndarray, int]]:
  """Decodes the photos of `split` -> list of (uint8 image [height, width, 3], label)."""
  return [(decoding.decode_rgb(photo_path(photo).read_bytes()), label) for label, photo in photos_in_split(split)]
