"""The embedded photos: present in the installed wheels, split by source photo, served as deterministic crops."""
import numpy as np
import pytest

from jaxtok import data
from jaxtok.data import photos
from jaxtok.data import pipeline


def test_every_photo_is_a_colour_image_in_an_installed_wheel():
  for photo in photos.PHOTOS:
    image = photos.decoding.decode_rgb(photos.photo_path(photo).read_bytes())
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3
    assert min(image.shape[:2]) >= 256, photo.name
    assert image.std(axis=-1).mean() > 1.0, f"{photo.name} looks grayscale"


def test_split_is_by_source_photo():
  train = {label for label, _ in photos.photos_in_split("train")}
  evaluation = {label for label, _ in photos.photos_in_split("eval")}
  assert train and evaluation and not train & evaluation
  assert train | evaluation == set(range(len(photos.PHOTOS)))
  train_files = {p.relative_path for _, p in photos.photos_in_split("train")}
  assert not train_files & {p.relative_path for _, p in photos.photos_in_split("eval")}


def test_unknown_split_is_rejected():
  with pytest.raises(ValueError, match="expected one of"):
    photos.photos_in_split("validation")


@pytest.fixture(scope="module")
def train_source():
  return data.make_source("photos", "", "train")


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_train_crops_have_the_configured_size_and_range(train_source, size):
  options = data.CropOptions(size, 0.2, 0.6, random_flip=True)
  batch = next(iter(data.train_dataset(train_source, options, batch_size=4, seed=0)))
  assert batch["image"].shape == (4, size, size, 3) and batch["image"].dtype == np.float32
  assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0
  assert batch["label"].dtype == np.int32
  eval_labels = {label for label, _ in photos.photos_in_split("eval")}
  assert not set(batch["label"].tolist()) & eval_labels


def test_train_stream_is_deterministic_and_varies_across_epochs(train_source):
  options = data.CropOptions(32, 0.2, 0.6, random_flip=True)

  def first_batches(seed, count):
    iterator = iter(data.train_dataset(train_source, options, batch_size=len(train_source), seed=seed))
    return [next(iterator)["image"] for _ in range(count)]

  run_a, run_b = first_batches(0, 2), first_batches(0, 2)
  np.testing.assert_array_equal(run_a[0], run_b[0])
  np.testing.assert_array_equal(run_a[1], run_b[1])
  assert not np.array_equal(run_a[0], run_a[1]), "each epoch must re-crop"
  assert not np.array_equal(run_a[0], first_batches(1, 1)[0]), "the seed must matter"


class _FileLikeSource:
  """The photos behind a source type the pipeline does not know to be in memory: read ahead by grain's threads."""

  def __init__(self, source):
    self._source = source

  def __len__(self):
    return len(self._source)

  def __getitem__(self, index):
    return self._source[index]


def test_in_memory_photos_are_read_on_demand_into_the_same_batches_as_read_ahead(train_source):
  assert pipeline.read_options(train_source) == pipeline.IN_MEMORY_READ_OPTIONS
  assert pipeline.read_options(_FileLikeSource(train_source)).num_threads > 0
  options = data.CropOptions(32, 0.2, 0.6, random_flip=True)
  on_demand = iter(data.train_dataset(train_source, options, batch_size=8, seed=3))
  read_ahead = iter(data.train_dataset(_FileLikeSource(train_source), options, batch_size=8, seed=3))
  for _ in range(3):
    np.testing.assert_array_equal(next(on_demand)["image"], next(read_ahead)["image"])
  evaluation = [data.eval_dataset(source, options, num_images=12, batch_size=8, seed=0)
                for source in (train_source, _FileLikeSource(train_source))]
  for batch, same in zip(*evaluation, strict=True):
    np.testing.assert_array_equal(batch["image"], same["image"])


def test_eval_crops_are_fixed_and_come_from_eval_photos_only():
  source = data.make_source("photos", "", "eval")
  options = data.CropOptions(32, 0.2, 0.6, random_flip=True)
  first = list(data.eval_dataset(source, options, num_images=10, batch_size=4, seed=3))
  again = list(data.eval_dataset(source, options, num_images=10, batch_size=4, seed=3))
  assert [len(b["image"]) for b in first] == [4, 4, 2]
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a["image"], b["image"])
  eval_labels = {label for label, _ in photos.photos_in_split("eval")}
  assert set(np.concatenate([b["label"] for b in first]).tolist()) == eval_labels


def test_iterator_state_resumes_the_exact_stream(train_source):
  options = data.CropOptions(32, 0.2, 0.6, random_flip=True)
  dataset = data.train_dataset(train_source, options, batch_size=3, seed=0)
  iterator = iter(dataset)
  for _ in range(5):
    next(iterator)
  state = iterator.get_state()
  expected = [next(iterator)["image"] for _ in range(4)]
  resumed = iter(dataset)
  resumed.set_state(state)
  for want in expected:
    np.testing.assert_array_equal(next(resumed)["image"], want)


def test_photos_source_takes_no_location():
  with pytest.raises(ValueError, match="takes no location"):
    data.make_source("photos", "/some/folder", "train")
  with pytest.raises(ValueError, match="expected one of"):
    data.make_source("imagenet", "", "train")


def test_center_crop_eval_takes_the_centred_short_side_once_per_image():
  from jaxtok.data import transforms  # pylint: disable=g-import-not-at-top
  image = np.zeros((40, 60, 3), np.uint8)
  image[:, 10:50] = 200  # the centred 40x40 square of a 40x60 image
  np.testing.assert_array_equal(transforms.center_crop(image, 40), np.full((40, 40, 3), 200, np.uint8))
  options = data.CropOptions(image_size=16, min_fraction=0.2, max_fraction=0.3, random_flip=False)
  source = data.make_source("photos", "", "eval")
  first, second = (list(data.eval_dataset(source, options, num_images=3, batch_size=3, seed=seed, crop="center"))
                   for seed in (0, 1))
  np.testing.assert_array_equal(first[0]["image"], second[0]["image"])  # no randomness
  with pytest.raises(ValueError, match="one image per source image"):
    data.eval_dataset(source, options, num_images=4, batch_size=4, seed=0, crop="center")
  with pytest.raises(ValueError, match="eval crop must be one of"):
    data.eval_dataset(source, options, num_images=3, batch_size=3, seed=0, crop="middle")
