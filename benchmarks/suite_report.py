"""The suite's report: the issue's targets checked against its rows, and one markdown table per section."""
from typing import Any

_TORCH_MODEL = "TiTok-L-32"


def _rows(report: dict, section: str) -> list[dict]:
  return report["sections"].get(section, {}).get("rows", [])


def _target(name: str, value: float | None, threshold: float, higher_is_better: bool = True, detail: str = "") -> dict:
  met = None if value is None else (value >= threshold if higher_is_better else value < threshold)
  return dict(target=name, value=value, threshold=threshold, met=met, detail=detail)


def _best(rows: list[dict], key: str) -> tuple[float | None, str]:
  rows = [row for row in rows if row.get(key) is not None]
  if not rows:
    return None, ""
  best = max(rows, key=lambda row: row[key])
  return best[key], best.get("impl", "")


def _kernel_rows(rows: list[dict], dtype: str, dim: int, num_codes: int) -> list[dict]:
  return [row for row in rows if (row.get("dtype"), row.get("D"), row.get("K")) == (dtype, dim, num_codes)
          and row.get("impl") not in ("naive_xla", "xla")]


def targets(report: dict) -> list[dict]:
  """The issue's targets, each with the measured value and whether it is met (None: not measured in this run)."""
  if report["meta"]["small"]:
    return []
  lookup = _rows(report, "codebook_lookup")
  speedup, speedup_impl = _best(_kernel_rows(lookup, "float32", 32, 65536), "vs_naive")
  ceiling, ceiling_impl = _best(_kernel_rows(lookup, "bfloat16", 256, 65536), "ceiling")
  memory = [row["mib"] for row in _kernel_rows(lookup, "float32", 32, 1 << 20) if "mib" in row]
  checks = _rows(report, "kernel_checks")
  result = [
      _target("every kernel matches its XLA reference on the device", float(all(r["passed"] for r in checks))
              if checks else None, 1.0, detail=f"{sum(r['passed'] for r in checks)}/{len(checks)} checks"),
      _target("codebook lookup vs naive XLA, N=K=65,536 D=32 f32", speedup, 12.0, detail=speedup_impl),
      _target("codebook lookup fraction of the bf16 matmul ceiling, D=256", ceiling, 0.7, detail=ceiling_impl),
      _target("codebook lookup extra memory at K=2^20 (MiB)", min(memory) if memory else None, 2048.0,
              higher_is_better=False),
  ]
  attention = {row["mask"]: row for row in _rows(report, "sparse_attention")}
  for mask, threshold in (("12.5%", 0.7 / 0.125), ("100.0%", 0.7)):
    for part in ("forward", "backward"):
      value = attention.get(mask, {}).get(f"{part}_speedup")
      result.append(_target(f"sparse attention {part} vs cuDNN dense at {mask} density", value, threshold))
  titok = {row["model"]: row for row in _rows(report, "titok_train")}
  result.append(_target("TiTok-B-64 train step vs PyTorch torch.compile", titok.get("TiTok-B-64", {}).get(
      "vs_torch_compile"), 1.23))
  torch_l32 = [row.get("peak_memory_gib") for row in _rows(report, "torch_reference")
               if row.get("model") == _TORCH_MODEL and not row.get("compiled")]
  l32 = titok.get(_TORCH_MODEL, {}).get("memory_plan_gib")
  result.append(_target("TiTok-L-32 memory / PyTorch's peak", l32 / torch_l32[0] if l32 and torch_l32 and
                        torch_l32[0] else None, 1.0, higher_is_better=False))
  sampling = {(row["length"], row["batch"]): row for row in _rows(report, "maskgit_sampling")}
  for batch, threshold in ((256, 1.55), (32, 2.0)):
    result.append(_target(f"MaskGIT sampling vs PyTorch, 64 tokens, batch {batch}",
                          sampling.get((64, batch), {}).get("vs_torch"), threshold))
  return result


def _format(value: Any) -> str:
  if isinstance(value, float):
    return f"{value:.4g}"
  if isinstance(value, (list, tuple)):
    return " / ".join(_format(item) for item in value)
  return "" if value is None else str(value).replace("|", "/")


def short(row: dict) -> str:
  """One line for the console."""
  return ", ".join(f"{key}={_format(value)}" for key, value in row.items())[:300]


def _table(rows: list[dict]) -> list[str]:
  columns = list(dict.fromkeys(key for row in rows for key in row))
  lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
  lines += ["| " + " | ".join(_format(row.get(column)) for column in columns) + " |" for row in rows]
  return lines


def markdown(report: dict) -> str:
  meta = report["meta"]
  lines = [f"# Benchmark suite: {meta['device']} ({meta['backend']}), jax {meta['jax']}, {meta['date']}", "",
           f"Total {report['total_s']:.0f} s{'; small (CPU) shapes: not a speed measurement' if meta['small'] else ''}."
           f" Forbidden imports: {report['forbidden_imports'] or 'none'}.", ""]
  if report["targets"]:
    lines += ["## Targets", ""] + _table([dict(target=t["target"], value=t["value"], threshold=t["threshold"],
                                               met={True: "yes", False: "NO", None: "not measured"}[t["met"]],
                                               detail=t["detail"]) for t in report["targets"]]) + [""]
  for name, section in report["sections"].items():
    status = "failed" if section["error"] else ("stopped at its budget" if section["stopped_by_budget"] else "done")
    lines += [f"## {name}", "", f"{status}: {section['seconds']:.0f} s of {section['budget_s']:.0f} s.", ""]
    if section["error"]:
      lines += ["```", section["error"][:1500], "```", ""]
    if section["rows"]:
      lines += _table(section["rows"]) + [""]
  return "\n".join(lines)
