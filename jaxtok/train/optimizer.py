"""The optax optimizer named by a config's `optimizer` section: AdamW with linear warmup and cosine decay."""
from typing import Any

import optax


def learning_rate_schedule(optimizer_config: Any, num_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `learning_rate`, then cosine decay to `learning_rate * end_learning_rate_fraction`."""
  peak = optimizer_config.learning_rate
  warmup = min(optimizer_config.warmup_steps, num_steps)
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=peak, warmup_steps=warmup, decay_steps=max(num_steps, warmup + 1),
      end_value=peak * optimizer_config.end_learning_rate_fraction)


def make_optimizer(optimizer_config: Any, num_steps: int) -> optax.GradientTransformation:
  """AdamW (decoupled weight decay) after global-norm gradient clipping (0 = no clipping)."""
  adamw = optax.adamw(learning_rate_schedule(optimizer_config, num_steps), b1=optimizer_config.beta1,
                      b2=optimizer_config.beta2, weight_decay=optimizer_config.weight_decay)
  if optimizer_config.grad_clip_norm > 0:
    return optax.chain(optax.clip_by_global_norm(optimizer_config.grad_clip_norm), adamw)
  return adamw
