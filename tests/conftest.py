"""Test-session set-up before jax is imported anywhere: 8 simulated CPU devices (for mesh tests), fast compiles,
a compilation cache shared by every test process."""
import os

import pytest

_DEVICES_FLAG = "--xla_force_host_platform_device_count=8"
# Most tests compile far more than they run: XLA:CPU's LLVM back end at -O0 compiles them ~40% faster (the same
# programs, within float rounding; every comparison here has a tolerance or runs both sides alike). The
# full-settings notebook tests, which train for minutes, take it out again; a level the caller set is kept.
_COMPILE_FAST_FLAG = "--xla_backend_optimization_level=0"


def _add_xla_flag(flag: str, unless_present: str) -> None:
  flags = os.environ.get("XLA_FLAGS", "")
  if unless_present not in flags:
    os.environ["XLA_FLAGS"] = (flags + " " + flag).strip()


_add_xla_flag(_DEVICES_FLAG, unless_present=_DEVICES_FLAG)
_add_xla_flag(_COMPILE_FAST_FLAG, unless_present="--xla_backend_optimization_level")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Compiled programs are cached on disk across test processes (xdist workers, subprocess runs of the main job):
# initialising a model with partitionable threefry keys costs tens of seconds of XLA:CPU compile otherwise.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".pytest_cache",
                                   "jax-compilation-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")


@pytest.fixture(scope="session")
def compile_fast_flag() -> str:
  """The XLA flag this session compiles with, for tests that build a subprocess's environment or take it out."""
  return _COMPILE_FAST_FLAG
