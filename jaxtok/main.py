r"""The main job: train the model of an experiment config, a tokenizer or a generator of its tokens.

  python -m jaxtok.main --config=experiments/quickstart.py --workdir=workdirs/quickstart
  python -m jaxtok.main --config=experiments/quickstart.py:arg --workdir=... --config.train.num_steps=100
  python -m jaxtok.main --config=experiments/maskgit_photos.py --workdir=workdirs/maskgit_photos

`config.model_name` picks the runner: a tokenizer of `jaxtok.registry.MODELS` -> jaxtok.train.loop; a generator of
`jaxtok.registry.GENERATORS` -> jaxtok.train.generator_loop (trains on the tokens of the config's tokenizer).

Rerunning with the same --workdir resumes from its latest checkpoint.
"""
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from jaxtok import cli
from jaxtok import config_validation

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (experiments/<name>.py[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, images and metrics.json.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for multi-host runs on GPUs "
                                   "or CPUs; Cloud TPU VMs find it themselves (use --multihost there).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes of a multi-host run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index in a multi-host run.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() with what the environment "
                               "says (Cloud TPU pod slices, SLURM, ...). Implied by --coordinator_address.")
flags.mark_flags_as_required(["config", "workdir"])

def _initialize_distributed() -> None:
  """Joins the processes of a multi-host run before any device is touched (a no-op for one process)."""
  if not (_MULTIHOST.value or _COORDINATOR.value):
    return
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # lets CPU processes all-reduce (tests, debugging)
  jax.distributed.initialize(coordinator_address=_COORDINATOR.value, num_processes=_NUM_PROCESSES.value,
                             process_id=_PROCESS_ID.value)
  logging.info("Process %d of %d joined; %d devices in all.", jax.process_index(), jax.process_count(),
               jax.device_count())


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  cli.quiet_library_info_logs()
  _initialize_distributed()
  from jaxtok import registry  # pylint: disable=g-import-not-at-top  # after flags, so --help is fast
  from jaxtok.train import control  # pylint: disable=g-import-not-at-top

  try:
    if registry.is_generator(_CONFIG.value.model_name):
      _train_generator()
    else:
      _train_tokenizer()
  except (config_validation.ConfigError, control.NonFiniteLossError) as error:
    logging.error("%s", error)
    sys.exit(f"Error: {error}")


def _train_generator() -> None:
  from jaxtok.train import generator_loop  # pylint: disable=g-import-not-at-top

  summary = generator_loop.train_generator(_CONFIG.value, _WORKDIR.value)
  final, untrained = summary["final_eval"], summary["untrained_eval"]
  if final and untrained:
    print(f"Step {summary['step']}: held-out masked-token loss {final['loss']:.4f} (untrained "
          f"{untrained['loss']:.4f}), accuracy {final['accuracy']:.3f}; token TV to held-out data "
          f"{final['token_tv']:.4f} "
          f"(untrained {untrained['token_tv']:.4f}, uniform tokens {final['token_tv_uniform']:.4f}, training data "
          f"{final['token_tv_train_data']:.4f}). Outputs in {_WORKDIR.value}.")


def _train_tokenizer() -> None:
  from jaxtok.train import loop  # pylint: disable=g-import-not-at-top

  summary = loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  final = summary["final_eval"]
  if final:
    print(f"Step {summary['step']}: eval PSNR {final['psnr']:.2f} dB (mean-colour baseline "
          f"{final['mean_colour_baseline_psnr']:.2f} dB), SSIM {final['ssim']:.3f}, codebook usage "
          f"{final.get('codebook_usage', float('nan')):.3f}, perplexity {final.get('perplexity', float('nan')):.1f}. "
          f"Outputs in {_WORKDIR.value}.")


def run() -> None:
  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  run()
