"""RMSNorm, SwiGLU and LlamaGen's 2D RoPE against float64 NumPy definitions written from the papers' formulas."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok.nn import rope_2d
from jaxtok.nn.rms_norm import RMSNorm
from jaxtok.nn.swiglu import SwiGLU
from jaxtok.nn.swiglu import swiglu_hidden_dim


def test_rms_norm_matches_its_definition_and_computes_in_float32():
  x = np.random.default_rng(0).normal(size=(2, 5, 16)) * 3
  layer = RMSNorm(epsilon=1e-5)
  scale = np.random.default_rng(1).normal(size=16)
  variables = {"params": {"scale": jnp.asarray(scale, jnp.float32)}}
  expected = x / np.sqrt(np.mean(x**2, -1, keepdims=True) + 1e-5) * scale
  np.testing.assert_allclose(layer.apply(variables, jnp.asarray(x, jnp.float32)), expected, rtol=1e-5, atol=1e-6)
  # bfloat16 inputs: the statistics are float32, only the result is rounded to bfloat16.
  bf16 = RMSNorm(dtype=jnp.bfloat16).apply(variables, jnp.asarray(x, jnp.bfloat16))
  assert bf16.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(bf16, np.float64), expected, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("width, hidden", [(768, 2048), (1024, 2816), (1280, 3584), (1536, 4096), (2560, 6912),
                                           (3200, 8704), (32, 256)])
def test_swiglu_hidden_width_follows_llamas_rule(width, hidden):
  assert swiglu_hidden_dim(width) == hidden


def test_swiglu_matches_its_definition():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(3, 8))
  layer = SwiGLU(hidden_dim=12)
  variables = nn.unbox(layer.init(jax.random.key(0), jnp.zeros((1, 8))))
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
  silu = lambda z: z / (1 + np.exp(-z))
  expected = (silu(x @ p["gate"]["kernel"]) * (x @ p["up"]["kernel"])) @ p["down"]["kernel"]
  np.testing.assert_allclose(layer.apply(variables, jnp.asarray(x, jnp.float32)), expected, rtol=1e-5, atol=1e-6)
  assert set(p) == {"gate", "up", "down"} and all(set(v) == {"kernel"} for v in p.values())  # no biases


def _rope_oracle(x, rows, columns, base=10000.0):
  """x `[n, D]` at grid (rows, columns) `[n]`: pair j < D/4 turns by row * base^(-2j/(D/2)), pair D/4 + j by column
  at the same frequency, as complex multiplications in float64."""
  n, dim = x.shape
  frequencies = base**(-2 * np.arange(dim // 4) / (dim // 2))
  angles = np.concatenate([rows[:, None] * frequencies, columns[:, None] * frequencies], axis=1)  # [n, D / 2]
  pairs = x[:, 0::2] + 1j * x[:, 1::2]
  rotated = pairs * np.exp(1j * angles)
  out = np.empty_like(x)
  out[:, 0::2], out[:, 1::2] = rotated.real, rotated.imag
  return out


def test_rope_2d_rotates_rows_then_columns_and_zeroes_the_condition_positions():
  grid, dim, conditions = 5, 16, 3
  table = rope_2d.rope_2d_table(grid, dim, num_condition_positions=conditions)
  assert table.shape == (conditions + grid * grid, dim // 2, 2) and table.dtype == np.float32
  x = np.random.default_rng(3).normal(size=(1, conditions + grid * grid, 2, dim))
  rotated = np.asarray(rope_2d.apply_rope(jnp.asarray(x, jnp.float32), jnp.asarray(table)[None]), np.float64)
  np.testing.assert_array_equal(rotated[0, :conditions], 0.0)  # cos = sin = 0: queries and keys vanish
  index = np.arange(grid * grid)
  for head in range(2):
    expected = _rope_oracle(x[0, conditions:, head], index // grid, index % grid)
    np.testing.assert_allclose(rotated[0, conditions:, head], expected, rtol=1e-5, atol=2e-5)


def test_rope_lookup_clips_past_the_end_and_checks_its_sizes():
  table = rope_2d.rope_2d_table(2, 8)
  rows = rope_2d.rope_at(table, jnp.asarray([[0, 4, 9]]))
  np.testing.assert_array_equal(rows[0, 1], table[4])
  np.testing.assert_array_equal(rows[0, 2], table[-1])
  with pytest.raises(ValueError, match="head_dim divisible by 4"):
    rope_2d.rope_2d_table(4, 6)
