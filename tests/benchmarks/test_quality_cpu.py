"""benchmarks/quality_cpu.py: the entries train through jaxtok.main and land in the JSON and the PNG."""
import json
import math

import pytest

import benchmark_scripts  # pylint: disable=g-bad-import-order


def _load():
  return benchmark_scripts.load("quality_cpu")


def test_entries_name_existing_configs():
  quality_cpu = _load()
  for config in quality_cpu.ENTRIES.values():
    assert (quality_cpu.REPOSITORY / config.split(":")[0]).is_file(), config


@pytest.mark.parametrize("argv", [["--only=no_such_config"], ["--set=optimizer.learning_rate"]])
def test_bad_arguments_raise(argv):
  with pytest.raises(SystemExit):
    _load().parse_args(argv)


def test_overrides_pin_steps_and_eval_images():
  quality_cpu = _load()
  flags = quality_cpu.overrides(quality_cpu.parse_args(["--num_steps=3", "--eval_images=8", "--set=seed=1"]))
  assert "--config.seed=1" in flags and "--config.train.num_steps=3" in flags
  assert "--config.eval.every_steps=3" in flags and "--config.eval.num_images=8" in flags


@pytest.mark.slow
def test_two_step_run_writes_json_and_png(tmp_path):
  results = _load().main(["--only=quickstart", "--num_steps=2", "--eval_images=8", f"--output_dir={tmp_path}",
                          "--name=probe", "--set=optimizer.learning_rate=2e-3"])
  written = json.loads((tmp_path / "quality_cpu.json").read_text())
  assert set(written) == set(results) == {"quickstart_probe"}
  result = written["quickstart_probe"]
  assert result["steps"] == 2 and result["bits_per_image"] == 32 * 10 and result["image_size"] == 32
  assert "--config.optimizer.learning_rate=2e-3" in result["overrides"]
  assert math.isfinite(result["psnr"]) and math.isfinite(result["mean_colour_baseline_psnr"])
  assert 0 < result["codebook_usage"] <= 1
  assert (tmp_path / "quality_cpu.png").stat().st_size > 1000
  rows = (tmp_path / "quality_cpu.md").read_text().splitlines()
  assert rows[:2] == _load().TABLE_HEADER.splitlines() and len(rows) == 3
  assert rows[2].startswith("| quickstart_probe | `experiments/quickstart.py` | 2 x ")
  assert f"{result['psnr']:.2f} dB" in rows[2]
  with pytest.raises(FileExistsError):  # a second run of the same name would overwrite the first one's workdir
    _load().main(["--only=quickstart", "--num_steps=2", f"--output_dir={tmp_path}", "--name=probe"])
