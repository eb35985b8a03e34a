"""`help()` on what the packages export says what it takes: every field of a class is documented on the class."""
import dataclasses
import importlib
import inspect
import re

import pytest

PACKAGES = ("jaxtok.quantizers", "jaxtok.tokenizers", "jaxtok.decoders", "jaxtok.data", "jaxtok.metrics",
            "jaxtok.losses")
_FLAX_FIELDS = ("parent", "name")


def _exports(package):
  module = importlib.import_module(package)
  return [(name, getattr(module, name)) for name in module.__all__]


def _fields(cls) -> list[str]:
  if dataclasses.is_dataclass(cls):
    return [field.name for field in dataclasses.fields(cls) if field.name not in _FLAX_FIELDS and field.init]
  return [name for name in inspect.signature(cls.__init__).parameters if name not in ("self", "args", "kwargs")]


@pytest.mark.parametrize("package", PACKAGES)
def test_package_docstring_says_what_is_inside(package):
  module = importlib.import_module(package)
  assert len((module.__doc__ or "").strip().splitlines()) >= 3, f"{package} needs more than a one-line docstring"
  assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_class_documents_its_fields(package):
  undocumented = {}
  for name, value in _exports(package):
    if inspect.isclass(value) and not issubclass(value, Exception):
      doc = inspect.getdoc(value) or ""
      missing = [field for field in _fields(value) if not re.search(rf"\b{field}\b", doc)]
      if missing or not doc:
        undocumented[name] = missing or "no docstring"
  assert not undocumented, f"{package}: fields missing from the class docstrings: {undocumented}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_function_has_a_docstring(package):
  bare = [name for name, value in _exports(package) if inspect.isfunction(value) and not inspect.getdoc(value)]
  assert not bare, f"{package}: no docstring on {bare}"
