"""Computation dtypes by config name: layers compute in these, parameters stay float32."""
from typing import Any

import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str) -> Any:
  """"float32" | "bfloat16" -> the jnp dtype the layers compute in (parameters stay float32)."""
  if name not in DTYPES:
    raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {name!r}.")
  return DTYPES[name]
