"""Image folders: recursive discovery, class labels, and corrupt files skipped, counted and reported once."""
import contextlib
import logging as std_logging
import signal

import numpy as np
from PIL import Image
import pytest

from jaxtok import data


def _write_image(path, seed, fmt):
  rng = np.random.default_rng(seed)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(path, format=fmt)


@pytest.fixture()
def folder(tmp_path):
  _write_image(tmp_path / "cats" / "a.jpg", 0, "JPEG")
  _write_image(tmp_path / "cats" / "deeper" / "b.png", 1, "PNG")
  _write_image(tmp_path / "dogs" / "c.webp", 2, "WEBP")
  _write_image(tmp_path / "dogs" / "d.PNG", 3, "PNG")
  (tmp_path / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
  (tmp_path / "dogs" / "truncated.png").write_bytes((tmp_path / "dogs" / "d.PNG").read_bytes()[:200])
  (tmp_path / "notes.txt").write_text("not an image")
  return tmp_path


def test_finds_images_recursively_with_class_labels(folder):
  source = data.ImageFolderSource(folder)
  assert len(source) == 6  # 4 good + 2 corrupt image files; notes.txt is not an image
  assert source.class_names == ["cats", "dogs"]
  labels = {i: source[i]["label"] for i in range(len(source)) if source[i] is not None}
  assert sorted(labels.values()) == [0, 0, 1, 1]


def test_corrupt_images_are_skipped_counted_and_reported_once(folder, caplog):
  source = data.ImageFolderSource(folder)
  options = data.CropOptions(16, 0.5, 1.0, random_flip=False)
  with caplog.at_level(std_logging.WARNING):
    batches = list(data.eval_dataset(source, options, num_images=2 * len(source), batch_size=4, seed=0))
  assert sum(len(b["image"]) for b in batches) == 2 * len(source)  # corrupt ones skipped, the count filled
  assert len(source.skipped) == 2
  assert set(source.skipped.reasons) == {str(folder / "dogs" / "broken.jpg"), str(folder / "dogs" / "truncated.png")}
  reports = [r for r in caplog.records if "Skipping unreadable image" in r.getMessage()]
  assert len(reports) == 2, "each corrupt file is reported once, however often it is read"


def test_training_stream_survives_corrupt_images(folder):
  source = data.ImageFolderSource(folder)
  iterator = iter(data.train_dataset(source, data.CropOptions(16, 0.5, 1.0, True), batch_size=4, seed=0))
  for _ in range(5):
    assert next(iterator)["image"].shape == (4, 16, 16, 3)
  assert len(source.skipped) == 2


def test_evaluation_fills_its_count_from_readable_images(tmp_path):
  """As many crops as asked, each of a readable image, the same on every call."""
  colours = [(200, 10, 10), (10, 200, 10), (10, 10, 200)]
  for i, colour in enumerate(colours):
    Image.fromarray(np.full((24, 24, 3), colour, np.uint8)).save(tmp_path / f"{i}.png")
  for name in ("3.jpg", "4.jpg", "5.png"):
    (tmp_path / name).write_bytes(b"corrupt")
  source = data.ImageFolderSource(tmp_path)
  options = data.CropOptions(8, 0.5, 1.0, random_flip=False)
  for num_images in (4, 10):
    first, again = (np.concatenate([b["image"] for b in data.eval_dataset(source, options, num_images=num_images,
                                                                          batch_size=4, seed=5)]) for _ in range(2))
    assert len(first) == num_images
    np.testing.assert_array_equal(first, again)
    seen = {tuple(np.round((image[0, 0] + 1) * 127.5).astype(int)) for image in first}
    assert seen <= set(colours), "every crop is of a readable (constant-colour) image"
  assert len(source.skipped) == 3


def test_center_crops_report_fewer_images_when_too_few_are_readable(folder):
  source = data.ImageFolderSource(folder)
  batches = list(data.eval_dataset(source, data.CropOptions(16, 1.0, 1.0, False), num_images=len(source),
                                   batch_size=4, seed=0, crop="center"))
  assert sum(len(b["image"]) for b in batches) == 4  # one per readable image: the caller sees 4, not 6


@contextlib.contextmanager
def _fails_within(seconds):
  """Turns a stream that spins forever into a test failure."""
  def _timeout(signum, frame):
    raise TimeoutError(f"still reading after {seconds} s")
  previous = signal.signal(signal.SIGALRM, _timeout)
  signal.alarm(seconds)
  try:
    yield
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _undecodable_folder(root):
  for i in range(3):
    (root / "cats" / f"{i}.jpg").parent.mkdir(parents=True, exist_ok=True)
    (root / "cats" / f"{i}.jpg").write_bytes(b"not a jpeg")
  return root


def test_a_folder_without_a_readable_image_stops_training_with_its_name(tmp_path):
  source = data.make_source("image_folder", str(_undecodable_folder(tmp_path)), "train")
  stream = data.train_dataset(source, data.CropOptions(16, 0.5, 1.0, True), batch_size=2, seed=0)
  with _fails_within(60), pytest.raises(data.NoReadableImagesError, match=r"None of the 3 images of the image "
                                                                          r"folder .*" + tmp_path.name):
    next(iter(stream))


@pytest.mark.parametrize("crop", ["random", "center"])
def test_a_folder_without_a_readable_image_stops_evaluation_with_its_name(tmp_path, crop):
  source = data.make_source("image_folder", str(_undecodable_folder(tmp_path)), "eval")
  stream = data.eval_dataset(source, data.CropOptions(16, 0.5, 1.0, False), num_images=2, batch_size=2, seed=0,
                             crop=crop)
  with _fails_within(60), pytest.raises(data.NoReadableImagesError, match="could be decoded; expected at least one"):
    list(stream)


def test_missing_or_empty_folder_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    data.ImageFolderSource(tmp_path / "nope")
  with pytest.raises(ValueError, match="No images"):
    data.ImageFolderSource(tmp_path)


def test_array_record_source_reads_encoded_images(tmp_path):
  array_record = pytest.importorskip("array_record.python.array_record_module")
  import io  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / "images.array_record")
  writer = array_record.ArrayRecordWriter(path, "group_size:1")
  for seed in range(3):
    buffer = io.BytesIO()
    Image.fromarray(np.full((20, 20, 3), seed * 50, np.uint8)).save(buffer, format="PNG")
    writer.write(buffer.getvalue())
  writer.write(b"garbage")
  writer.close()
  source = data.make_source("array_record", path, "train")
  assert len(source) == 4
  assert source[1]["image"][0, 0].tolist() == [50, 50, 50]
  assert source[3] is None and len(source.skipped) == 1


def test_tfds_source_wraps_random_access_records(monkeypatch):
  """The TFDS adapter, against a stand-in for tfds.data_sources (tensorflow-datasets is an optional extra)."""
  import sys  # pylint: disable=g-import-not-at-top
  import types  # pylint: disable=g-import-not-at-top
  records = [{"image": np.full((12, 10, 3), 7, np.uint8), "label": 3}, {"image": np.full((12, 10, 1), 9, np.uint8)}]
  calls = []

  def load(name, split, data_dir):
    calls.append((name, split, data_dir))
    return records

  fake = types.SimpleNamespace(data_sources=types.SimpleNamespace(load=load))
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
  source = data.make_source("tfds", "imagenet2012", "validation")
  assert calls == [("imagenet2012", "validation", None)] and len(source) == 2
  assert source[0]["label"] == 3 and source[0]["image"].shape == (12, 10, 3)
  assert source[1]["label"] == 0 and source[1]["image"].shape == (12, 10, 3) and source[1]["image"].max() == 9
