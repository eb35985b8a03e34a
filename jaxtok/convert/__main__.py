r"""Converts a released checkpoint into jaxtok: a workdir that `python -m jaxtok.evaluate` reads as it is, or a
self-describing model file (`converted.py`).

  python -m jaxtok.convert --list
  python -m jaxtok.convert --official=titok_l32 --checkpoint=model.safetensors --workdir=workdirs/titok_l32
  python -m jaxtok.evaluate --config=workdirs/titok_l32/config.py --workdir=workdirs/titok_l32 \
      --config.eval.inception_weights_path=/path/to/inception_fid.npz
  python -m jaxtok.convert --official=llamagen_c2i_B_256 --checkpoint=c2i_B_256.pt --output=c2i_B_256.npz

`--workdir` (models with an experiment config): the workdir's config is `--config` (default: the official model's
ImageNet experiment, e.g. experiments/titok_imagenet.py:L-32: TFDS imagenet2012, 50,000 center crops of the
validation split) with the converted model's fields as its model section; its data must be readable while
converting (see `workdir.py`). `--output` (every model): one `.npz` that `jaxtok.convert.load_converted` rebuilds
into (model, variables). `.bin` / `.pt` files need torch (`pip install 'jaxtok[torch]'`, read with
weights_only=True); `.safetensors` need nothing. A model family is one entry of `OFFICIAL`.
"""
import dataclasses
import functools
import sys
from typing import Callable

import jax
from absl import app
from absl import flags
from ml_collections import config_flags

from jaxtok import cli
from jaxtok import config_validation
from jaxtok.convert import converted
from jaxtok.convert import llamagen_gpt
from jaxtok.convert import llamagen_vq
from jaxtok.convert import state_dict
from jaxtok.convert import titok
from jaxtok.convert import vqgan
from jaxtok.convert import workdir as workdir_lib

_HUB = "https://huggingface.co/"  # 1d-tokenizer's model zoo: one repository (model.safetensors) per model
_LLAMAGEN = _HUB + "FoundationVision/LlamaGen/resolve/main/"
_LLAMAGEN_T2I = _HUB + "peizesun/llamagen_t2i/resolve/main/"


@dataclasses.dataclass(frozen=True)
class Official:
  """converter: state dict -> (model, variables); release: where the file is published; config: the experiment
  config whose data and evaluation sections a `--workdir` gets (None: `--output` only); rfid: the official rFID on
  ImageNet val (50k)."""
  converter: Callable
  release: str
  config: str | None = None
  rfid: float | None = None


# name: (the variant of experiments/titok_imagenet.py whose data and evaluation a workdir gets, the official rFID).
_TITOK_RELEASES = {"titok_l32": ("L-32", 2.21), "titok_b64": ("B-64", 1.70), "titok_s128": ("S-128", 1.71),
                   "titok_bl64_vq8k": ("B-64", 2.06), "titok_bl128_vq8k": ("B-64", 1.49),
                   "titok_sl256_vq8k": ("B-64", 1.03)}


def _titok(name: str, variant: str, rfid: float) -> Official:
  """A 1d-tokenizer release: `yucornetto/tokenizer_<name>_imagenet` on the hub, converted with its official config."""
  return Official(functools.partial(titok.titok_from_official, config=titok.OFFICIAL_CONFIGS[name]),
                  _HUB + f"yucornetto/tokenizer_{name}_imagenet", f"experiments/titok_imagenet.py:{variant}", rfid)


def _llamagen_vq(model_name: str) -> Callable:
  return functools.partial(llamagen_vq.llamagen_vq_from_official, model_name=model_name)


def _llamagen_gpt(model_name: str, tokens: int, model_type: str = "c2i") -> Callable:
  return functools.partial(llamagen_gpt.llamagen_gpt_from_official, model_name=model_name, model_type=model_type,
                           sequence_length=tokens)


OFFICIAL = {
    **{name: _titok(name, variant, rfid) for name, (variant, rfid) in _TITOK_RELEASES.items()},
    "maskgit_vqgan": Official(vqgan.vqgan_from_official,
                              _HUB + "fun-research/TiTok/blob/main/maskgit-vqgan-imagenet-f16-256.bin",
                              "experiments/vqgan_imagenet.py:f16"),
    "llamagen_vq_16": Official(_llamagen_vq("VQ-16"), _LLAMAGEN + "vq_ds16_c2i.pt"),
    "llamagen_vq_8": Official(_llamagen_vq("VQ-8"), _LLAMAGEN + "vq_ds8_c2i.pt"),
    "llamagen_vq_16_t2i": Official(_llamagen_vq("VQ-16"), _LLAMAGEN_T2I + "vq_ds16_t2i.pt"),
    "llamagen_c2i_B_256": Official(_llamagen_gpt("GPT-B", 256), _LLAMAGEN + "c2i_B_256.pt"),
    "llamagen_c2i_B_384": Official(_llamagen_gpt("GPT-B", 576), _LLAMAGEN + "c2i_B_384.pt"),
    "llamagen_c2i_L_256": Official(_llamagen_gpt("GPT-L", 256), _LLAMAGEN + "c2i_L_256.pt"),
    "llamagen_c2i_L_384": Official(_llamagen_gpt("GPT-L", 576), _LLAMAGEN + "c2i_L_384.pt"),
    "llamagen_c2i_XL_384": Official(_llamagen_gpt("GPT-XL", 576), _LLAMAGEN + "c2i_XL_384.pt"),
    "llamagen_c2i_XXL_384": Official(_llamagen_gpt("GPT-XXL", 576), _LLAMAGEN + "c2i_XXL_384.pt"),
    "llamagen_c2i_3B_384": Official(_llamagen_gpt("GPT-3B", 576), _LLAMAGEN + "c2i_3B_384.pt"),
    "llamagen_t2i_XL_256": Official(_llamagen_gpt("GPT-XL", 256, "t2i"), _LLAMAGEN_T2I + "t2i_XL_stage1_256.pt"),
    "llamagen_t2i_XL_512": Official(_llamagen_gpt("GPT-XL", 1024, "t2i"), _LLAMAGEN_T2I + "t2i_XL_stage2_512.pt"),
}


def _entry(official: str) -> Official:
  if official not in OFFICIAL:
    raise config_validation.ConfigError(f"--official must be one of {sorted(OFFICIAL)}, got {official!r}.")
  return OFFICIAL[official]


def listing() -> str:
  """One line per official model: its name, where it is released, how it converts, its official rFID."""
  lines = []
  for name, entry in OFFICIAL.items():
    target = "--workdir or --output" if entry.config else "--output"
    rfid = f", official rFID {entry.rfid}" if entry.rfid else ""
    lines.append(f"{name:22} {entry.release}  ({target}{rfid})")
  return "\n".join(lines)


def convert_to_workdir(official: str, checkpoint: str, workdir: str, config=None, key: str | None = None) -> str:
  """Converts `checkpoint` as `OFFICIAL[official]` into `workdir`; returns a one-line summary."""
  entry = _entry(official)
  if entry.config is None and config is None:
    raise config_validation.ConfigError(f"{official} has no experiment config to evaluate it with: pass --config, "
                                        "or convert with --output=FILE.npz.")
  config = cli.load_config_file(entry.config) if config is None else config
  model, variables = entry.converter(state_dict.load_state_dict(checkpoint, key=key))
  config_path = workdir_lib.write_workdir(model, variables, config, workdir,
                                          header=f"{official} converted from {checkpoint} by python -m jaxtok.convert.")
  return (f"{official}: {type(model).__name__} -> {workdir} (step {workdir_lib.CONVERTED_STEP}); evaluate with "
          f"python -m jaxtok.evaluate --config={config_path} --workdir={workdir}")


def convert_to_file(official: str, checkpoint: str, output: str, key: str | None = None) -> str:
  """Converts `checkpoint` as `OFFICIAL[official]` into the model file `output`; returns a one-line summary."""
  model, variables = _entry(official).converter(state_dict.load_state_dict(checkpoint, key=key))
  path = converted.save_converted(output, model, variables)
  count = sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))
  return f"{official}: {type(model).__name__} with {count:,} parameters -> {path}"


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  values = flags.FLAGS
  if values.list:
    print(listing())
    return
  if not (values.official and values.checkpoint) or bool(values.workdir) == bool(values.output):
    raise app.UsageError("--official, --checkpoint and one of --workdir / --output are required (or --list).")
  cli.quiet_library_info_logs()
  try:
    if values.workdir:
      print(convert_to_workdir(values.official, values.checkpoint, values.workdir, values.config, values.key))
    else:
      print(convert_to_file(values.official, values.checkpoint, values.output, values.key))
  except config_validation.ConfigError as error:
    sys.exit(f"Error: {error}")


def _define_flags() -> None:
  """Defines the command-line flags (only when run as a program)."""
  flags.DEFINE_string("official", None, f"One of {', '.join(OFFICIAL)}.")
  flags.DEFINE_string("checkpoint", None, "The released file (.bin, .pt, .safetensors).")
  flags.DEFINE_string("workdir", None, "New workdir for config.py and the checkpoint.")
  flags.DEFINE_string("output", None, "Model file (.npz) to write instead of a workdir.")
  flags.DEFINE_string("key", None, "The entry holding the weights in a nested checkpoint (default: automatic).")
  flags.DEFINE_bool("list", False, "List the official models, where they are released and their rFID.")
  config_flags.DEFINE_config_file("config", None, "Experiment config for the data and evaluation sections "
                                  "(default: the official model's ImageNet experiment).", lock_config=False)


if __name__ == "__main__":
  _define_flags()
  app.run(main, flags_parser=cli.parse_flags)
