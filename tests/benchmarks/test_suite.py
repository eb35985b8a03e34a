"""benchmarks/suite.py: the --small run goes through every section's code path without grain or ml_collections, a
section's failure or spent budget is recorded without stopping the others, and the targets are judged right."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from jaxtok import cli

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import maskgit_sampling  # noqa: E402  pylint: disable=wrong-import-position
import suite  # noqa: E402  pylint: disable=wrong-import-position
import suite_report  # noqa: E402  pylint: disable=wrong-import-position
import suite_sections  # noqa: E402  pylint: disable=wrong-import-position
import tokenizer_train  # noqa: E402  pylint: disable=wrong-import-position


def _blocked_packages(root: pathlib.Path) -> pathlib.Path:
  """A folder whose `grain` and `ml_collections` fail to import, as on the GPU image that lacks them."""
  for name in ("grain", "ml_collections"):
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed on the GPU image')\n")
  return root


@pytest.mark.slow
def test_small_suite_runs_every_section(tmp_path, compile_fast_flag):
  env = dict(os.environ, PYTHONPATH=str(_blocked_packages(tmp_path / "blocked")),
             XLA_FLAGS=f"--xla_force_host_platform_device_count=1 {compile_fast_flag}")
  out = tmp_path / "out"
  result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "suite.py"), "--small", f"--out={out}"],
                          capture_output=True, text=True, env=env, timeout=900, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads((out / "suite.json").read_text())
  expected = [section.name for section in suite.SECTIONS if section.name != "torch_reference"]
  assert list(report["sections"]) == expected
  for name, section in report["sections"].items():
    assert section["error"] is None, (name, section.get("traceback"))
    assert section["rows"], name
  assert report["forbidden_imports"] == []
  assert all(row["passed"] for row in report["sections"]["kernel_checks"]["rows"])
  assert all(row["check"] == 0 for row in report["sections"]["codebook_lookup"]["rows"] if "check" in row)
  assert {row["name"] for row in report["sections"]["ceilings"]["rows"]} == {
      "matmul_bf16_tflops", "matmul_f32_tflops", "copy_tbps"}
  markdown = (out / "suite.md").read_text()
  assert all(f"## {name}" in markdown for name in expected)


def test_a_failing_section_is_recorded_and_a_spent_budget_stops_it():
  context = suite_sections.Context(small=True, torch_reference="", torch_python="", sweep=False,
                                   work_dir=pathlib.Path("."))

  def failing(context):
    yield {"step": 1}
    raise RuntimeError("out of memory")

  def endless(context):
    step = 0
    while True:
      step += 1
      yield {"step": step}

  failed = suite.run_section(suite.Section("failing", failing, 10, 10), context, budget_s=10)
  assert failed["rows"] == [{"step": 1}] and failed["error"] == "RuntimeError: out of memory"
  stopped = suite.run_section(suite.Section("endless", endless, 0.2, 0.2), context, budget_s=0.2)
  assert stopped["stopped_by_budget"] and stopped["error"] is None and len(stopped["rows"]) > 1


def test_unknown_budget_names_are_refused():
  with pytest.raises(SystemExit, match="--budgets takes name:seconds"):
    suite.parse_budgets("titok:10")
  assert suite.parse_budgets("titok_train:10,speculative:0") == {"titok_train": 10.0, "speculative": 0.0}


def test_targets_are_judged_from_the_rows():
  lookup = [dict(dtype="float32", D=32, K=65536, impl="naive_xla", ms=12.0, vs_naive=1.0),
            dict(dtype="float32", D=32, K=65536, impl="triton", ms=0.8, vs_naive=15.0),
            dict(dtype="bfloat16", D=256, K=65536, impl="triton", ceiling=0.5),
            dict(dtype="float32", D=32, K=1 << 20, impl="triton", mib=300.0)]
  sections = {"codebook_lookup": lookup, "kernel_checks": [dict(passed=True), dict(passed=False)],
              "titok_train": [dict(model="TiTok-B-64", vs_torch_compile=1.3),
                              dict(model="TiTok-L-32", memory_plan_gib=40.0)],
              "torch_reference": [dict(model="TiTok-L-32", compiled=False, peak_memory_gib=78.0)],
              "maskgit_sampling": [dict(length=64, batch=256, vs_torch=1.2)]}
  report = dict(meta=dict(small=False), sections={name: dict(rows=rows) for name, rows in sections.items()})
  met = {target["target"]: target["met"] for target in suite_report.targets(report)}
  assert met["codebook lookup vs naive XLA, N=K=65,536 D=32 f32"] is True
  assert met["codebook lookup fraction of the bf16 matmul ceiling, D=256"] is False
  assert met["codebook lookup extra memory at K=2^20 (MiB)"] is True
  assert met["every kernel matches its XLA reference on the device"] is False
  assert met["TiTok-B-64 train step vs PyTorch torch.compile"] is True
  assert met["TiTok-L-32 memory / PyTorch's peak"] is True
  assert met["MaskGIT sampling vs PyTorch, 64 tokens, batch 256"] is False
  assert met["MaskGIT sampling vs PyTorch, 64 tokens, batch 32"] is None
  assert met["sparse attention forward vs cuDNN dense at 12.5% density"] is None


def _experiment(name: str, arg: str = ""):
  return cli.load_config_file(f"{REPO / 'experiments' / name}.py" + (f":{arg}" if arg else ""))


@pytest.mark.parametrize("name", ["S-128", "B-64", "L-32"])
def test_titok_sizes_are_the_experiment_configs(name):
  """The suite's TiTok is the experiment's, save the stage-1 decoder output (proxy codes) it times."""
  model = tokenizer_train.build_model(name, small=False)
  config = _experiment("titok_imagenet", name).model
  for field in ("image_size", "patch_size", "num_latent_tokens", "token_dim", "encoder_size", "decoder_size",
                "proxy_codebook_size", "dtype"):
    assert getattr(model, field) == config[field], field
  assert model.quantizer["codebook_size"] == config.quantizer.codebook_size
  assert model.quantizer["distance"] == config.quantizer.distance


def test_maskgit_size_is_the_experiment_config():
  config = _experiment("maskgit_imagenet").model
  for field, value in maskgit_sampling.FULL["model"].items():
    assert value == config[field], field
