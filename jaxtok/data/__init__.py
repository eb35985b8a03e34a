"""Input pipelines through grain: the embedded photos, image folders, ArrayRecord and TFDS.

`make_source(name, location, split)` builds a random-access source (`SOURCE_NAMES`); `train_dataset(source,
crop_options, batch_size=, seed=)` streams random crops forever and `eval_dataset(source, crop_options,
num_images=, batch_size=, seed=)` yields the same fixed crops every time, both as batches of `{"image": float32
[batch, size, size, 3] in [-1, 1], "label": int32 [batch]}`. Unreadable images are skipped and counted
(`source.skipped`); a source without a readable image raises `NoReadableImagesError`. `EpochShuffle(map_dataset,
seed)` is the training stream's shuffle: endless epochs of a finite grain MapDataset, one seeded permutation each.
"""
from jaxtok.data.pipeline import CropOptions, NoReadableImagesError, SOURCE_NAMES, crop_options, eval_dataset
from jaxtok.data.pipeline import make_source, train_dataset
from jaxtok.data.shuffle import EpochShuffle
from jaxtok.data.sources import ImageFolderSource, InMemoryImageSource, SkippedImages

__all__ = ["CropOptions", "EpochShuffle", "ImageFolderSource", "InMemoryImageSource", "NoReadableImagesError",
           "SOURCE_NAMES", "SkippedImages", "crop_options", "eval_dataset", "make_source", "train_dataset"]
