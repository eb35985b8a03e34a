"""Packaging: `kernels/` ships as `jaxtok.kernels` (never a top-level `kernels`), and the core imports stay light."""
import importlib.metadata
import json
import pathlib
import subprocess
import sys
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
HEAVY_OPTIONAL_MODULES = ("grain", "ml_collections", "tensorboard", "tensorboardX", "torch", "tensorflow")


def _python(code: str, cwd: pathlib.Path, **env_extra) -> str:
  env = {"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", **env_extra}
  result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout.strip()


def test_core_imports_pull_in_no_runner_dependencies(tmp_path):
  code = ("import sys, jaxtok, jaxtok.kernels, jaxtok.quantizers, jaxtok.metrics, jaxtok.tokenizers\n"
          f"print([m for m in {HEAVY_OPTIONAL_MODULES!r} if m in sys.modules])")
  assert _python(code, tmp_path) == "[]"


def test_editable_install_maps_kernels_into_the_jaxtok_namespace(tmp_path):
  # The installed distribution's record (a jaxtok.egg-info left in the checkout by a build carries no direct_url).
  direct_urls = [d.read_text("direct_url.json") for d in importlib.metadata.distributions(name="jaxtok")]
  if not any(json.loads(url).get("dir_info", {}).get("editable") for url in direct_urls if url):
    pytest.skip("jaxtok is not installed in editable mode here (the README installs it with pip install -e)")
  out = _python("import importlib.util, jaxtok.kernels\n"
                "print(jaxtok.kernels.__file__); print(importlib.util.find_spec('kernels'))", tmp_path)
  kernels_file, top_level_spec = out.splitlines()
  assert pathlib.Path(kernels_file) == REPO / "kernels" / "__init__.py"
  assert top_level_spec == "None"


@pytest.mark.slow
def test_wheel_ships_kernels_inside_jaxtok_only(tmp_path):
  build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                          str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True, timeout=600)
  assert build.returncode == 0, build.stderr[-3000:]
  wheel = next((tmp_path / "dist").glob("jaxtok-*.whl"))
  names = zipfile.ZipFile(wheel).namelist()
  assert "jaxtok/kernels/__init__.py" in names
  assert any(n.startswith("jaxtok/kernels/codebook_lookup/") for n in names)
  assert not [n for n in names if n.split("/")[0] in ("kernels", "tests", "experiments", "benchmarks")]
  install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(tmp_path / "site"),
                            str(wheel)], capture_output=True, text=True, timeout=600)
  assert install.returncode == 0, install.stderr[-3000:]
  out = _python("import importlib.util, jaxtok.kernels\n"
                "from jaxtok.kernels.codebook_lookup import codebook_lookup\n"
                "print(jaxtok.kernels.__file__); print(importlib.util.find_spec('kernels'))", tmp_path,
                PYTHONPATH=str(tmp_path / "site"))
  kernels_file, top_level_spec = out.splitlines()
  assert pathlib.Path(kernels_file) == tmp_path / "site" / "jaxtok" / "kernels" / "__init__.py"
  assert top_level_spec == "None"


def test_readme_commands_and_ci_install_the_pinned_versions():
  """The README's two commands and .ci/run install through constraints.txt, which pins every runtime dependency."""
  readme = (REPO / "README.md").read_text()
  commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv .venv")]
  assert len(commands) == 2, commands
  ci = (REPO / ".ci" / "run").read_text()
  assert commands[1] in ci, "the README's test command must be exactly what .ci/run runs"
  for command in commands:
    assert "pip install -c constraints.txt -e '.[dev]'" in command
  pins = {}
  for line in (REPO / "constraints.txt").read_text().splitlines():
    if line and not line.startswith("#"):
      name, _, version = line.partition("==")
      assert version, f"constraints.txt pins exact versions, got {line!r}"
      pins[name.lower().replace("_", "-")] = version
  requirements = importlib.metadata.requires("jaxtok") or []
  names = {r.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower().replace("_", "-")
           for r in requirements if "extra ==" not in r or "extra == \"dev\"" in r}
  assert not names - set(pins), f"unpinned dependencies: {sorted(names - set(pins))}"
