"""PNG outputs a person looks at: grids of originals beside reconstructions, and training curves."""
import pathlib
from typing import Sequence

from matplotlib import figure as figure_lib  # the Figure API, not pyplot: no global backend is switched
import numpy as np
from PIL import Image
from PIL import ImageDraw

from jaxtok.data import transforms


def image_grid(rows: Sequence[np.ndarray], min_display_size: int = 96, padding: int = 2,
               row_labels: Sequence[str] = ()) -> np.ndarray:
  """Tiles rows of images (each `[n, h, w, 3]` float in [-1, 1], same n) into one uint8 `[H, W, 3]` picture.

  Small images are enlarged by an integer factor (nearest neighbour) to at least `min_display_size` pixels.
  `row_labels` (one per row) are written in a margin on the left.
  """
  num_columns = len(rows[0])
  height, width = rows[0].shape[1:3]
  scale = max(1, -(-min_display_size // height))
  cell_h, cell_w = height * scale + padding, width * scale + padding
  measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
  margin = int(max(measure.textlength(label) for label in row_labels)) + 3 * padding if row_labels else 0
  canvas = np.full((len(rows) * cell_h + padding, margin + num_columns * cell_w + padding, 3), 255, np.uint8)
  for r, row in enumerate(rows):
    if len(row) != num_columns:
      raise ValueError(f"Every row needs {num_columns} images, row {r} has {len(row)}.")
    for c, image in enumerate(transforms.to_uint8(row)):
      big = image.repeat(scale, axis=0).repeat(scale, axis=1)
      top, left = r * cell_h + padding, margin + c * cell_w + padding
      canvas[top:top + big.shape[0], left:left + big.shape[1]] = big
  if row_labels:
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    for r, label in enumerate(row_labels):
      draw.text((padding, r * cell_h + cell_h // 2), label, fill=(0, 0, 0), anchor="lm")
    canvas = np.asarray(picture)
  return canvas


def reconstruction_grid(originals: np.ndarray, reconstructions: np.ndarray, columns: int = 8) -> np.ndarray:
  """Bands of `columns` originals, each band followed by the same images reconstructed -> uint8 `[H, W, 3]`."""
  rows = []
  for start in range(0, len(originals) - columns + 1, columns):
    rows += [originals[start:start + columns], reconstructions[start:start + columns]]
  if not rows:
    rows = [originals, reconstructions]
  return image_grid(rows)


def class_grid(images_per_class: np.ndarray, class_labels: Sequence[str]) -> np.ndarray:
  """One row per class, labelled: `images_per_class` `[classes, n, h, w, 3]` float in [-1, 1] -> uint8 `[H, W, 3]`."""
  return image_grid(list(images_per_class), row_labels=class_labels)


def save_png(path: pathlib.Path, picture: np.ndarray) -> None:
  """Writes a uint8 `[H, W, 3]` picture."""
  Image.fromarray(picture).save(path)


def save_grids(directory: pathlib.Path, grids: dict[str, np.ndarray], step: int | None = None) -> None:
  """Writes each picture as `<directory>/<name>.png`; with a `step`, also as `images/<name>_step<N>.png` there (the
  runner keeps every evaluation's grids)."""
  directory.mkdir(parents=True, exist_ok=True)
  for name, picture in grids.items():
    save_png(directory / f"{name}.png", picture)
    if step is not None:
      (directory / "images").mkdir(exist_ok=True)
      save_png(directory / "images" / f"{name}_step{step:07d}.png", picture)


def save_curves(path: pathlib.Path, train_history: list[dict[str, float]], eval_history: list[dict[str, float]]) -> None:
  """Writes a PNG with the training loss and the eval PSNR (with its mean-colour baseline) against the step."""
  figure = figure_lib.Figure(figsize=(10, 3.5))
  loss_axes, psnr_axes = figure.subplots(1, 2)
  loss_axes.plot([h["step"] for h in train_history], [h["loss"] for h in train_history])
  loss_axes.set(xlabel="step", ylabel="training loss", yscale="log", title="loss")
  steps = [h["step"] for h in eval_history]
  psnr_axes.plot(steps, [h["psnr"] for h in eval_history], marker="o", label="model")
  psnr_axes.plot(steps, [h["mean_colour_baseline_psnr"] for h in eval_history], linestyle="--",
                 label="mean-colour baseline")
  psnr_axes.set(xlabel="step", ylabel="eval PSNR (dB)", title="eval PSNR")
  psnr_axes.legend()
  figure.tight_layout()
  figure.savefig(path, dpi=100)


def save_generator_curves(path: pathlib.Path, train_history: list[dict[str, float]],
                          eval_history: list[dict[str, float]]) -> None:
  """Writes a PNG with the training and held-out masked-token losses, the token statistic of the samples next to
  its uniform-token and data references, and (when evaluated) the samples' class accuracy next to the held-out
  data's, against the step."""
  with_classes = all("class_accuracy" in h for h in eval_history)
  figure = figure_lib.Figure(figsize=(15 if with_classes else 10, 3.5))
  loss_axes, tv_axes, *class_axes = figure.subplots(1, 3 if with_classes else 2)
  loss_axes.plot([h["step"] for h in train_history], [h["loss"] for h in train_history], label="train")
  steps = [h["step"] for h in eval_history]
  loss_axes.plot(steps, [h["loss"] for h in eval_history], marker="o", label="held-out")
  loss_axes.set(xlabel="step", ylabel="masked-token cross-entropy", title="loss")
  loss_axes.legend()
  for name, label, style in (("token_tv", "samples", "-"), ("token_tv_uniform", "uniform tokens", "--"),
                             ("token_tv_train_data", "training tokens", ":")):
    tv_axes.plot(steps, [h[name] for h in eval_history], linestyle=style, marker="o", label=label)
  tv_axes.set(xlabel="step", ylabel="mean per-position TV to held-out", title="token statistic", ylim=(0, 1))
  tv_axes.legend()
  if with_classes:
    for name, label, style in (("class_accuracy", "samples", "-"), ("class_accuracy_held_out", "held-out data", ":")):
      class_axes[0].plot(steps, [h[name] for h in eval_history], linestyle=style, marker="o", label=label)
    class_axes[0].set(xlabel="step", ylabel="fraction of their class", title="class accuracy (token classifier)",
                      ylim=(0, 1))
    class_axes[0].legend()
  figure.tight_layout()
  figure.savefig(path, dpi=100)
