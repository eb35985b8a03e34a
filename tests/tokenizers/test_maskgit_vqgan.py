"""MaskGIT-VQGAN 2D baseline: grid shapes for f=4 and f=8, round trip, bits per image, errors (the official
layer-for-layer match is tests/convert/test_official_tokenizers.py)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.nn import maskgit_vqgan_conv
from jaxtok.tokenizers import maskgit_vqgan


def make_model(multipliers=(1, 2, 2), quantizer=None):
  return maskgit_vqgan.MaskGitVQGAN(base_channels=8, channel_multipliers=multipliers, num_res_blocks=1, latent_dim=3,
                                    quantizer=quantizer or {"name": "vq", "codebook_size": 32})


def test_grid_shapes_and_round_trip():
  model = make_model()
  images = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)), jnp.float32)
  variables = model.init(jax.random.PRNGKey(0), images)
  reconstruction, output = model.apply(variables, images)
  indices, _ = model.apply(variables, images, method=model.encode)
  assert model.downsampling_factor == 4 and indices.shape == (2, 4, 4)
  assert output.quantized.shape == (2, 4, 4, 3) and reconstruction.shape == images.shape
  np.testing.assert_allclose(model.apply(variables, indices, method=model.decode_indices), reconstruction, atol=1e-5)
  assert model.bits_per_image(16) == 16 * 5
  assert variables["params"]["decoder"]["output"]["kernel"].names == ("conv_height", "conv_width", "conv_in",
                                                                       "conv_out")


def test_factor_eight_with_fsq():
  model = make_model((1, 1, 2, 2), {"name": "fsq", "levels": (8, 4, 4)})
  images = jnp.zeros((1, 16, 16, 3))
  variables = model.init(jax.random.PRNGKey(0), images)
  indices, _ = model.apply(variables, images, method=model.encode)
  assert model.downsampling_factor == 8 and indices.shape == (1, 2, 2)
  assert model.bits_per_image(64) == 64 * 7


def test_bad_inputs_raise():
  model = make_model()
  with pytest.raises(ValueError, match=r"divisible by 4, got shape \(1, 18, 16, 3\)"):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 18, 16, 3)))
  with pytest.raises(ValueError, match="needs a `quantizer`"):
    maskgit_vqgan.MaskGitVQGAN(quantizer=None).init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))


def test_norm_groups_below_the_channel_count_keep_each_channels_mean():
  """With one channel per group (the official 32 groups at 8 channels) GroupNorm erases a per-channel colour offset
  of the image; with `norm_groups=2` (4 channels per group) it does not."""
  x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 4, 4, 8)), jnp.float32)
  shifted = x + jnp.arange(8, dtype=jnp.float32)  # a different constant per channel
  for groups, erased in ((maskgit_vqgan_conv.GROUPS, True), (2, False)):
    norm = maskgit_vqgan_conv.group_norm(8, groups, jnp.float32, "norm")
    variables = norm.init(jax.random.PRNGKey(0), x)
    same = np.allclose(norm.apply(variables, x), norm.apply(variables, shifted), atol=1e-4)
    assert same == erased, groups


def test_norm_groups_must_divide_every_level():
  model = maskgit_vqgan.MaskGitVQGAN(base_channels=8, channel_multipliers=(1, 2), num_res_blocks=1, latent_dim=3,
                                     norm_groups=3, quantizer={"name": "vq", "codebook_size": 32})
  with pytest.raises(ValueError, match="must be a multiple of 3 or below it, got 8"):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))
  params = make_model().init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))["params"]
  grouped = dataclasses.replace(make_model(), norm_groups=2).init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, grouped["params"])  # no new parameters
