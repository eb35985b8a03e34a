r"""Converts a released checkpoint into a jaxtok workdir that `python -m jaxtok.evaluate` reads as it is.

  python -m jaxtok.convert --official=titok_l32 --checkpoint=model.safetensors --workdir=workdirs/titok_l32
  python -m jaxtok.evaluate --config=workdirs/titok_l32/config.py --workdir=workdirs/titok_l32 \
      --config.eval.inception_weights_path=/path/to/inception_fid.npz
  python -m jaxtok.convert --list

The workdir's config is `--config` (default: the official model's ImageNet experiment, e.g.
experiments/titok_imagenet.py:L-32: TFDS imagenet2012, 50,000 center crops of the validation split) with the
converted model's fields as its model section; its data must be readable while converting (see
`jaxtok/convert/workdir.py`). `.bin` files need torch (`pip install 'jaxtok[torch]'`, read with
weights_only=True); `.safetensors` need nothing. A model family is one entry of `OFFICIAL`.
"""
import dataclasses
import functools
import sys
from typing import Callable

from absl import app
from absl import flags
from ml_collections import config_flags

from jaxtok import cli
from jaxtok import config_validation
from jaxtok.convert import state_dict
from jaxtok.convert import titok
from jaxtok.convert import vqgan
from jaxtok.convert import workdir as workdir_lib

_HUB = "https://huggingface.co/"  # the official README's model zoo: one repository (model.safetensors) per model


@dataclasses.dataclass(frozen=True)
class Official:
  """converter: state dict -> (model, variables); release: where the file is published; config: the experiment
  config whose data and evaluation sections the workdir gets; rfid: the official rFID on ImageNet val (50k)."""
  converter: Callable
  release: str
  config: str
  rfid: float | None = None


def _titok(name: str) -> Callable:
  return functools.partial(titok.titok_from_official, config=titok.OFFICIAL_CONFIGS[name])


OFFICIAL = {
    "titok_l32": Official(_titok("titok_l32"), _HUB + "yucornetto/tokenizer_titok_l32_imagenet",
                          "experiments/titok_imagenet.py:L-32", 2.21),
    "titok_b64": Official(_titok("titok_b64"), _HUB + "yucornetto/tokenizer_titok_b64_imagenet",
                          "experiments/titok_imagenet.py:B-64", 1.70),
    "titok_s128": Official(_titok("titok_s128"), _HUB + "yucornetto/tokenizer_titok_s128_imagenet",
                           "experiments/titok_imagenet.py:S-128", 1.71),
    "titok_bl64_vq8k": Official(_titok("titok_bl64_vq8k"), _HUB + "yucornetto/tokenizer_titok_bl64_vq8k_imagenet",
                                "experiments/titok_imagenet.py:B-64", 2.06),
    "titok_bl128_vq8k": Official(_titok("titok_bl128_vq8k"), _HUB + "yucornetto/tokenizer_titok_bl128_vq8k_imagenet",
                                 "experiments/titok_imagenet.py:B-64", 1.49),
    "titok_sl256_vq8k": Official(_titok("titok_sl256_vq8k"), _HUB + "yucornetto/tokenizer_titok_sl256_vq8k_imagenet",
                                 "experiments/titok_imagenet.py:B-64", 1.03),
    "maskgit_vqgan": Official(vqgan.vqgan_from_official,
                              _HUB + "fun-research/TiTok/blob/main/maskgit-vqgan-imagenet-f16-256.bin",
                              "experiments/vqgan_imagenet.py:f16"),
}


def convert_to_workdir(official: str, checkpoint: str, workdir: str, config=None, key: str | None = None) -> str:
  """Converts `checkpoint` as `OFFICIAL[official]` into `workdir`; returns a one-line summary."""
  if official not in OFFICIAL:
    raise config_validation.ConfigError(f"--official must be one of {sorted(OFFICIAL)}, got {official!r}.")
  entry = OFFICIAL[official]
  config = cli.load_config_file(entry.config) if config is None else config
  model, variables = entry.converter(state_dict.load_state_dict(checkpoint, key=key))
  config_path = workdir_lib.write_workdir(model, variables, config, workdir,
                                          header=f"{official} converted from {checkpoint} by python -m jaxtok.convert.")
  return (f"{official}: {type(model).__name__} -> {workdir} (step {workdir_lib.CONVERTED_STEP}); evaluate with "
          f"python -m jaxtok.evaluate --config={config_path} --workdir={workdir}")


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  values = flags.FLAGS
  if values.list:
    for name, entry in OFFICIAL.items():
      print(f"{name:18} {entry.release}  (official rFID {entry.rfid or 'not published'})")
    return
  if not (values.official and values.checkpoint and values.workdir):
    raise app.UsageError("--official, --checkpoint and --workdir are required (or --list).")
  cli.quiet_library_info_logs()
  try:
    print(convert_to_workdir(values.official, values.checkpoint, values.workdir, values.config, values.key))
  except config_validation.ConfigError as error:
    sys.exit(f"Error: {error}")


def _define_flags() -> None:
  """Defines the command-line flags (only when run as a program)."""
  flags.DEFINE_string("official", None, f"One of {', '.join(OFFICIAL)}.")
  flags.DEFINE_string("checkpoint", None, "The released file (.bin, .pt, .safetensors).")
  flags.DEFINE_string("workdir", None, "New workdir for config.py and the checkpoint.")
  flags.DEFINE_string("key", None, "The entry holding the weights in a nested checkpoint (default: automatic).")
  flags.DEFINE_bool("list", False, "List the official models, where they are released and their rFID.")
  config_flags.DEFINE_config_file("config", None, "Experiment config for the data and evaluation sections "
                                  "(default: the official model's ImageNet experiment).", lock_config=False)


if __name__ == "__main__":
  _define_flags()
  app.run(main, flags_parser=cli.parse_flags)
