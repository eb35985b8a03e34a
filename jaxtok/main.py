r"""The main job: train the model of an experiment config, a tokenizer or a generator of its tokens.

  python -m jaxtok.main --config=experiments/quickstart.py --workdir=workdirs/quickstart
  python -m jaxtok.main --config=experiments/quickstart.py:arg --workdir=... --config.train.num_steps=100
  python -m jaxtok.main --config=experiments/maskgit_photos.py --workdir=workdirs/maskgit_photos

`config.model_name` picks the model and, through its `jaxtok.registry` entry, the task that trains it (a tokenizer,
or a generator trained on the tokens of the config's tokenizer); `jaxtok.train.run` trains either.

Rerunning with the same --workdir resumes from its latest checkpoint; rerunning a finished run does nothing.
"""
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from jaxtok import cli
from jaxtok import config_validation
from jaxtok import registry
from jaxtok.train import run as run_lib

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
  try:
    summary = run_lib.train(_CONFIG.value, _WORKDIR.value)
  except (config_validation.ConfigError, run_lib.NonFiniteLossError) as error:
    logging.error("%s", error)
    sys.exit(f"Error: {error}")
  headline = registry.task_class(_CONFIG.value.model_name).headline(summary)
  if headline:
    print(f"{headline} Outputs in {_WORKDIR.value}.")


def run() -> None:
  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  run()
