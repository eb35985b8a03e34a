"""Executes every notebook in colabs/ on CPU with nbclient and checks the committed copies are clean.

Each notebook runs in a fresh kernel of THIS interpreter (a temporary `python3` kernelspec pointing at
`sys.executable` comes first on JUPYTER_PATH, so a system or user kernelspec of another Python is never picked), with
cwd `colabs/`. `test_notebook_runs` sets `JAXTOK_NOTEBOOK_SMOKE=1`, which each notebook's settings cell reads to
shrink its steps. The notebooks that train a tokenizer train an experiment config of the command line, in the
workdir the test names (`JAXTOK_NOTEBOOK_WORKDIR`, `JAXTOK_NOTEBOOK_TOKENIZER_WORKDIR`): the test checks that the
run there is that config exactly, and, at full settings (`test_trained_tokenizer_beats_the_mean_colour_baseline`),
that it ends above the mean-colour baseline.
"""
import json
import os
import pathlib
import sys

import nbformat
from nbclient import NotebookClient
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
COLABS = REPO / "colabs"
NOTEBOOKS = sorted(path.name for path in COLABS.glob("*.ipynb"))
CELL_TIMEOUT_SECONDS = 300
FULL_TRAINING_CELL_TIMEOUT_SECONDS = 1800
# Notebooks that train a tokenizer -> (the variable naming its workdir, the command-line config it trains, and the
# config it trains with JAXTOK_NOTEBOOK_SMOKE=1).
TOKENIZER_NOTEBOOKS = {
    "quickstart.ipynb": ("JAXTOK_NOTEBOOK_WORKDIR", "experiments/quickstart.py", "experiments/quickstart.py:smoke"),
    "flexible_tokens.ipynb": ("JAXTOK_NOTEBOOK_WORKDIR", "experiments/quickstart.py:flex",
                              "experiments/quickstart.py:flex_smoke"),
    "generation.ipynb": ("JAXTOK_NOTEBOOK_TOKENIZER_WORKDIR", "experiments/quickstart.py",
                         "experiments/quickstart.py:smoke"),
}
_DEVICES_FLAG = "--xla_force_host_platform_device_count=8"  # set by conftest for mesh tests; notebooks use one CPU


def test_every_expected_notebook_exists():
  assert set(NOTEBOOKS) >= {"quickstart.ipynb", "quantizers.ipynb", "flexible_tokens.ipynb", "generation.ipynb",
                            "speculative.ipynb", "kernels.ipynb"}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs(name):
  notebook = nbformat.read(COLABS / name, as_version=4)
  nbformat.validate(notebook)
  for index, cell in enumerate(notebook.cells):
    if cell.cell_type == "code":
      assert cell.outputs == [], f"{name} cell {index} has saved outputs; clear them before committing."
      assert cell.execution_count is None, f"{name} cell {index} has an execution count; clear it."


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_first_code_cell_installs_jaxtok(name):
  cells = nbformat.read(COLABS / name, as_version=4).cells
  first = next(cell for cell in cells if cell.cell_type == "code")
  assert "REPO_URL" in first.source and "google.colab" in first.source and "pip" in first.source


@pytest.mark.parametrize("name", sorted(TOKENIZER_NOTEBOOKS))
@pytest.mark.parametrize("smoke", [False, True], ids=["full", "smoke"])
def test_settings_cell_names_the_command_line_config(name, smoke, monkeypatch):
  """The settings cell alone: which config and workdir a tokenizer notebook trains, with and without smoke."""
  variable, config, smoke_config = TOKENIZER_NOTEBOOKS[name]
  monkeypatch.setenv(variable, "/some/workdir")
  if smoke:
    monkeypatch.setenv("JAXTOK_NOTEBOOK_SMOKE", "1")
  else:
    monkeypatch.delenv("JAXTOK_NOTEBOOK_SMOKE", raising=False)
  cells = nbformat.read(COLABS / name, as_version=4).cells
  settings = next(cell.source for cell in cells if cell.cell_type == "code" and "SMOKE =" in cell.source)
  namespace = {}
  exec(settings, namespace)  # pylint: disable=exec-used
  configs = [value for key, value in namespace.items() if key.endswith("CONFIG")]
  workdirs = [value for key, value in namespace.items() if key.endswith("WORKDIR")]
  assert configs == [smoke_config if smoke else config] and workdirs == ["/some/workdir"]


@pytest.fixture(scope="module")
def kernel_environment(tmp_path_factory):
  """The environment of the notebook kernels: this interpreter's kernelspec first, one CPU device (no smoke flag)."""
  spec_dir = tmp_path_factory.mktemp("jupyter") / "kernels" / "python3"
  spec_dir.mkdir(parents=True)
  (spec_dir / "kernel.json").write_text(json.dumps({
      "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
      "display_name": "Python 3 (jaxtok tests)", "language": "python"}))
  environment = dict(os.environ)
  environment["JUPYTER_PATH"] = os.pathsep.join(
      [str(spec_dir.parent.parent)] + [p for p in [os.environ.get("JUPYTER_PATH")] if p])
  environment["JAX_PLATFORMS"] = "cpu"
  environment.pop("MPLBACKEND", None)  # ipykernel's inline backend, so that the figures are checked
  environment.pop("JAXTOK_NOTEBOOK_SMOKE", None)
  environment["XLA_FLAGS"] = environment.get("XLA_FLAGS", "").replace(_DEVICES_FLAG, "").strip()
  return environment


def _execute(name, environment, monkeypatch, timeout=CELL_TIMEOUT_SECONDS):
  """Runs notebook `name` top to bottom; checks it raised nothing, drew its figures and imported this checkout."""
  monkeypatch.setenv("JUPYTER_PATH", environment["JUPYTER_PATH"])  # where the kernel manager finds the spec
  notebook = nbformat.read(COLABS / name, as_version=4)
  client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                          resources={"metadata": {"path": str(COLABS)}})
  client.execute(env=environment)  # raises CellExecutionError, naming the cell, on any error
  errors = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
            if output.output_type == "error"]
  assert not errors
  for index, cell in enumerate(notebook.cells):
    if cell.cell_type == "code" and "plt.show()" in cell.source:
      assert any("image/png" in output.get("data", {}) for output in cell.outputs), f"cell {index} drew no figure"
  install_cell = next(cell for cell in notebook.cells if cell.cell_type == "code")
  install_output = next(output for output in install_cell.outputs if output.output_type == "stream")
  assert f"jaxtok from {COLABS.parent / 'jaxtok'}" in install_output.text  # the kernel imported this checkout


def _as_json(value):
  return json.loads(json.dumps(value, default=str))


def _finished_run(workdir, config_argument):
  """The final evaluation of the run in `workdir`, after checking it trained exactly `config_argument`."""
  from jaxtok import cli  # pylint: disable=g-import-not-at-top
  summary = json.loads((workdir / "metrics.json").read_text())
  expected = cli.load_config_file(str(REPO / config_argument))
  assert summary["config"] == _as_json(expected.to_dict()), f"the notebook did not train {config_argument} as is"
  assert summary["completed"] and summary["step"] == expected.train.num_steps
  final = summary["final_eval"]
  assert np.isfinite(final["psnr"]) and np.isfinite(final["mean_colour_baseline_psnr"])
  return final


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, kernel_environment, monkeypatch, tmp_path):
  """Smoke settings. A tokenizer notebook trains the smoke variant of its command-line config (a few steps cannot
  beat the mean-colour baseline: the full-settings test below asserts that)."""
  environment = {**kernel_environment, "JAXTOK_NOTEBOOK_SMOKE": "1"}
  if name in TOKENIZER_NOTEBOOKS:
    variable, _, smoke_config = TOKENIZER_NOTEBOOKS[name]
    environment[variable] = str(tmp_path / "workdir")
  _execute(name, environment, monkeypatch)
  if name in TOKENIZER_NOTEBOOKS:
    _finished_run(tmp_path / "workdir", smoke_config)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart.ipynb", "flexible_tokens.ipynb"])
def test_trained_tokenizer_beats_the_mean_colour_baseline(name, kernel_environment, monkeypatch, tmp_path,
                                                          compile_fast_flag):
  """Full settings: the notebook trains its command-line config as is and ends above the mean-colour baseline.

  generation.ipynb trains experiments/quickstart.py too (checked at smoke settings above), the same run as
  quickstart.ipynb's, so its tokenizer is covered here without a second training.
  """
  variable, config, _ = TOKENIZER_NOTEBOOKS[name]
  xla_flags = kernel_environment["XLA_FLAGS"].replace(compile_fast_flag, "").strip()  # training runs at -O2
  _execute(name, {**kernel_environment, variable: str(tmp_path / "workdir"), "XLA_FLAGS": xla_flags}, monkeypatch,
           timeout=FULL_TRAINING_CELL_TIMEOUT_SECONDS)
  final = _finished_run(tmp_path / "workdir", config)
  assert final["psnr"] > final["mean_colour_baseline_psnr"], final
