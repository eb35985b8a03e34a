"""window_codebook_usage: the fraction of codes hit within the last `usage_window` training steps, from step 1 on.

Oracle: the union of the code indices of the last min(window, step) training batches, over the codebook size.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtok import quantizers

WINDOW = 3
STEPS = 6
CASES = {
    "fsq": ({"name": "fsq", "levels": (4, 4)}, 2),
    "vq": ({"name": "vq", "codebook_size": 16}, 4),
    "lfq": ({"name": "lfq", "dim": 4, "entropy_cost": 0.0}, 4),
}


def _training_run(config, dim):
  """Per step: (the batch's indices, window_codebook_usage, codebook_usage) of STEPS training calls."""
  model = quantizers.make_quantizer(config, usage_window=WINDOW)
  xs = jax.random.normal(jax.random.PRNGKey(0), (STEPS, 3, dim)) * 2.0  # 3 tokens a step: few codes per batch
  variables = model.init(jax.random.PRNGKey(1), xs[0])
  apply = jax.jit(lambda variables, x: model.apply(variables, x, train=True, mutable=["quantizer"]))
  steps = []
  for x in xs:
    out, state = apply(variables, x)
    variables = {**variables, **state}
    steps.append((np.asarray(out.indices).ravel(), float(out.metrics["window_codebook_usage"]),
                  float(out.metrics["codebook_usage"])))
  return model, variables, steps


@pytest.mark.parametrize("name", sorted(CASES))
def test_window_usage_counts_only_codes_hit_in_the_window(name):
  model, _, steps = _training_run(*CASES[name])
  for step, (_, window_usage, batch_usage) in enumerate(steps, start=1):
    hit = set(np.concatenate([indices for indices, _, _ in steps[max(0, step - WINDOW):step]]).tolist())
    assert window_usage == pytest.approx(len(hit) / model.codebook_size), f"step {step}"
    assert window_usage < 1.0
  assert steps[0][1] == pytest.approx(steps[0][2]), "at step 1 the window holds one batch"


def test_evaluation_counts_the_batch_without_advancing_the_window():
  model, variables, steps = _training_run(*CASES["fsq"])
  x = jnp.full((1, 2), 0.3)
  out, state = model.apply(variables, x, train=False, mutable=["quantizer"])
  hit = set(np.concatenate([indices for indices, _, _ in steps[-(WINDOW - 1):]]).tolist()) | {int(out.indices[0])}
  assert float(out.metrics["window_codebook_usage"]) == pytest.approx(len(hit) / model.codebook_size)
  assert int(state["quantizer"]["usage_steps"]) == STEPS


def test_a_fresh_quantizer_reports_the_batch_usage():
  model = quantizers.make_quantizer({"name": "fsq", "levels": (8, 8)})
  x = jax.random.normal(jax.random.PRNGKey(2), (5, 2))
  out = model.apply(model.init(jax.random.PRNGKey(3), x), x)
  assert float(out.metrics["window_codebook_usage"]) == pytest.approx(float(out.metrics["codebook_usage"]))
