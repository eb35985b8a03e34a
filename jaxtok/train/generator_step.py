"""The pure training and evaluation steps of a token generator (MaskGIT's masked token transformer, Chang et al.
2022, "MaskGIT: Masked Generative Image Transformer", or any generator of `jaxtok.registry.MODELS`): the model's own
`loss(tokens, labels, ...)` method (rng streams "masking" and "dropout"), AdamW, EMA of weights.
"""
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxtok.train.state import TrainState

Metrics = dict[str, jax.Array]


def make_train_step(model: nn.Module, optimizer: optax.GradientTransformation, *, ema_decay: float,
                    learning_rate_fn: Callable[[jax.Array], jax.Array],
                    loss_kwargs: dict[str, Any]) -> Callable[[TrainState, Any], tuple[TrainState, Metrics]]:
  """Returns `train_step(state, batch) -> (state, metrics)`, pure (jit it, donating the state).

  batch: `{"tokens": int32 [b, L(, C)], "label": int32 [b]}`. Step s draws its masking and dropout keys from
  `fold_in(state.rng, s)`, so a resumed run repeats them. `loss_kwargs` go to `model.loss` (its training options:
  label smoothing, class dropout, a masking schedule, ...).
  """

  def train_step(state: TrainState, batch: Any) -> tuple[TrainState, Metrics]:
    masking_rng, dropout_rng = jax.random.split(jax.random.fold_in(state.rng, state.step))

    def loss_fn(params):
      return model.apply({"params": params, **state.model_state}, batch["tokens"], batch["label"], method="loss",
                         rngs={"masking": masking_rng, "dropout": dropout_rng}, **loss_kwargs)

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {**metrics, "loss": loss, "grad_norm": optax.tree.norm(grads),
               "learning_rate": learning_rate_fn(state.step)}
    return state.apply_gradients(grads, optimizer, ema_decay), metrics

  return train_step


def make_eval_step(model: nn.Module, loss_kwargs: dict[str, Any]) -> Callable[..., tuple[jax.Array, jax.Array]]:
  """Returns jitted `eval_step(params, model_state, tokens, labels, key) -> (loss, accuracy)` float32 scalars.

  Deterministic (no dropout); `key` fixes the masking, so evaluations at different steps see the same masks. Pass
  loss_kwargs with label_smoothing 0 and class_dropout 0 for the plain held-out cross-entropy.
  """

  def eval_step(params, model_state, tokens, labels, key):
    loss, metrics = model.apply({"params": params, **model_state}, tokens, labels, method="loss", train=False,
                                rngs={"masking": key}, **loss_kwargs)
    return loss, metrics["accuracy"]

  return jax.jit(eval_step)


def eval_key(seed: int, batch_index: int) -> jax.Array:
  """The fixed masking key of held-out batch `batch_index`."""
  return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), 0x6576616C), batch_index)  # "eval"


def mean_over_batches(values: list[tuple[jax.Array, jax.Array]]) -> tuple[float, float]:
  """(mean loss, mean accuracy) over equal-size batches."""
  losses, accuracies = zip(*values)
  return float(jnp.mean(jnp.stack(losses))), float(jnp.mean(jnp.stack(accuracies)))
