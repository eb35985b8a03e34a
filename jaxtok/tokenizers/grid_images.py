"""The input check of the 2D grid tokenizers (`LlamaGenVQ`, `MaskGitVQGAN`)."""
import jax
import jax.numpy as jnp


def check_grid_images(images: jax.Array, factor: int, model_name: str) -> None:
  """ValueError naming `model_name` unless `images` are float `[batch, height, width, 3]` with height and width
  divisible by the downsampling `factor`."""
  if (images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] % factor or images.shape[2] % factor
      or not jnp.issubdtype(images.dtype, jnp.floating)):
    raise ValueError(f"{model_name} expects float images [batch, height, width, 3] with height and width divisible "
                     f"by {factor}, got shape {images.shape} and dtype {images.dtype}.")
