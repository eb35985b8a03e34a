"""Maps the top-level `kernels/` folder into the package as `jaxtok.kernels`.

`kernels` is a name owned by another PyPI project, so the folder must never install as a top-level module. This
mapping holds for both regular wheels and editable installs; everything else lives in pyproject.toml.
"""
import setuptools


def _packages(folder: str, prefix: str) -> list[str]:
  return [prefix] + [f"{prefix}.{name}" for name in setuptools.find_packages(folder)]


setuptools.setup(
    packages=_packages("jaxtok", "jaxtok") + _packages("kernels", "jaxtok.kernels"),
    package_dir={"jaxtok": "jaxtok", "jaxtok.kernels": "kernels"},
)
