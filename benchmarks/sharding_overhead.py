r"""Cost of the sharding annotations on one device: the train step under each rules preset, same model and batch.

On a 1x1x1 mesh every preset places everything on the one device, so the logical-partitioning boxes, logical
constraints and explicit in/out shardings should cost nothing: the ratio column is expected within 3% of 1.00.

  python benchmarks/sharding_overhead.py                                   # CPU: the quickstart model, small batch
  python benchmarks/sharding_overhead.py --experiment=experiments/titok_b64.py --batch_size=128   # a GPU/TPU

Prints a table last: ms per step (median of --trials trials of --steps steps), images/s, ratio to data_parallel.
"""
import argparse
import statistics
import time

import flax.linen as nn
import jax
import numpy as np

from jaxtok import registry
from jaxtok import sharding
from jaxtok.cli import load_config_file
from jaxtok.train import optimizer as optimizer_lib
from jaxtok.train import state as state_lib
from jaxtok.train import step as step_lib


def time_train_step(config, preset: str, batch_size: int, steps: int, trials: int) -> float:
  """Median seconds per train step of `config`'s model on a one-device mesh under rules `preset`."""
  mesh = sharding.make_mesh((1, 1, 1), devices=jax.devices()[:1])
  rules = sharding.logical_rules(preset)
  model = registry.build_model(config.model_name, config.model)
  optimizer = optimizer_lib.make_optimizer(config.optimizer, config.train.num_steps)
  size = config.data.image_size
  rng = np.random.default_rng(0)
  batches = [rng.uniform(-1, 1, (batch_size, size, size, 3)).astype(np.float32) for _ in range(2)]
  state, shardings = state_lib.create_train_state(model, optimizer, batches[0][:1], config.seed, mesh, rules)
  step = step_lib.make_train_step(model, optimizer, loss_kind=config.train.reconstruction_loss,
                                  ema_decay=config.train.ema_decay,
                                  learning_rate_fn=optimizer_lib.learning_rate_schedule(config.optimizer, 1000))
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    train_step = jax.jit(step, in_shardings=(shardings, sharding.batch_sharding(mesh)),
                         out_shardings=(shardings, sharding.replicated(mesh)), donate_argnums=0)
    device_batches = [sharding.global_batch({"image": b}, mesh) for b in batches]
    state, metrics = train_step(state, device_batches[0])  # compile and warm up
    jax.block_until_ready(metrics)
    timings = []
    for _ in range(trials):
      start = time.perf_counter()
      for i in range(steps):
        state, metrics = train_step(state, device_batches[i % 2])
      jax.block_until_ready((state, metrics))
      timings.append((time.perf_counter() - start) / steps)
  return statistics.median(timings)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--experiment", default="experiments/conv_vq_photos.py")
  parser.add_argument("--batch_size", type=int, default=None, help="default: 8 on CPU, the config's otherwise")
  parser.add_argument("--steps", type=int, default=None, help="steps per trial (default: 5 on CPU, 20 otherwise)")
  parser.add_argument("--trials", type=int, default=5)
  args = parser.parse_args()
  on_cpu = jax.default_backend() == "cpu"
  config = load_config_file(args.experiment)
  batch_size = args.batch_size or (8 if on_cpu else config.data.batch_size)
  steps = args.steps or (5 if on_cpu else 20)
  rows = [(preset, time_train_step(config, preset, batch_size, steps, args.trials)) for preset in sharding.RULE_PRESETS]
  baseline = rows[0][1]
  print(f"\n{config.model_name} from {args.experiment}, batch {batch_size}, {jax.devices()[0].device_kind}")
  print(f"{'rules preset':<16}{'ms/step':>10}{'images/s':>12}{'ratio':>8}")
  for preset, seconds in rows:
    print(f"{preset:<16}{seconds * 1e3:>10.2f}{batch_size / seconds:>12.1f}{seconds / baseline:>8.3f}")


if __name__ == "__main__":
  main()
