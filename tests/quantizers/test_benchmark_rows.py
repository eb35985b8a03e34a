"""benchmarks/quantizers.py names each row by the quantizer it actually built, on CPU (small) as on a GPU (full)."""
import importlib.util
import math
import pathlib
import re

import pytest

from jaxtok import quantizers

_PATH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "quantizers.py"
_SPEC = importlib.util.spec_from_file_location("quantizer_benchmark", _PATH)
benchmark = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(benchmark)


def _codes(text: str) -> int:
  return int(text[:-1]) * 1024 if text.endswith("k") else int(text)


@pytest.mark.parametrize("small", [False, True], ids=["full", "small"])
@pytest.mark.parametrize("setting", sorted(benchmark._FULL))  # pylint: disable=protected-access
def test_row_name_agrees_with_the_k_and_bits_columns(setting, small):
  config, _ = benchmark._FULL[setting]  # pylint: disable=protected-access
  model = quantizers.make_quantizer(benchmark.small_config(config) if small else config)
  name = benchmark.row_name(setting, model)
  assert name.startswith(setting + "_")
  size = name[len(setting) + 1:]
  if size.endswith("bit"):
    assert int(size[:-3]) == model.bits_per_token, name
    assert model.codebook_size in (None, 2**int(size[:-3])), name
  else:
    match = re.fullmatch(r"(?:(\d+)x)?(\d+k?)", size)
    assert match, name
    codebooks, codes = int(match.group(1) or 1), _codes(match.group(2))
    assert codes == model.codebook_size, name
    assert codebooks * math.log2(codes) == pytest.approx(model.bits_per_token), name


def test_small_runs_rename_the_shrunk_rows():
  names = {setting: benchmark.row_name(setting, quantizers.make_quantizer(benchmark.small_config(config)))
           for setting, (config, _) in benchmark._FULL.items()}  # pylint: disable=protected-access
  assert names["vq_large"] == "vq_large_1k" and names["lfq"] == "lfq_10bit"
