"""A fresh run's weights started from other runs: a trained model's (`train.params_from`) and TiTok's pixel decoder
from a trained MaskGIT-VQGAN (`train.pixel_decoder_from`), the start of the TiTok paper's stage 2.

The released TiTok models decode through a MaskGIT-VQGAN (`decoder_output="proxy_codes_to_pixels"`): the ViT
decoder's logits over the 2D tokenizer's codes, softmax, times its codebook, into its conv decoder. Officially that
decoder and codebook are the pretrained MaskGIT-VQGAN's (stage 1 trains TiTok to predict its codes, stage 2
fine-tunes the decoder). `train.pixel_decoder_from = <workdir of a jaxtok MaskGIT-VQGAN run>` gives a fresh TiTok run
that VQGAN's evaluation weights (EMA) as `decoder/pixel_decoder` and its codebook (`indices_to_codes` of every id) as
`decoder/pixel_codebook`; everything then trains end to end on the pixel losses (jaxtok's departure from the two
stages, see `jaxtok.tokenizers.titok`). `train.params_from = <workdir>` first copies every weight (and other variable,
such as an EMA codebook) of that run's evaluation weights whose path and shape the new model has, e.g. a stage-1
TiTok's (`jaxtok.train.proxy_codes`) into its stage-2 model; the official stage 2 also freezes the encoder and the
quantizer, jaxtok trains everything. A resumed run takes its weights from its own checkpoint.
"""
import pathlib
from typing import Any

from absl import logging
import flax
import jax
import jax.numpy as jnp
import numpy as np

from jaxtok import config_validation
from jaxtok.train import inference
from jaxtok.train import workdir_config
from jaxtok.train.state import TrainState

# TiTok field -> the MaskGIT-VQGAN field it must equal.
MATCHING_FIELDS = {"pixel_decoder_channels": "base_channels", "pixel_decoder_multipliers": "channel_multipliers",
                   "pixel_decoder_res_blocks": "num_res_blocks", "pixel_decoder_norm_groups": "norm_groups",
                   "pixel_code_dim": "latent_dim", "pixel_range": "pixel_range"}


def check_titok(config: Any) -> None:
  """Raises ConfigError unless `config` is a TiTok whose decoder has a MaskGIT-VQGAN to start from."""
  if config.model_name != "titok" or config.model.decoder_output != "proxy_codes_to_pixels":
    raise config_validation.ConfigError(
        f"train.pixel_decoder_from starts a TiTok's MaskGIT-VQGAN pixel decoder: it needs model_name 'titok' with "
        f"model.decoder_output 'proxy_codes_to_pixels', got {config.model_name!r} with "
        f"{config.model.get('decoder_output')!r}.")


def _check_vqgan(titok: Any, vqgan_config: Any, workdir: pathlib.Path, codebook_size: int | None) -> None:
  if vqgan_config.model_name != "vqgan":
    raise config_validation.ConfigError(f"train.pixel_decoder_from must be a MaskGIT-VQGAN workdir (model_name "
                                        f"'vqgan'), got model_name {vqgan_config.model_name!r} in {workdir}.")
  wanted = {**{field: titok[field] for field in MATCHING_FIELDS}, "proxy_codebook_size": titok.proxy_codebook_size}
  found = {**{field: vqgan_config.model[name] for field, name in MATCHING_FIELDS.items()},
           "proxy_codebook_size": codebook_size}
  differing = config_validation.differences(wanted, found, prefix="model.")
  if differing:
    raise config_validation.ConfigError(
        f"The MaskGIT-VQGAN in {workdir} does not fit this TiTok's pixel decoder; fields that differ (TiTok value vs "
        f"the VQGAN's): {differing}")


def vqgan_decoder(titok: Any, workdir: str | pathlib.Path) -> tuple[dict[str, Any], jax.Array]:
  """The evaluation weights of the MaskGIT-VQGAN trained in `workdir`: (its decoder's params, its codebook
  `[codebook_size, latent_dim]`), after checking they fit the TiTok model config `titok`."""
  workdir = pathlib.Path(workdir)
  restored = inference.restore_for_inference(None, workdir, may_differ=workdir_config.RUN_CONTROL_FIELDS,
                                             purpose="TiTok's pixel decoder")
  codebook_size = restored.model.codebook_size
  _check_vqgan(titok, restored.config, workdir, codebook_size)
  codebook = restored.model.apply(restored.variables, jnp.arange(codebook_size),
                                  method=lambda model, ids: model.bottleneck.indices_to_codes(ids))
  return restored.variables["params"]["decoder"], codebook


def _placed(new: np.ndarray, old: jax.Array) -> jax.Array:
  """A new buffer (the train step donates the state: no two leaves may share one) of `new`, laid out as `old`."""
  if new.shape != old.shape:
    raise config_validation.ConfigError(f"A MaskGIT-VQGAN weight of shape {new.shape} does not fit TiTok's "
                                        f"{old.shape}.")
  return jax.device_put(new.astype(old.dtype), old.sharding)


def _with_pixel_decoder(params: dict[str, Any], decoder: Any, codebook: np.ndarray) -> dict[str, Any]:
  titok_decoder = params["decoder"]
  started = {**titok_decoder, "pixel_decoder": jax.tree.map(_placed, decoder, titok_decoder["pixel_decoder"]),
             "pixel_codebook": _placed(codebook, titok_decoder["pixel_codebook"])}
  return {**params, "decoder": started}


def _copied(target: dict[str, Any], source: dict[str, Any], workdir: pathlib.Path) -> tuple[dict[str, Any], int]:
  """`target` with each leaf that `source` has at the same path replaced by a new buffer of it; the count copied."""
  flat_target, flat_source = flax.traverse_util.flatten_dict(target), flax.traverse_util.flatten_dict(source)
  shared = [path for path in flat_target if path in flat_source]
  misfits = [f"{'/'.join(path)} {flat_source[path].shape} vs {flat_target[path].shape}" for path in shared
             if flat_source[path].shape != flat_target[path].shape]
  if misfits:
    raise config_validation.ConfigError(f"train.params_from = {workdir}: weights at the same path with other shapes "
                                        f"(there vs here): {', '.join(misfits[:4])}.")
  copied = {path: _placed(np.asarray(flat_source[path]), flat_target[path]) for path in shared}
  return flax.traverse_util.unflatten_dict({**flat_target, **copied}), len(shared)


def start_from_run(state: TrainState, workdir: str | pathlib.Path) -> TrainState:
  """`state` of a fresh run with every weight and variable the run trained in `workdir` has at the same path."""
  workdir = pathlib.Path(workdir)
  restored = inference.restore_for_inference(None, workdir, may_differ=workdir_config.RUN_CONTROL_FIELDS,
                                             purpose="a fresh run's starting weights")
  source = jax.device_get(restored.variables)
  params, count = _copied(state.params, source["params"], workdir)
  ema_params, _ = _copied(state.ema_params, source["params"], workdir)
  model_state = {name: _copied(collection, source.get(name, {}), workdir)[0]
                 for name, collection in state.model_state.items()}
  if not count:
    raise config_validation.ConfigError(f"train.params_from = {workdir} has no weight at a path this model has.")
  total = len(flax.traverse_util.flatten_dict(state.params))
  logging.info("Started %d of %d weight arrays from the run in %s.", count, total, workdir)
  return state.replace(params=params, ema_params=ema_params, model_state=model_state)


def start_pixel_decoder(state: TrainState, titok: Any, workdir: str | pathlib.Path) -> TrainState:
  """`state` of a fresh TiTok run with `params` and `ema_params` holding the VQGAN's decoder and codebook."""
  decoder, codebook = jax.device_get(vqgan_decoder(titok, workdir))
  if jax.tree.structure(decoder) != jax.tree.structure(state.params["decoder"]["pixel_decoder"]):
    raise config_validation.ConfigError(f"The MaskGIT-VQGAN decoder in {workdir} has other layers than TiTok's "
                                        f"pixel decoder.")
  logging.info("TiTok's pixel decoder and codebook start from the MaskGIT-VQGAN in %s.", workdir)
  return state.replace(params=_with_pixel_decoder(state.params, decoder, codebook),
                       ema_params=_with_pixel_decoder(state.ema_params, decoder, codebook))
