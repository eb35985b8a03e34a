"""Input pipelines: the embedded photos, image folders, ArrayRecord and TFDS, through grain."""
from jaxtok.data.pipeline import CropOptions, crop_options, eval_dataset, make_source, train_dataset
from jaxtok.data.sources import ImageFolderSource, InMemoryImageSource, SkippedImages
