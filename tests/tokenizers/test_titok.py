"""TiTok: shapes, encode/decode round trip, prefixes, causal latent attention, mixed precision, errors."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.tokenizers import titok

IMAGE, PATCH, TOKENS = 16, 4, 8


def make_model(**overrides):
  fields = dict(image_size=IMAGE, patch_size=PATCH, num_latent_tokens=TOKENS, token_dim=4, encoder_size="micro",
                decoder_size="micro", quantizer={"name": "vq", "codebook_size": 16}, decoder_output="pixels",
                legacy_token_projection=False, latent_attention="causal", token_dropout="nested_dropout")
  fields.update(overrides)
  return titok.TiTok(**fields)


def random_images(seed, batch=2, size=IMAGE):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (batch, size, size, 3)), jnp.float32)


@pytest.fixture(scope="module")
def model_and_variables():
  model = make_model()
  return model, model.init({"params": jax.random.PRNGKey(0)}, random_images(0))


def test_shapes_and_round_trip(model_and_variables):
  model, variables = model_and_variables
  images = random_images(1)
  reconstruction, output = model.apply(variables, images)
  indices, encoded = model.apply(variables, images, method=model.encode)
  assert reconstruction.shape == images.shape and reconstruction.dtype == jnp.float32
  assert indices.shape == (2, TOKENS) and jnp.issubdtype(indices.dtype, jnp.integer)
  np.testing.assert_array_equal(indices, output.indices)
  decoded = model.apply(variables, indices, method=model.decode_indices)
  np.testing.assert_allclose(decoded, reconstruction, atol=1e-5)
  codes = model.apply(variables, indices, method=lambda m, i: m.bottleneck.indices_to_codes(i))
  np.testing.assert_allclose(codes, encoded.quantized, atol=1e-6)
  assert model.bits_per_image(IMAGE) == TOKENS * 4 and model.codebook_size == 16


@pytest.mark.parametrize("length", [1, 3])
def test_prefix_encode_and_decode_match_masked_full_decode(model_and_variables, length):
  model, variables = model_and_variables
  images = random_images(2)
  full_indices, full = model.apply(variables, images, method=model.encode)
  prefix_indices, prefix = model.apply(variables, images, num_tokens=length, method=model.encode)
  np.testing.assert_array_equal(prefix_indices, full_indices[:, :length])
  from_prefix = model.apply(variables, prefix_indices, method=model.decode_indices)
  kept = jnp.broadcast_to(jnp.arange(TOKENS) < length, (2, TOKENS))
  masked = model.apply(variables, full.quantized, kept, method=lambda m, q, k: m.decoder(q, k))
  np.testing.assert_allclose(from_prefix, masked, atol=2e-5)
  reconstruction, _ = model.apply(variables, images, num_tokens=length)
  np.testing.assert_allclose(reconstruction, from_prefix, atol=1e-5)
  assert prefix.quantized.shape == (2, length, 4)


def test_causal_latent_attention_makes_tokens_depend_on_earlier_latents_only(model_and_variables):
  """Perturbing latent 5 leaves tokens 0..4 bit-identical and moves every token 5..K-1.

  The perturbation is a random direction, not a constant: LayerNorm subtracts the mean over the width, so a constant
  shift of a latent is (almost) invisible to the blocks and says nothing about which tokens attend to it.
  """
  model, variables = model_and_variables
  images = random_images(3)
  tokens = lambda v: model.apply(v, images, method=lambda m, x: m.encoder(x))
  changed = 5
  params = jax.tree.map(lambda x: x, nn.unbox(variables["params"]))
  latents = params["encoder"]["latent_tokens"]
  direction = jax.random.normal(jax.random.PRNGKey(7), latents.shape[1:])
  params["encoder"]["latent_tokens"] = latents.at[changed].add(direction)
  before, after = tokens(variables), tokens({**variables, "params": params})
  np.testing.assert_array_equal(before[:, :changed], after[:, :changed])
  moved = np.abs(before[:, changed:] - after[:, changed:]).max(axis=-1)  # [batch, later tokens]
  assert moved.min() > 1e-4, moved


def test_full_attention_mixes_all_latents():
  model = make_model(latent_attention="full", token_dropout="none")
  images = random_images(4)
  variables = model.init({"params": jax.random.PRNGKey(1)}, images)
  params = jax.tree.map(lambda x: x, nn.unbox(variables["params"]))
  params["encoder"]["latent_tokens"] = params["encoder"]["latent_tokens"].at[TOKENS - 1].add(1.0)
  before = model.apply(variables, images, method=lambda m, x: m.encoder(x))
  after = model.apply({**variables, "params": params}, images, method=lambda m, x: m.encoder(x))
  assert np.abs(before[:, 0] - after[:, 0]).max() > 0


def test_training_call_drops_a_prefix_and_has_gradients(model_and_variables):
  model, variables = model_and_variables
  images = random_images(5, batch=4)

  def loss(params):
    (reconstruction, output), _ = model.apply({**variables, "params": params}, images, train=True,
                                              mutable=["quantizer"], rngs={"dropout": jax.random.PRNGKey(7)})
    return jnp.mean((reconstruction - images)**2) + output.loss, output.metrics

  grads, metrics = jax.jit(jax.grad(loss, has_aux=True))(variables["params"])
  assert 1 <= float(metrics["mean_kept_tokens"]) <= TOKENS
  for path in [("encoder", "patch_embedding", "kernel"), ("decoder", "output", "kernel"), ("bottleneck", "codebook")]:
    leaf = grads
    for key in path:
      leaf = leaf[key]
    leaf = nn.unbox(leaf)
    assert np.all(np.isfinite(leaf)) and np.abs(leaf).max() > 0, path


def test_bfloat16_computation_keeps_float32_params():
  model = make_model(dtype="bfloat16")
  images = random_images(6)
  variables = model.init({"params": jax.random.PRNGKey(0)}, images)
  assert {leaf.dtype for leaf in jax.tree.leaves(nn.unbox(variables["params"]))} == {jnp.dtype(jnp.float32)}
  reference_model = make_model()
  indices, _ = reference_model.apply(variables, images, method=reference_model.encode)
  decoded = model.apply(variables, indices, method=model.decode_indices)
  reference = reference_model.apply(variables, indices, method=reference_model.decode_indices)
  assert decoded.dtype == jnp.float32
  assert np.abs(decoded - reference).max() < 0.05 * np.abs(reference).max()
  latents = model.apply(variables, images, method=lambda m, x: m.encoder(x))
  reference_latents = reference_model.apply(variables, images, method=lambda m, x: m.encoder(x))
  assert np.abs(latents - reference_latents).max() < 0.05 * np.abs(reference_latents).max()


def test_residual_quantizer_and_proxy_code_output():
  model = make_model(quantizer={"name": "residual_vq", "codebook_size": 8, "num_stages": 2},
                     decoder_output="proxy_codes", proxy_codebook_size=10, token_dropout="none")
  images = random_images(7)
  variables = model.init({"params": jax.random.PRNGKey(0)}, images)
  logits, output = model.apply(variables, images)
  assert output.indices.shape == (2, TOKENS, 2)
  assert logits.shape == (2, IMAGE // PATCH, IMAGE // PATCH, 10)
  decoded = model.apply(variables, output.indices[:, :2], method=model.decode_indices)
  assert decoded.shape == logits.shape
  assert model.bits_per_image(IMAGE) == TOKENS * 2 * 3


def test_parameters_carry_logical_axis_names(model_and_variables):
  _, variables = model_and_variables
  encoder = variables["params"]["encoder"]
  assert encoder["positions"].names == ("position", "embed")
  assert encoder["patch_embedding"]["kernel"].names == ("patch", "embed")
  assert variables["params"]["decoder"]["output"]["kernel"].names == ("embed", "patch")


def test_input_embedding_scale_scales_only_the_embedding_kernels():
  images = random_images(5)
  plain = nn.unbox(make_model().init(jax.random.PRNGKey(0), images)["params"])
  scaled = nn.unbox(make_model(input_embedding_scale=0.1).init(jax.random.PRNGKey(0), images)["params"])
  scaled_paths = (("encoder", "patch_embedding", "kernel"), ("decoder", "from_tokens", "kernel"))
  for path, value in jax.tree_util.tree_flatten_with_path(plain)[0]:
    keys = tuple(k.key for k in path)
    other = scaled
    for key in keys:
      other = other[key]
    np.testing.assert_allclose(other, 0.1 * value if keys in scaled_paths else value, rtol=1e-6)
  with pytest.raises(ValueError, match="input_embedding_scale must be > 0"):
    make_model(input_embedding_scale=0.0).init(jax.random.PRNGKey(0), images)


def test_bad_inputs_raise(model_and_variables):
  model, variables = model_and_variables
  with pytest.raises(ValueError, match=r"\[batch, 16, 16, 3\].*\(2, 20, 20, 3\)"):
    model.apply(variables, random_images(0, size=20))
  with pytest.raises(ValueError, match=r"num_tokens must lie in \[1, 8\], got 9"):
    model.apply(variables, random_images(0), num_tokens=9, method=model.encode)
  with pytest.raises(ValueError, match=r"1 <= k <= 8.*\(2, 9\)"):
    model.apply(variables, jnp.zeros((2, 9), jnp.int32), method=model.decode_indices)
  with pytest.raises(ValueError, match="multiple of patch_size"):
    make_model(patch_size=5).init(jax.random.PRNGKey(0), random_images(0))
  with pytest.raises(ValueError, match="ViT size must be one of"):
    make_model(encoder_size="huge").init(jax.random.PRNGKey(0), random_images(0))
  with pytest.raises(ValueError, match="token dropout must be one of"):
    make_model(token_dropout="random").init(jax.random.PRNGKey(0), random_images(0))
  with pytest.raises(ValueError, match="dtype must be one of"):
    make_model(dtype="float16").init(jax.random.PRNGKey(0), random_images(0))


def test_flops_per_image_counts_forward_matmuls():
  """Against a direct count of every matmul in the forward pass, layer by layer (independent of the formula)."""
  model = make_model(image_size=32, patch_size=8, num_latent_tokens=4, token_dim=3)
  patches, tokens, width, mlp = 16, 1 + 16 + 4, 32, 64  # class token, patches, latents
  attention = 4 * tokens * width * width + 2 * tokens * tokens * width
  block = 2 * (attention + 2 * tokens * width * mlp)
  expected = (2 * block + 2 * patches * (8 * 8 * 3) * width + 2 * 4 * 3 * width  # encoder
              + 2 * 4 * 3 * width + 2 * patches * width * (8 * 8 * 3) + 2 * 32 * 32 * (3 * 3 * 3) * 3)  # decoder
  assert titok.flops_per_image(model) == expected
  proxy = make_model(image_size=32, patch_size=8, num_latent_tokens=4, token_dim=3, decoder_output="proxy_codes",
                     proxy_codebook_size=10)
  head = 2 * patches * (width * 2 * width + 2 * width * 10)  # 1x1 conv to 2 * width, tanh, 1x1 conv to 10 logits
  assert titok.flops_per_image(proxy) == expected - 2 * patches * width * (8 * 8 * 3) - 2 * 32 * 32 * 27 * 3 + head


def test_pixel_decoder_norm_groups_reach_the_maskgit_vqgan_decoder():
  """Same parameters, other GroupNorm groups, other images; a count that does not split the channels raises."""
  def pixel_model(norm_groups):
    return make_model(patch_size=4, decoder_output="proxy_codes_to_pixels", proxy_codebook_size=8, pixel_code_dim=2,
                      pixel_decoder_channels=8, pixel_decoder_multipliers=(1, 2, 2), pixel_decoder_res_blocks=1,
                      pixel_decoder_norm_groups=norm_groups)
  images = random_images(1)
  variables = pixel_model(4).init(jax.random.PRNGKey(0), images)
  four, _ = pixel_model(4).apply(variables, images)
  one_per_channel, _ = pixel_model(32).apply(variables, images)
  assert four.shape == images.shape
  assert float(jnp.max(jnp.abs(four - one_per_channel))) > 1e-3
  with pytest.raises(ValueError, match="multiple of 3"):
    pixel_model(3).init(jax.random.PRNGKey(0), images)
