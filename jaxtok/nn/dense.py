"""A Dense layer with Xavier-uniform kernels whose parameters carry logical axis names."""
from typing import Any

import flax.linen as nn


def dense(features: int, axes: tuple[str | None, str | None], dtype: Any, name: str,
          init_scale: float = 1.0) -> nn.Dense:
  """A Dense layer whose kernel `[in, features]` (Xavier uniform times `init_scale`) and bias carry `axes`."""
  kernel_init = nn.initializers.variance_scaling(init_scale**2, "fan_avg", "uniform")
  return nn.Dense(features, dtype=dtype, name=name,
                  kernel_init=nn.with_logical_partitioning(kernel_init, axes),
                  bias_init=nn.with_logical_partitioning(nn.initializers.zeros, axes[1:]))
