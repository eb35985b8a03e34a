"""The official MaskGIT generators ImageBert and UViTBert: parameter counts equal the official ones to the unit (no
download: counts and configs made by the official code, `tests/fixtures/official/maskgit_parameter_counts.npz`),
for the official configs and for `experiments/maskgit_imagenet.py`; the generator interface under jit and grad.
(Their outputs against the official code: `tests/convert/test_maskgit.py`.)"""
import json
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok import registry
from jaxtok.cli import load_config_file
from jaxtok.convert import maskgit as convert_maskgit
from jaxtok.decoders import image_bert

REPO = pathlib.Path(__file__).resolve().parents[2]
with np.load(REPO / "tests" / "fixtures" / "official" / "maskgit_parameter_counts.npz") as _arrays:
  OFFICIAL = dict(_arrays)
EXPERIMENT_ARGS = {"titok_l32": "L-32", "titok_b64": "B-64", "titok_s128": "S-128"}


def parameter_count(model) -> int:
  abstract = jax.eval_shape(lambda: nn.unbox(model.init(
      jax.random.key(0), jnp.zeros((1, model.sequence_length), jnp.int32), jnp.zeros((1,), jnp.int32))))
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(abstract["params"]))


@pytest.mark.parametrize("name", EXPERIMENT_ARGS)
def test_parameter_counts_equal_the_official_ones(name):
  official = int(OFFICIAL[f"{name}/parameters"])
  from_official_config = convert_maskgit.generator_from_config(json.loads(str(OFFICIAL[f"{name}/config"])))
  assert parameter_count(from_official_config) == official
  config = load_config_file(f"{REPO}/experiments/maskgit_imagenet.py:{EXPERIMENT_ARGS[name]}")
  from_experiment = registry.build_model(config.model_name, config.model)
  assert type(from_experiment) is type(from_official_config)
  assert parameter_count(from_experiment) == official
  print(f"{name}: {type(from_experiment).__name__} {official:,} parameters, as the official one")


@pytest.mark.parametrize("model_class", [image_bert.ImageBert, image_bert.UViTBert])
def test_loss_and_gradients_under_jit(model_class):
  model = model_class(vocab_size=12, sequence_length=6, num_classes=3, width=16, depth=2, num_heads=2, mlp_dim=32)
  tokens = jax.random.randint(jax.random.key(0), (4, 6), 0, 12)
  labels = jnp.array([0, 1, 2, 3])  # 3 = the null class
  params = model.init(jax.random.key(1), tokens, labels)["params"]
  logits = jax.jit(model.apply)({"params": params}, tokens, labels)
  assert logits.shape == (4, 6, 12) and logits.dtype == jnp.float32
  # Each example's logits depend on its own class only: the batch does not mix.
  np.testing.assert_allclose(jax.jit(model.apply)({"params": params}, tokens[:1], labels[:1]), logits[:1],
                             rtol=1e-5, atol=1e-6)

  def loss(params):
    return model.apply({"params": params}, tokens, labels, method="loss",
                       rngs={"masking": jax.random.key(2), "dropout": jax.random.key(3)})[0]

  value, grads = jax.jit(jax.value_and_grad(loss))(params)
  assert np.isfinite(value)
  norms = {"/".join(str(key.key) for key in path): float(jnp.linalg.norm(leaf))
           for path, leaf in jax.tree_util.tree_flatten_with_path(nn.unbox(grads))[0]}
  assert all(norm > 0 for path, norm in norms.items() if "token_type" not in path), norms
  if model_class is image_bert.ImageBert:  # row 1 of the token-type table is never read, as in the official model
    np.testing.assert_array_equal(nn.unbox(grads)["token_type_embedding"][1], 0)


def test_bad_inputs_raise():
  model = image_bert.ImageBert(vocab_size=12, sequence_length=6, num_classes=3, width=16, depth=1, num_heads=2,
                               mlp_dim=32)
  with pytest.raises(ValueError, match=r"tokens must have shape \[batch, 6\]"):
    model.init(jax.random.key(0), jnp.zeros((1, 5), jnp.int32), jnp.zeros(1, jnp.int32))
  with pytest.raises(ValueError, match="class_labels must have shape"):
    model.init(jax.random.key(0), jnp.zeros((2, 6), jnp.int32), jnp.zeros(3, jnp.int32))
