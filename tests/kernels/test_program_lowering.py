"""Whole programs lowered for 'cuda' and 'tpu' from this CPU host, alone and under a mesh of 8 simulated devices.

With `implementation=None` everywhere (the configs' defaults), one traced program must reach the Triton kernels
when lowered for cuda and the Mosaic ones for tpu; under a mesh each device's kernel must see only its shard. The
models are built from the experiment configs, the train step by `jaxtok.train` as the main job builds it.
"""
import functools
import pathlib
import re

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxtok.kernels as sa
from jaxtok import cli
from jaxtok import registry
from jaxtok import sharding
from jaxtok.decoders import masked_sampling
from jaxtok.losses import settings as loss_settings
from jaxtok.nn import transformer
from jaxtok.train import optimizer as optimizer_lib
from jaxtok.train import state as state_lib
from jaxtok.train import step as step_lib
from lowering import KERNEL_CALLS
from lowering import assert_kernel_calls
from lowering import custom_calls
from lowering import lower_each

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments"
_KERNEL_OF = {"cuda": "triton", "tpu": "mosaic_tpu"}
_ATTENTION_KERNELS = ("sparse_attention_forward", "sparse_attention_dq", "sparse_attention_dkv")


def _config(name: str, arg: str = ""):
  return cli.load_config_file(f"{EXPERIMENTS / name}.py" + (f":{arg}" if arg else ""))


def _mesh(num_devices: int):
  return sharding.make_mesh((num_devices, 1, 1), devices=jax.devices()[:num_devices])


def _kernel_operand_shapes(module: str, target: str) -> list[str]:
  """Operand types of every call of `target` (e.g. 'tensor<512x12xf32>')."""
  calls = re.findall(rf"custom_call @{re.escape(target)}\((.*?)\).*?: \((.*?)\) ->", module)
  return [types for _, types in calls]


def _abstract_train_state(model, optimizer, discriminator, example):
  """Shapes of `state.create_train_state`'s state (params with their logical-axis boxes), traced, never compiled."""
  def initialise(example):
    variables = flax.core.unfreeze(model.init({"params": jax.random.key(0), "quantizer": jax.random.key(1),
                                               "dropout": jax.random.key(2)}, example, train=False))
    params = variables.pop("params")
    discriminator_params = discriminator.init(jax.random.key(3), example)["params"]
    return state_lib.TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                                opt_state=optimizer.init(params), ema_params=params, rng=jax.random.PRNGKey(4),
                                discriminator_params=discriminator_params,
                                discriminator_opt_state=optimizer.init(discriminator_params))

  return jax.eval_shape(initialise, example)


def _titok_train_step_modules(num_devices: int, batch: int) -> dict[str, str]:
  """The main job's TiTok-B-64 train step at 256x256 (bf16, VQ 4096 x 12 cosine, PatchGAN), lowered per platform."""
  config = _config("titok_imagenet", "B-64")
  model = registry.build_model(config.model_name, config.model)
  optimizer = optimizer_lib.make_optimizer(config.optimizer, config.train.num_steps)
  losses = loss_settings.from_config(config.losses)
  mesh = _mesh(num_devices)
  rules = sharding.logical_rules(config.mesh.rules_preset, config.mesh.extra_rules)
  boxed_state = _abstract_train_state(model, optimizer, losses.discriminator, jax.ShapeDtypeStruct((1, 256, 256, 3),
                                                                                                   jnp.float32))
  state_shardings = sharding.tree_shardings(boxed_state, mesh, rules)
  train_step = step_lib.make_train_step(
      model, optimizer, loss_kind=config.train.reconstruction_loss, ema_decay=config.train.ema_decay,
      learning_rate_fn=optimizer_lib.learning_rate_schedule(config.optimizer, config.train.num_steps), losses=losses)
  jitted = jax.jit(train_step, in_shardings=(state_shardings, sharding.batch_sharding(mesh)),
                   out_shardings=(state_shardings, sharding.replicated(mesh)))
  images = jax.ShapeDtypeStruct((batch, 256, 256, 3), jnp.float32)
  state = nn.unbox(boxed_state)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    return lower_each(jitted, _KERNEL_OF, state, {"image": images})


@pytest.mark.slow
@pytest.mark.parametrize("num_devices", [1, 8])
def test_titok_train_step_reaches_the_lookup_kernel(num_devices):
  """Batch 16 x 64 latent tokens = 1024 rows; on 8 devices each kernel call sees its 128 rows."""
  for platform, module in _titok_train_step_modules(num_devices, batch=16).items():
    assert_kernel_calls(module, _KERNEL_OF[platform])
    rows = 16 * 64 // num_devices
    operands = _kernel_operand_shapes(module, KERNEL_CALLS[_KERNEL_OF[platform]])
    assert operands and all(re.match(rf"tensor<{rows}x", types) for types in operands), (platform, operands)


def _block_program(x, variables, block, mask):
  def loss(variables, x):
    return jnp.sum(block.apply(variables, x, mask=mask).astype(jnp.float32) ** 2)

  return jax.grad(loss, argnums=(0, 1))(variables, x)


@pytest.mark.parametrize("num_devices", [1, 8])
def test_sparse_transformer_block_forward_and_backward(num_devices):
  """A bf16 grouped-query block (8 heads of 64, 2 kv heads) under a sliding window, gradients of x and params."""
  batch, tokens, width = 8, 1024, 512
  block = transformer.TransformerBlock(num_heads=8, num_kv_heads=2, mlp_dim=2048, implementation="sparse",
                                       dtype=jnp.bfloat16)
  mask = sa.SlidingWindowMask(tokens, tokens, left=256, right=0)
  x = jax.ShapeDtypeStruct((batch, tokens, width), jnp.bfloat16)
  variables = jax.eval_shape(functools.partial(block.init, mask=mask), jax.random.key(0), x)
  mesh = _mesh(num_devices)
  with jax.set_mesh(mesh), nn.logical_axis_rules(sharding.logical_rules("data_parallel")):
    modules = lower_each(functools.partial(_block_program, block=block, mask=mask), _KERNEL_OF, x, variables)
  for platform, module in modules.items():
    assert_kernel_calls(module, _KERNEL_OF[platform], count=3, names=_ATTENTION_KERNELS)
    local_batch = batch // num_devices
    operands = _kernel_operand_shapes(module, KERNEL_CALLS[_KERNEL_OF[platform]])
    assert all(f"tensor<{local_batch}x" in types for types in operands), (platform, operands)


@pytest.mark.slow
@pytest.mark.parametrize("num_devices", [1, 8])
def test_maskgit_sampling_loop_lowers(num_devices):
  """The reference MaskGIT (24 layers, width 768) sampling 8 guided steps over 64 tokens as one program."""
  config = _config("maskgit_imagenet")
  model = registry.build_model(config.model_name, config.model)
  tokens, labels = jnp.zeros((1, model.sequence_length), jnp.int32), jnp.zeros((1,), jnp.int32)
  variables = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.key(0), tokens, labels)))
  sampling = config.sampling

  def sample(variables, key, labels):
    return masked_sampling.maskgit_sample(
        lambda tokens, class_labels: model.apply(variables, tokens, class_labels), key, labels,
        sequence_length=model.sequence_length, mask_id=model.mask_id, num_steps=sampling.num_steps,
        schedule=sampling.schedule, choice_temperature=sampling.choice_temperature,
        guidance_scale=sampling.guidance_scale, null_class=model.null_class).tokens

  mesh = _mesh(num_devices)
  with jax.set_mesh(mesh), nn.logical_axis_rules(sharding.logical_rules(config.mesh.rules_preset)):
    labels = jax.ShapeDtypeStruct((32,), jnp.int32)
    modules = lower_each(sample, _KERNEL_OF, variables, jax.eval_shape(lambda: jax.random.key(0)), labels)
  for module in modules.values():
    assert "stablehlo.while" in module  # the steps run inside the program, not from the host
    assert len(re.findall(r"stablehlo.dot_general", module)) >= 24 * 6  # every layer's projections and MLP
    assert not set(custom_calls(module)) & set(KERNEL_CALLS.values())  # dense attention: no Pallas kernel here
