"""Reconstruction quality of the CPU-sized tokenizer configs at their bits per image: the README's quality table.

Each entry trains one experiment config with `python -m jaxtok.main` in its own process (its own workdir under
`--workdir`), then reads its `metrics.json`: eval PSNR on the pinned photos protocol (EMA weights), the mean-colour
baseline, codebook usage, bits per image, PSNR from the first k tokens for flexible models, and the wall time of
the whole process (compile, training, evaluations). Writes `quality_cpu.json`, `quality_cpu.png` (PSNR against
bits per image, each config a point, a flexible model's prefixes a curve, the mean-colour baselines dashed) and
`quality_cpu.md` (the README's table, a row per entry) into `--output_dir`.

  python benchmarks/quality_cpu.py                                   # every entry, under an hour on 2 CPU cores
  python benchmarks/quality_cpu.py --only=titok_photos,vqgan_photos  # some entries
  python benchmarks/quality_cpu.py --only=quickstart --name=lr3e-3 --set=optimizer.learning_rate=3e-3   # a probe
  python benchmarks/quality_cpu.py --num_steps=2 --eval_images=8     # a smoke run of the machinery

`--set` overrides apply to every selected entry (any config field, `--config.<field>` of jaxtok.main); `--name`
suffixes the entries' names, so probes of one config land side by side in the same JSON (existing results of
other names are kept).
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time
from typing import Any

ENTRIES = {  # name -> experiment config (path[:argument])
    "quickstart": "experiments/quickstart.py",
    "quickstart_flex": "experiments/quickstart.py:flex",
    "conv_vq_photos": "experiments/conv_vq_photos.py",
    "titok_photos": "experiments/titok_photos.py",
    "vqgan_photos": "experiments/vqgan_photos.py",
    "titok_photos_flex": "experiments/titok_photos.py:flex",
    "titok_photos_tail_drop": "experiments/titok_photos.py:tail_drop",
}
REPOSITORY = pathlib.Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--only", default="", help=f"comma-separated entries of {tuple(ENTRIES)} (default: all)")
  parser.add_argument("--output_dir", default="workdirs/quality_cpu", help="where the JSON and PNG go")
  parser.add_argument("--workdir", default="", help="root of the runs' workdirs (default: <output_dir>/runs)")
  parser.add_argument("--name", default="", help="suffix of the entries' names (a probe's label)")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help="config override for every selected entry, e.g. optimizer.learning_rate=3e-3")
  parser.add_argument("--num_steps", type=int, default=0, help="override train.num_steps (0: each config's own)")
  parser.add_argument("--eval_images", type=int, default=0, help="override eval.num_images and eval.batch_size "
                      "(0: each config's own, the pinned protocol)")
  args = parser.parse_args(argv)
  names = [name for name in args.only.split(",") if name] or list(ENTRIES)
  unknown = [name for name in names if name not in ENTRIES]
  if unknown:
    parser.error(f"--only names unknown entries {unknown}; expected some of {tuple(ENTRIES)}.")
  malformed = [item for item in args.set if "=" not in item]
  if malformed:
    parser.error(f"--set expects FIELD=VALUE, got {malformed}.")
  args.names = names
  return args


def overrides(args: argparse.Namespace) -> list[str]:
  """The `--config.<field>=<value>` flags of every run."""
  flags = [f"--config.{item}" for item in args.set]
  if args.num_steps:
    steps = args.num_steps
    flags += [f"--config.train.num_steps={steps}", f"--config.eval.every_steps={steps}",
              f"--config.checkpoint.every_steps={steps}", f"--config.train.log_every_steps={max(1, steps // 4)}"]
  if args.eval_images:
    flags += [f"--config.eval.num_images={args.eval_images}", f"--config.eval.batch_size={args.eval_images}",
              f"--config.eval.grid_images={min(8, args.eval_images)}"]
  return flags


def run_entry(config: str, workdir: pathlib.Path, flags: list[str]) -> dict[str, Any]:
  """Trains `config` in a fresh process; returns its figures (raises if the run fails)."""
  command = [sys.executable, "-m", "jaxtok.main", f"--config={config}", f"--workdir={workdir}", *flags]
  start = time.perf_counter()
  completed = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, check=False)
  wall_seconds = time.perf_counter() - start
  if completed.returncode:
    raise RuntimeError(f"{' '.join(command)} failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
  summary = json.loads((workdir / "metrics.json").read_text())
  final = summary["final_eval"]
  return {
      "config": config, "overrides": flags, "seed": summary["config"]["seed"], "steps": summary["step"],
      "batch_size": summary["config"]["data"]["batch_size"], "image_size": summary["config"]["data"]["image_size"],
      "wall_seconds": round(wall_seconds, 1), "psnr": final["psnr"], "ssim": final.get("ssim"),
      "mean_colour_baseline_psnr": final["mean_colour_baseline_psnr"], "codebook_usage": final.get("codebook_usage"),
      "perplexity": final.get("perplexity"), "bits_per_image": final.get("bits_per_image"),
      "psnr_at_tokens": {key.split("_")[2]: value for key, value in final.items() if key.startswith("psnr_at_")},
      "eval_history": [{"step": item["step"], "psnr": item["psnr"]} for item in summary["eval_history"]],
  }


def plot(results: dict[str, dict[str, Any]], path: pathlib.Path) -> None:
  """PSNR against bits per image, a panel per image size: a point per config, a curve per flexible model (its
  prefixes), its mean-colour baseline dashed in the same colour."""
  import matplotlib  # pylint: disable=g-import-not-at-top  # optional dependency of the benchmark only
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top

  sizes = sorted({result["image_size"] for result in results.values()})
  figure, axes = pyplot.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False)
  for axis, size in zip(axes[0], sizes):
    for name, result in sorted(results.items()):
      if result["image_size"] == size:
        _plot_entry(axis, name, result)
    axis.set_xscale("log", base=2)
    axis.set_xlabel("bits per image")
    axis.set_ylabel("eval PSNR (dB), EMA weights")
    axis.set_title(f"{size}x{size} photos (dashed: mean-colour baseline)")
    axis.legend(fontsize=7)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  pyplot.close(figure)


def _plot_entry(axis: Any, name: str, result: dict[str, Any]) -> None:
  bits, tokens = result["bits_per_image"], result["psnr_at_tokens"]
  if tokens:
    counts = sorted(tokens, key=int)
    total = max(int(k) for k in counts)
    line, = axis.plot([bits * int(k) / total for k in counts], [tokens[k] for k in counts], marker="o", label=name)
  else:
    line, = axis.plot([bits], [result["psnr"]], marker="s", linestyle="", label=name)
  axis.axhline(result["mean_colour_baseline_psnr"], color=line.get_color(), linestyle="--", linewidth=0.8)


TABLE_HEADER = ("| entry | config | steps x batch | wall | eval PSNR | vs baseline | usage | bits per image | "
                "eval curve (step: dB) | PSNR from the first k tokens |\n|---|---|---|---|---|---|---|---|---|---|")


def table(results: dict[str, dict[str, Any]]) -> str:
  """The results as a Markdown table, a row per entry (in the JSON's order)."""
  return "\n".join([TABLE_HEADER] + [_table_row(name, result) for name, result in results.items()]) + "\n"


def _table_row(name: str, result: dict[str, Any]) -> str:
  curve = ", ".join(f"{item['step']}: {item['psnr']:.2f}" for item in result["eval_history"])
  tokens = result["psnr_at_tokens"]
  prefixes = ", ".join(f"{k}: {tokens[k]:.2f}" for k in sorted(tokens, key=int)) or "-"
  usage = "-" if result["codebook_usage"] is None else f"{100 * result['codebook_usage']:.1f}%"
  gain = result["psnr"] - result["mean_colour_baseline_psnr"]
  return (f"| {name} | `{result['config']}` | {result['steps']} x {result['batch_size']} | "
          f"{result['wall_seconds']:.0f} s | {result['psnr']:.2f} dB | {gain:+.2f} dB | {usage} | "
          f"{result['bits_per_image']:.0f} | {curve} | {prefixes} |")


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
  args = parse_args(argv)
  output_dir = pathlib.Path(args.output_dir).resolve()
  workdir_root = pathlib.Path(args.workdir).resolve() if args.workdir else output_dir / "runs"
  output_dir.mkdir(parents=True, exist_ok=True)
  json_path = output_dir / "quality_cpu.json"
  results = json.loads(json_path.read_text()) if json_path.exists() else {}
  flags = overrides(args)
  start = time.perf_counter()
  for done, name in enumerate(args.names):
    label = f"{name}_{args.name}" if args.name else name
    workdir = workdir_root / label
    if (workdir / "metrics.json").exists():
      raise FileExistsError(f"{workdir} already holds a run; remove it or pick another --name.")
    results[label] = run_entry(ENTRIES[name], workdir, flags)
    result = results[label]
    print(json.dumps({"name": label, **{key: result[key] for key in (
        "steps", "wall_seconds", "psnr", "mean_colour_baseline_psnr", "codebook_usage", "bits_per_image",
        "psnr_at_tokens")}}), flush=True)
    json_path.write_text(json.dumps(results, indent=2))
    elapsed = time.perf_counter() - start
    remaining = len(args.names) - done - 1
    print(f"[{done + 1}/{len(args.names)}] {elapsed:.0f} s elapsed; {remaining} entries left", flush=True)
  plot(results, output_dir / "quality_cpu.png")
  (output_dir / "quality_cpu.md").write_text(table(results))
  return results


if __name__ == "__main__":
  main()
