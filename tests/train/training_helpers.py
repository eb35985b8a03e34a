"""Helpers of the training tests: checkpoint readers and tree comparison."""
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp

REPO = pathlib.Path(__file__).resolve().parents[2]


def read_checkpoint(workdir: pathlib.Path, step: int) -> dict:
  """The saved TrainState of `step` as nested dicts of NumPy arrays."""
  return ocp.StandardCheckpointer().restore((workdir / "checkpoints" / str(step) / "state").absolute())


def assert_trees_equal(a, b) -> None:
  """Same structure and bitwise-identical leaves."""
  leaves_a, tree_a = jax.tree.flatten(a)
  leaves_b, tree_b = jax.tree.flatten(b)
  assert tree_a == tree_b
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
