"""TiTok's stage 1 (Yu et al. 2024, the paper's two-stage recipe): learn a frozen MaskGIT-VQGAN's codes.

A TiTok with `decoder_output="proxy_codes"` outputs logits `[b, h, w, V]` over a 2D tokenizer's V codes per patch.
With `train.proxy_codes_from = <workdir of a trained jaxtok MaskGIT-VQGAN>`, each step encodes the batch with that
VQGAN (its evaluation weights, frozen) and the loss is the cross-entropy of the logits against its codes plus the
quantizer's loss (official `ReconstructionLoss_Stage1`, `quantizer_weight` 1). Evaluation decodes the argmax codes
with the VQGAN (as the official `eval_reconstruction`), so PSNR and the rest compare images as for any tokenizer.
Stage 2 starts from such a run: `train.params_from` (its weights) with `train.pixel_decoder_from` (the VQGAN's
decoder), `decoder_output="proxy_codes_to_pixels"` (see `jaxtok.train.warm_start`).
"""
import dataclasses
import pathlib
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxtok import config_validation
from jaxtok.train import inference
from jaxtok.train import workdir_config
from jaxtok.train.state import TrainState

Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ProxyTokenizer:
  """A frozen MaskGIT-VQGAN as stage 1's teacher.

  Attributes:
    workdir: where it was trained.
    encode: images `[b, H, W, 3]` in [-1, 1] -> int32 codes `[b, h, w]` (traceable, no gradient).
    decode_logits: logits `[b, h, w, V]` -> images `[b, H, W, 3]`, the argmax codes decoded (traceable).
  """
  workdir: pathlib.Path
  encode: Callable[[jax.Array], jax.Array]
  decode_logits: Callable[[jax.Array], jax.Array]


def check_config(config: Any) -> None:
  """Raises ConfigError unless a proxy-code TiTok and `train.proxy_codes_from` come together, with stage 1's losses."""
  model = config.model
  proxy_model = config.model_name == "titok" and model.get("decoder_output") == "proxy_codes"
  teacher = config.train.proxy_codes_from
  if proxy_model != bool(teacher):
    raise config_validation.ConfigError(
        "A TiTok with model.decoder_output 'proxy_codes' (stage 1) trains on a MaskGIT-VQGAN's codes, named by "
        f"train.proxy_codes_from, and only it does: got model_name {config.model_name!r}, decoder_output "
        f"{model.get('decoder_output')!r}, train.proxy_codes_from {teacher!r}.")
  if proxy_model and (config.losses.perceptual_weight > 0 or config.losses.adversarial_weight > 0):
    raise config_validation.ConfigError("Stage 1 (train.proxy_codes_from) trains on the cross-entropy of codes only: "
                                        "losses.perceptual_weight and losses.adversarial_weight must be 0, got "
                                        f"{config.losses.perceptual_weight} and {config.losses.adversarial_weight}.")
  if proxy_model and model.token_dropout != "none":
    raise config_validation.ConfigError(f"Stage 1 (train.proxy_codes_from) trains a fixed-length TiTok: "
                                        f"model.token_dropout must be 'none', got {model.token_dropout!r}.")


def restore(titok: nn.Module, image_size: int, workdir: str | pathlib.Path) -> ProxyTokenizer:
  """The MaskGIT-VQGAN trained in `workdir`, checked against the proxy-code TiTok `titok` at `image_size`."""
  workdir = pathlib.Path(workdir)
  restored = inference.restore_for_inference(None, workdir, may_differ=workdir_config.RUN_CONTROL_FIELDS,
                                             purpose="TiTok's proxy codes")
  vqgan, variables = restored.model, restored.variables
  wanted = {"model_name": "vqgan", "data.image_size": image_size, "codebook size": titok.proxy_codebook_size,
            "downsampling factor": titok.patch_size}
  found = {"model_name": restored.config.model_name, "data.image_size": restored.config.data.image_size,
           "codebook size": getattr(vqgan, "codebook_size", None),
           "downsampling factor": getattr(vqgan, "downsampling_factor", None)}
  differing = config_validation.differences(wanted, found)
  if differing:
    raise config_validation.ConfigError(
        f"train.proxy_codes_from = {workdir} does not fit this TiTok (wanted vs found): {differing}. The TiTok's "
        "proxy_codebook_size must be the VQGAN's codebook size and its patch_size the VQGAN's downsampling factor.")

  def encode(images: jax.Array) -> jax.Array:
    return jax.lax.stop_gradient(vqgan.apply(variables, images, method="encode")[0])

  def decode_logits(logits: jax.Array) -> jax.Array:
    return vqgan.apply(variables, jnp.argmax(logits, axis=-1), method="decode_indices")

  return ProxyTokenizer(workdir, encode, decode_logits)


def proxy_code_loss(logits: jax.Array, codes: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Logits `[b, h, w, V]`, codes int `[b, h, w]` -> (mean cross-entropy, accuracy of the argmax), scalars."""
  if logits.shape[:-1] != codes.shape:
    raise ValueError(f"Proxy-code logits [b, h, w, V] and codes [b, h, w] disagree: {logits.shape} and "
                     f"{codes.shape}.")
  loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), codes))
  return loss, jnp.mean(jnp.argmax(logits, axis=-1) == codes)


def make_train_step(model: nn.Module, teacher: ProxyTokenizer, optimizer: optax.GradientTransformation, *,
                    ema_decay: float, learning_rate_fn: Callable[[jax.Array], jax.Array]
                    ) -> Callable[[TrainState, Any], tuple[TrainState, Metrics]]:
  """Returns stage 1's pure `train_step(state, batch) -> (state, metrics)`: cross-entropy + quantizer loss."""

  def train_step(state: TrainState, batch: Any) -> tuple[TrainState, Metrics]:
    images = batch["image"]
    codes = teacher.encode(images)
    quantizer_rng, dropout_rng = jax.random.split(jax.random.fold_in(state.rng, state.step))

    def loss_fn(params):
      (logits, output), model_state = model.apply(
          {"params": params, **state.model_state}, images, train=True, mutable=list(state.model_state),
          rngs={"quantizer": quantizer_rng, "dropout": dropout_rng})
      cross_entropy, accuracy = proxy_code_loss(logits, codes)
      metrics = {"proxy_code_loss": cross_entropy, "proxy_code_accuracy": accuracy, "quantizer_loss": output.loss,
                 **{f"quantizer/{k}": v for k, v in output.metrics.items()}}
      return cross_entropy + output.loss, (metrics, model_state)

    (loss, (metrics, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    new_state = state.apply_gradients(grads, optimizer, ema_decay, model_state=dict(model_state))
    metrics.update(loss=loss, grad_norm=optax.tree.norm(grads), learning_rate=learning_rate_fn(state.step))
    return new_state, metrics

  return train_step
