"""Parameter initialisers that carry logical axis names, for `jaxtok.sharding`'s logical-to-mesh rules.

The names in use: "embed" (model width), "mlp", "heads", "head_dim", "vocab", "codebook", "position", "patch",
"conv_height", "conv_width", "conv_in", "conv_out", "norm"; activations add "batch" and "length".
"""
from typing import Sequence

import flax.linen as nn

Names = Sequence[str | None]


def kernel(names: Names, init=nn.linear.default_kernel_init):
  """`init` (default: lecun normal) whose parameter has logical axes `names`."""
  return nn.with_logical_partitioning(init, tuple(names))


def zeros(names: Names):
  return nn.with_logical_partitioning(nn.initializers.zeros_init(), tuple(names))


def ones(names: Names):
  return nn.with_logical_partitioning(nn.initializers.ones_init(), tuple(names))


def constrain_activation(x, names: Names):
  """`nn.with_logical_constraint(x, names)` for `x` of rank len(names) (e.g. `[batch, length, embed]`); other
  ranks (the same layer applied to `[batch, embed]`) pass through unconstrained."""
  return nn.with_logical_constraint(x, tuple(names)) if x.ndim == len(names) else x
