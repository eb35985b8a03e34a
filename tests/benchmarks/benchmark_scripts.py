"""The scripts of benchmarks/ (not a package) as modules, for their tests: `load("quality_cpu")`."""
import importlib.util
import pathlib
import types

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str) -> types.ModuleType:
  """Executes benchmarks/<name>.py afresh and returns it as a module."""
  spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
