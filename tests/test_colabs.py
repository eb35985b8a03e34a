"""Executes every notebook in colabs/ on CPU with nbclient (smoke settings) and checks the committed copies are clean.

Each notebook runs in a fresh kernel of THIS interpreter (a temporary `python3` kernelspec pointing at
`sys.executable` comes first on JUPYTER_PATH, so a system or user kernelspec of another Python is never picked), with
cwd `colabs/` and `JAXTOK_NOTEBOOK_SMOKE=1`, which each notebook's settings cell reads to shrink its steps.
"""
import json
import os
import pathlib
import sys

import nbformat
from nbclient import NotebookClient
import pytest

COLABS = pathlib.Path(__file__).resolve().parent.parent / "colabs"
NOTEBOOKS = sorted(path.name for path in COLABS.glob("*.ipynb"))
CELL_TIMEOUT_SECONDS = 300
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


@pytest.fixture(scope="module")
def kernel_environment(tmp_path_factory):
  """The environment of the notebook kernels: this interpreter's kernelspec first, smoke settings, one CPU device."""
  spec_dir = tmp_path_factory.mktemp("jupyter") / "kernels" / "python3"
  spec_dir.mkdir(parents=True)
  (spec_dir / "kernel.json").write_text(json.dumps({
      "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
      "display_name": "Python 3 (jaxtok tests)", "language": "python"}))
  environment = dict(os.environ)
  environment["JUPYTER_PATH"] = os.pathsep.join(
      [str(spec_dir.parent.parent)] + [p for p in [os.environ.get("JUPYTER_PATH")] if p])
  environment["JAXTOK_NOTEBOOK_SMOKE"] = "1"
  environment["JAX_PLATFORMS"] = "cpu"
  environment.pop("MPLBACKEND", None)  # ipykernel's inline backend, so that the figures are checked
  environment["XLA_FLAGS"] = environment.get("XLA_FLAGS", "").replace(_DEVICES_FLAG, "").strip()
  return environment


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, kernel_environment, monkeypatch):
  monkeypatch.setenv("JUPYTER_PATH", kernel_environment["JUPYTER_PATH"])  # where the kernel manager finds the spec
  notebook = nbformat.read(COLABS / name, as_version=4)
  client = NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
                          resources={"metadata": {"path": str(COLABS)}})
  client.execute(env=kernel_environment)  # raises CellExecutionError, naming the cell, on any error
  errors = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
            if output.output_type == "error"]
  assert not errors
  for index, cell in enumerate(notebook.cells):
    if cell.cell_type == "code" and "plt.show()" in cell.source:
      assert any("image/png" in output.get("data", {}) for output in cell.outputs), f"cell {index} drew no figure"
  install_cell = next(cell for cell in notebook.cells if cell.cell_type == "code")
  install_output = next(output for output in install_cell.outputs if output.output_type == "stream")
  assert f"jaxtok from {COLABS.parent / 'jaxtok'}" in install_output.text  # the kernel imported this checkout
