"""The ImageNet configs are the official models: parameter counts equal bytedance/1d-tokenizer's to the unit
(counted by instantiating the official modules: TiTok(config) with finetune_decoder False / True, and
PretrainedTokenizer's encoder, decoder and quantizer). Shapes only (`jax.eval_shape`), no download."""
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok import registry
from jaxtok.cli import load_config_file

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments"
OFFICIAL_TITOK = {  # (stage 1: finetune_decoder=False, released: finetune_decoder=True)
    "S-128": (52_934_156, 83_674_639),
    "B-64": (174_073_612, 204_814_095),
    "L-32": (610_314_252, 641_054_735),
}
OFFICIAL_MASKGIT_VQGAN = 54_515_587


def _config(name: str, arg: str):
  return load_config_file(f"{EXPERIMENTS / name}.py:{arg}")


def _parameters(model_name: str, fields) -> int:
  model = registry.build_model(model_name, fields)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 256, 256, 3)))
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(nn.unbox(shapes["params"])))


@pytest.mark.slow
@pytest.mark.parametrize("size", sorted(OFFICIAL_TITOK))
def test_titok_imagenet_configs_have_the_official_parameter_counts(size):
  config = _config("titok_imagenet", size)
  stage1, released = OFFICIAL_TITOK[size]
  assert _parameters(config.model_name, config.model) == released
  with config.unlocked():
    config.model.decoder_output = "proxy_codes"
  assert _parameters(config.model_name, config.model) == stage1


def test_vqgan_imagenet_config_has_the_official_parameter_count():
  config = _config("vqgan_imagenet", "f16")
  assert _parameters(config.model_name, config.model) == OFFICIAL_MASKGIT_VQGAN
