"""Converts an official checkpoint into a jaxtok model file (see `converted.py`).

  python -m jaxtok.convert --official=llamagen_c2i_B_256 --checkpoint=c2i_B_256.pt --output=c2i_B_256.npz
  python -m jaxtok.convert --list

`.pt` / `.bin` files need torch (`pip install 'jaxtok[torch]'`, read with weights_only=True); `.safetensors` need
nothing. A model family is one entry of `OFFICIAL`: a name, its converter (state dict -> (model, variables)) with
its arguments, and the file it was released as.
"""
import argparse
import dataclasses
import functools
from typing import Callable

import jax

from jaxtok.convert import converted
from jaxtok.convert import llamagen_gpt
from jaxtok.convert import llamagen_vq
from jaxtok.convert import state_dict

_LLAMAGEN = "https://huggingface.co/FoundationVision/LlamaGen/resolve/main/"
_LLAMAGEN_T2I = "https://huggingface.co/peizesun/llamagen_t2i/resolve/main/"


@dataclasses.dataclass(frozen=True)
class Official:
  converter: Callable
  release: str  # where the official file is published


def _gpt(model_name: str, tokens: int, model_type: str = "c2i") -> Callable:
  return functools.partial(llamagen_gpt.llamagen_gpt_from_official, model_name=model_name, model_type=model_type,
                           sequence_length=tokens)


OFFICIAL = {
    "llamagen_vq_16": Official(functools.partial(llamagen_vq.llamagen_vq_from_official, model_name="VQ-16"),
                               _LLAMAGEN + "vq_ds16_c2i.pt"),
    "llamagen_vq_8": Official(functools.partial(llamagen_vq.llamagen_vq_from_official, model_name="VQ-8"),
                              _LLAMAGEN + "vq_ds8_c2i.pt"),
    "llamagen_vq_16_t2i": Official(functools.partial(llamagen_vq.llamagen_vq_from_official, model_name="VQ-16"),
                                   _LLAMAGEN_T2I + "vq_ds16_t2i.pt"),
    "llamagen_c2i_B_256": Official(_gpt("GPT-B", 256), _LLAMAGEN + "c2i_B_256.pt"),
    "llamagen_c2i_B_384": Official(_gpt("GPT-B", 576), _LLAMAGEN + "c2i_B_384.pt"),
    "llamagen_c2i_L_256": Official(_gpt("GPT-L", 256), _LLAMAGEN + "c2i_L_256.pt"),
    "llamagen_c2i_L_384": Official(_gpt("GPT-L", 576), _LLAMAGEN + "c2i_L_384.pt"),
    "llamagen_c2i_XL_384": Official(_gpt("GPT-XL", 576), _LLAMAGEN + "c2i_XL_384.pt"),
    "llamagen_c2i_XXL_384": Official(_gpt("GPT-XXL", 576), _LLAMAGEN + "c2i_XXL_384.pt"),
    "llamagen_c2i_3B_384": Official(_gpt("GPT-3B", 576), _LLAMAGEN + "c2i_3B_384.pt"),
    "llamagen_t2i_XL_256": Official(_gpt("GPT-XL", 256, "t2i"), _LLAMAGEN_T2I + "t2i_XL_stage1_256.pt"),
    "llamagen_t2i_XL_512": Official(_gpt("GPT-XL", 1024, "t2i"), _LLAMAGEN_T2I + "t2i_XL_stage2_512.pt"),
}


def convert(official: str, checkpoint: str, output: str, key: str | None = None) -> str:
  """Converts `checkpoint` as `OFFICIAL[official]` and writes `output`; returns a one-line summary."""
  if official not in OFFICIAL:
    raise ValueError(f"--official must be one of {sorted(OFFICIAL)}, got {official!r}.")
  model, variables = OFFICIAL[official].converter(state_dict.load_state_dict(checkpoint, key=key))
  path = converted.save_converted(output, model, variables)
  count = sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))
  return f"{official}: {type(model).__name__} with {count:,} parameters -> {path}"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--official", help=f"one of {', '.join(sorted(OFFICIAL))}")
  parser.add_argument("--checkpoint", help="the official file (.pt, .bin, .safetensors)")
  parser.add_argument("--output", help="where to write the converted model (.npz)")
  parser.add_argument("--key", default=None, help="the entry holding the weights (default: found automatically)")
  parser.add_argument("--list", action="store_true", help="list the official models and where they are released")
  args = parser.parse_args(argv)
  if args.list:
    for name, entry in OFFICIAL.items():
      print(f"{name:24} {entry.release}")
    return
  if not (args.official and args.checkpoint and args.output):
    parser.error("--official, --checkpoint and --output are required (or --list).")
  print(convert(args.official, args.checkpoint, args.output, args.key))


if __name__ == "__main__":
  main()
