"""The config a workdir was trained with, recorded as `<workdir>/config.json` when training starts.

A resumed run, `jaxtok.evaluate` and `jaxtok.sample` compare the config they are given with it and stop, in one line
naming the fields that differ, before anything is restored; `jaxtok.evaluate` and `jaxtok.sample` use it when they
are given none.
"""
import json
import pathlib
from typing import Any, Iterable

import ml_collections

from jaxtok import config_validation

FILE_NAME = "config.json"

# Fields that say how a run is driven and observed, not what it computes: they may change on resume.
RUN_CONTROL_FIELDS = ("train.log_every_steps", "eval.every_steps", "checkpoint", "mesh", "data.worker_count")


def _plain(config: Any) -> dict[str, Any]:
  """`config` as JSON values (tuples become lists), so a recorded and a given config compare equal."""
  return json.loads(json.dumps(config.to_dict(), default=str))


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  if not isinstance(tree, dict) or not tree:
    return {prefix.rstrip("."): tree}
  flat = {}
  for name, value in tree.items():
    flat.update(_flatten(value, f"{prefix}{name}."))
  return flat


def _tuples(value: Any) -> Any:
  """JSON lists back to the tuples configs hold."""
  if isinstance(value, dict):
    return {name: _tuples(item) for name, item in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(item) for item in value)
  return value


def record(config: Any, workdir: pathlib.Path) -> None:
  """Writes `config` to `<workdir>/config.json`."""
  (workdir / FILE_NAME).write_text(json.dumps(_plain(config), indent=2) + "\n")


def recorded(workdir: str | pathlib.Path) -> ml_collections.ConfigDict | None:
  """The locked config recorded in `workdir`, or None when it has none."""
  path = pathlib.Path(workdir) / FILE_NAME
  if not path.exists():
    return None
  return ml_collections.ConfigDict(_tuples(json.loads(path.read_text()))).lock()


def differences(config: Any, reference: Any, may_differ: Iterable[str] = ()) -> list[str]:
  """Dotted paths whose values differ between the two configs (or exist in one only), skipping `may_differ` and
  everything below them."""
  may_differ = tuple(may_differ)
  given, kept = _flatten(_plain(config)), _flatten(_plain(reference))
  return sorted(path for path in set(given) | set(kept)
                if given.get(path, "<absent>") != kept.get(path, "<absent>")
                and not any(path == field or path.startswith(field + ".") for field in may_differ))


def check_matches(config: Any, workdir: str | pathlib.Path, may_differ: Iterable[str] = RUN_CONTROL_FIELDS) -> None:
  """Raises ConfigError, one line naming the differing fields and both values, when `config` differs from the
  config recorded in `workdir` outside `may_differ`; does nothing when the workdir has none recorded."""
  reference = recorded(workdir)
  if reference is None:
    return
  paths = sorted(differences(config, reference, may_differ), key=lambda path: path != "model_name")
  if paths:
    given, kept = _flatten(_plain(config)), _flatten(_plain(reference))
    shown = "; ".join(f"{path} = {_short(given.get(path, '<absent>'))} here, {_short(kept.get(path, '<absent>'))} "
                      f"there" for path in paths[:4]) + (f"; and {len(paths) - 4} more" if len(paths) > 4 else "")
    raise config_validation.ConfigError(
        f"The config differs from the one {pathlib.Path(workdir) / FILE_NAME} recorded in {len(paths)} field(s): "
        f"{shown}. Use that config (or leave --config out where the command allows it), or another --workdir.")


def _short(value: Any) -> str:
  text = json.dumps(value)
  return text if len(text) <= 40 else text[:37] + "..."


def resolve(config: Any | None, workdir: str | pathlib.Path, may_differ: Iterable[str] = RUN_CONTROL_FIELDS) -> Any:
  """`config` checked against the workdir's record, or the record itself when `config` is None."""
  if config is None:
    config = recorded(workdir)
    if config is None:
      raise config_validation.ConfigError(f"{workdir} has no recorded {FILE_NAME} (it was trained before jaxtok "
                                          "recorded configs, or not at all): pass the experiment config it was "
                                          "trained with.")
    return config
  check_matches(config, workdir, may_differ)
  return config
