"""The headline rows of every benchmark in one call on one accelerator, within a fixed wall-time budget.

  python benchmarks/suite.py --out=results/            # GPU / TPU: the issue's rows, about 8 minutes
  python benchmarks/suite.py --small --out=/tmp/suite   # CPU: the same code path on tiny shapes, about a minute
  python benchmarks/suite.py --out=results/ --torch_reference=/path/to/1d-tokenizer [--torch_python=python3]

Sections, in order: the official PyTorch references (only with --torch_reference, run first in their own process,
before JAX takes the accelerator's memory), the device's ceilings (bf16 / f32 matmul, copy bandwidth) measured in
this process, each kernel against its XLA reference on the device, codebook lookup, sparse attention, the TiTok
train step, MaskGIT sampling, speculative decoding and every sampler on a LlamaGen GPT (`--llamagen=c2i_B_256.npz`,
converted by `python -m jaxtok.convert`; a tiny random one by default) (`suite_sections.py`). Each section has a time
budget (`--budgets=name:seconds,...`) and stops starting rows once it is spent or once `--time_limit` is reached; a
section that fails records its error and the suite goes on. Every speed figure is reported with the ratio it is judged
by (fraction of a ceiling, speed-up over a baseline or over the PyTorch reference timed in the same call), and the
issue's targets are checked at the end. Output: `suite.json` and `suite.md` under `--out`.

Imports neither grain nor ml_collections (the GPU image has neither).
"""
import argparse
import dataclasses
import datetime
import json
import pathlib
import sys
import time
import traceback
from typing import Any, Callable, Iterator

import suite_report
import suite_sections


@dataclasses.dataclass
class Section:
  """A named generator of result rows with its time budget (accelerator, small)."""
  name: str
  run: Callable[[suite_sections.Context], Iterator[dict]]
  budget_s: float
  small_budget_s: float


# Budgets in seconds on an accelerator (about 7.5 minutes in all, 3 of them PyTorch's when asked for) and small: a
# section always finishes the row it started, so the small budgets run each section's first row, its code path.
SECTIONS = (
    Section("torch_reference", suite_sections.torch_reference, 170, 300),
    Section("ceilings", suite_sections.ceilings, 25, 30),
    Section("kernel_checks", suite_sections.kernel_checks, 35, 1),
    Section("codebook_lookup", suite_sections.codebook_lookup, 75, 1),
    Section("sparse_attention", suite_sections.sparse_attention, 55, 1),
    Section("titok_train", suite_sections.titok_train, 110, 1),
    Section("maskgit_sampling", suite_sections.maskgit_sampling, 60, 1),
    Section("speculative", suite_sections.speculative, 40, 1),
    Section("llamagen", suite_sections.llamagen, 60, 1),
)


def run_section(section: Section, context: suite_sections.Context, budget_s: float) -> dict[str, Any]:
  """Runs `section` until it ends, fails or spends `budget_s`; returns its record (rows, error, timing)."""
  record: dict[str, Any] = dict(budget_s=budget_s, rows=[], error=None, stopped_by_budget=False)
  start = time.perf_counter()
  context.budget_s = budget_s
  try:
    for row in section.run(context):
      record["rows"].append(row)
      print(f"[{section.name}] {suite_report.short(row)}", flush=True)
      if time.perf_counter() - start > budget_s:
        record["stopped_by_budget"] = True
        break
  except Exception as error:  # a failing section is recorded, and the suite goes on
    record["error"] = f"{type(error).__name__}: {error}"
    record["traceback"] = traceback.format_exc(limit=8)[-3000:]
    print(f"[{section.name}] FAILED {record['error'][:500]}", flush=True)
  record["seconds"] = time.perf_counter() - start
  return record


def parse_budgets(text: str) -> dict[str, float]:
  known = {section.name for section in SECTIONS}
  budgets = {}
  for item in filter(None, text.split(",")):
    name, _, seconds = item.partition(":")
    if name not in known or not seconds:
      raise SystemExit(f"--budgets takes name:seconds with names in {sorted(known)}, got {item!r}")
    budgets[name] = float(seconds)
  return budgets


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", required=True, help="directory for suite.json and suite.md")
  parser.add_argument("--small", action="store_true", help="tiny shapes (CPU, CI): the same code path")
  parser.add_argument("--torch_reference", default="", help="checkout of bytedance/1d-tokenizer to time against")
  parser.add_argument("--torch_python", default=sys.executable, help="python with torch for --torch_reference")
  parser.add_argument("--time_limit", type=float, default=None, help="seconds after which no row starts "
                      "(default 450 on an accelerator, 600 small)")
  parser.add_argument("--budgets", default="", help="per-section seconds, e.g. titok_train:200,speculative:0")
  parser.add_argument("--only", default="", help="comma-separated sections to run (default: all)")
  parser.add_argument("--llamagen", default="random", help="converted LlamaGen GPT (.npz) for the llamagen rows")
  parser.add_argument("--llamagen_draft", default="", help="converted LlamaGen GPT as their draft")
  parser.add_argument("--sweep", action="store_true", help="also time Triton block-size variants of the lookup")
  args = parser.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  budgets, only = parse_budgets(args.budgets), set(filter(None, args.only.split(",")))
  time_limit = args.time_limit or (600.0 if args.small else 450.0)
  context = suite_sections.Context(small=args.small, torch_reference=args.torch_reference,
                                   torch_python=args.torch_python, sweep=args.sweep, work_dir=out,
                                   llamagen=args.llamagen, llamagen_draft=args.llamagen_draft)
  started, start = datetime.datetime.now(datetime.timezone.utc), time.perf_counter()
  results: dict[str, Any] = {}
  chosen = [section for section in SECTIONS if (not only or section.name in only)
            and (section.name != "torch_reference" or args.torch_reference)]
  planned = {section.name: budgets.get(section.name, section.small_budget_s if args.small else section.budget_s)
             for section in chosen}
  for index, section in enumerate(chosen):
    remaining = time_limit - (time.perf_counter() - start)
    still_planned = sum(planned[later.name] for later in chosen[index:])
    # When earlier sections overran, the remaining budgets shrink in proportion, so no section is starved entirely.
    budget = planned[section.name] * min(1.0, remaining / still_planned) if still_planned > 0 else 0.0
    if budget <= 0:
      results[section.name] = dict(budget_s=0, rows=[], error=None, stopped_by_budget=True, seconds=0.0)
      continue
    results[section.name] = run_section(section, context, budget)
    if section.name == "ceilings":
      context.ceilings = {row["name"]: row["value"] for row in results[section.name]["rows"]}
    write_report(out, args.small, started, results, time.perf_counter() - start)  # a killed run keeps what it did
  print((out / "suite.md").read_text())
  return 0


def write_report(out: pathlib.Path, small: bool, started: datetime.datetime, results: dict, seconds: float) -> None:
  report = dict(meta=suite_sections.environment(small, started), sections=results, total_s=seconds,
                forbidden_imports=suite_sections.forbidden_imports())
  report["targets"] = suite_report.targets(report)
  (out / "suite.json").write_text(json.dumps(report, indent=1, default=str))
  (out / "suite.md").write_text(suite_report.markdown(report))


if __name__ == "__main__":
  sys.exit(main())
