r"""jaxtok's conversion of an official model against the outputs the official code produced (a fixture `.npz` made
by tests/fixtures/make_official_fixtures.py): converts the fixture's state dict, runs the same inputs in float32 at
`jax.default_matmul_precision("highest")` and reports, per output, the max absolute error relative to the official
output's largest magnitude (token ids: the fraction that differ). Exits 1 when a token differs or another output is
off by `TOLERANCE` or more.

  python tests/convert/official_comparison.py tests/fixtures/official/titok_legacy.npz [more fixtures]
"""
import dataclasses
import json
import pathlib
import sys

import jax
import numpy as np

from jaxtok import convert
from jaxtok.nn import pixel_range

TOLERANCE = 1e-4  # max |jaxtok - official| / max |official|, float32


@dataclasses.dataclass
class Fixture:
  config: dict
  state: dict[str, np.ndarray]
  inputs: dict[str, np.ndarray]
  outputs: dict[str, np.ndarray]


def load_fixture(path: str | pathlib.Path) -> Fixture:
  """A fixture `.npz`, or a full-size fixture folder of `.npy` files (memory-mapped)."""
  path = pathlib.Path(path)
  if path.is_dir():
    arrays = {file.stem.replace("~", "/"): np.load(file, mmap_mode="r") for file in path.glob("*.npy")}
  else:
    with np.load(path, allow_pickle=False) as file:
      arrays = {name: file[name] for name in file.files}
  groups = {"state": {}, "input": {}, "output": {}}
  for name, value in arrays.items():
    group, _, key = name.partition("/")
    if group in groups:
      groups[group][key] = value
  return Fixture(json.loads(str(arrays["config"])), groups["state"], groups["input"], groups["output"])


def convert_fixture(fixture: Fixture):
  """(model, variables) converted from the fixture's official state dict."""
  if fixture.config["family"] == "titok":
    return convert.titok_from_official(fixture.state, fixture.config["model"], vit_sizes=fixture.config["vit_sizes"])
  return convert.vqgan_from_official(fixture.state)


def jaxtok_outputs(fixture: Fixture, model, variables) -> dict[str, np.ndarray]:
  """The fixture's outputs as jaxtok computes them from `2 * images - 1` (jaxtok's [-1, 1] convention), with the
  pixel outputs mapped back to the official [0, 1] range by (y + 1) / 2."""
  images = 2.0 * fixture.inputs["images"] - 1.0
  with jax.default_matmul_precision("highest"):
    tokens, _ = model.apply(variables, images, method=model.encode)
    encoder = lambda module, x: module.encoder(pixel_range.to_pixel_range(x, module.pixel_range))
    outputs = {"latents": model.apply(variables, images, method=encoder), "tokens": tokens}
    if "proxy_logits" in fixture.outputs:  # the stage-1 model: the same parameters up to the proxy-code head
      stage1 = model.clone(decoder_output="proxy_codes")
      outputs["proxy_logits"] = stage1.apply(variables, tokens, method=stage1.decode_indices)
    if "pixels" in fixture.outputs:
      outputs["pixels"] = (model.apply(variables, tokens, method=model.decode_indices) + 1.0) / 2.0
  return {name: np.asarray(value) for name, value in outputs.items()}


def errors(fixture: Fixture, outputs: dict[str, np.ndarray]) -> dict[str, float]:
  """Per output: max |jaxtok - official| / max |official| (tokens: fraction of ids that differ)."""
  result = {}
  for name, official in fixture.outputs.items():
    mine = outputs[name]
    if mine.shape != official.shape:
      raise AssertionError(f"{name}: jaxtok shape {mine.shape}, official {official.shape}.")
    if name == "tokens":
      result[name] = float(np.mean(mine != official))
    else:
      result[name] = float(np.max(np.abs(mine - official)) / np.max(np.abs(official)))
  return result


def mismatches(report: dict[str, float]) -> list[str]:
  """The outputs of an `errors` report that do not match: any differing token id, any other error >= TOLERANCE."""
  return [name for name, error in report.items() if (error > 0 if name == "tokens" else error >= TOLERANCE)]


def main(paths: list[str]) -> None:
  failed = []
  for path in paths:
    fixture = load_fixture(path)
    model, variables = convert_fixture(fixture)
    report = errors(fixture, jaxtok_outputs(fixture, model, variables))
    parameters = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(variables["params"]))
    print(json.dumps({"fixture": pathlib.Path(path).name, "parameters": parameters, **report}))
    failed += [f"{pathlib.Path(path).name}: {name}" for name in mismatches(report)]
  if failed:
    sys.exit(f"Outputs that do not match the official ones: {failed}.")


if __name__ == "__main__":
  main(sys.argv[1:])
