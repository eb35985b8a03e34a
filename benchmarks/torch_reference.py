"""The official PyTorch TiTok stage-1 train step and MaskGIT sampling, timed on this machine (run by `suite.py`).

  python benchmarks/torch_reference.py --repo=/path/to/1d-tokenizer --out=torch.json [--small]

`--repo` is a checkout of bytedance/1d-tokenizer with its requirements installed (torch, torchvision, accelerate,
omegaconf, transformers, einops, huggingface_hub); nothing of it is copied here. The models are built from its own
configs (`configs/training/TiTok/stage1/titok_*.yaml`, `configs/training/generator/maskgit.yaml`); `--small`
shrinks them for a CPU run that checks this script, not the speed.

TiTok: the official model and `ReconstructionLoss_Stage1` (cross-entropy on 1,024-way proxy codes, random here,
plus the quantizer loss), AdamW (1e-4, betas 0.9 / 0.99, weight decay 1e-4), gradient norm clipped to 1, bf16
autocast, TF32 on; eager and with `torch.compile(model)`. MaskGIT: `ImageBert.generate`, 8 steps with guidance
scale 2 and choice temperature 4.5 (the jaxtok benchmark's settings), bf16 autocast. Rows are written to `--out`
after each one, so a run stopped at its time budget keeps what it finished. Peak memory: `max_memory_allocated`.
"""
import argparse
import json
import pathlib
import sys
import time

import torch

TITOK = {"B-64": "titok_b64", "L-32": "titok_l32", "S-128": "titok_s128"}


def _sync(device: torch.device) -> None:
  if device.type == "cuda":
    torch.cuda.synchronize()


def _peak_gib(device: torch.device) -> float | None:
  return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None


def titok_config(repo: pathlib.Path, name: str, small: bool):
  from omegaconf import OmegaConf  # pylint: disable=import-outside-toplevel  (the official code's dependency)
  config = OmegaConf.load(repo / "configs/training/TiTok/stage1" / f"{TITOK[name]}.yaml")
  if small:
    config.dataset.preprocessing.crop_size = 32
    config.model.vq_model.vit_enc_model_size = config.model.vq_model.vit_dec_model_size = "small"
  return config


def titok_row(repo: pathlib.Path, name: str, batch: int, compiled: bool, steps: int, small: bool,
              device: torch.device) -> dict:
  from modeling.modules.losses import ReconstructionLoss_Stage1  # pylint: disable=import-outside-toplevel
  from modeling.titok import TiTok  # pylint: disable=import-outside-toplevel
  config = titok_config(repo, name, small)
  model = TiTok(config).to(device).train()
  loss_module = ReconstructionLoss_Stage1(config)
  optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.99), weight_decay=1e-4)
  forward = torch.compile(model) if compiled else model
  size = config.dataset.preprocessing.crop_size
  grid = size // config.model.vq_model.vit_dec_patch_size
  images = torch.rand(batch, 3, size, size, device=device)
  codes = torch.randint(0, 1024, (batch, grid, grid), device=device)

  def step():
    with torch.autocast(device.type, dtype=torch.bfloat16):
      reconstructions, extra = forward(images)
      loss, _ = loss_module(codes, reconstructions, extra)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss

  for _ in range(2):  # warm-up (and compilation)
    step()
  _sync(device)
  if device.type == "cuda":
    torch.cuda.reset_peak_memory_stats()
  start = time.perf_counter()
  for _ in range(steps):
    loss = step()
  _sync(device)
  seconds = (time.perf_counter() - start) / steps
  return dict(model=f"TiTok-{name}", batch=batch, compiled=compiled, step_ms=1e3 * seconds,
              images_per_second=batch / seconds, peak_memory_gib=_peak_gib(device), loss=float(loss.detach()),
              params_m=sum(p.numel() for p in model.parameters()) / 1e6)


def maskgit_row(repo: pathlib.Path, batch: int, repeats: int, small: bool, device: torch.device) -> dict:
  from modeling.maskgit import ImageBert  # pylint: disable=import-outside-toplevel
  from omegaconf import OmegaConf  # pylint: disable=import-outside-toplevel
  config = OmegaConf.load(repo / "configs/training/generator/maskgit.yaml")
  if small:
    config.model.vq_model.codebook_size = 256
    config.model.vq_model.num_latent_tokens = 16
    config.model.generator.update(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, intermediate_size=128,
                                  condition_num_classes=10)
  model = ImageBert(config).to(device).eval()
  labels = torch.arange(batch, device=device) % config.model.generator.condition_num_classes

  def sample():
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
      return model.generate(labels, guidance_scale=2.0, randomize_temperature=4.5, num_sample_steps=8)

  sample()
  _sync(device)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    tokens = sample()
    _sync(device)
    times.append(time.perf_counter() - start)
  seconds = sorted(times)[len(times) // 2]
  return dict(model="MaskGIT", batch=batch, compiled=False, tokens=tokens.shape[1], ms=1e3 * seconds,
              images_per_second=batch / seconds, params_m=sum(p.numel() for p in model.parameters()) / 1e6)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repo", required=True, help="checkout of bytedance/1d-tokenizer")
  parser.add_argument("--out", required=True, help="JSON file for the rows")
  parser.add_argument("--small", action="store_true", help="tiny models (CPU): checks the script, not the speed")
  args = parser.parse_args()
  repo = pathlib.Path(args.repo).resolve()
  sys.path.insert(0, str(repo))
  device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # the official training setting
  batch, steps, repeats = (2, 1, 1) if args.small else (128, 10, 5)
  runs = [lambda: titok_row(repo, "B-64", batch, False, steps, args.small, device),
          lambda: titok_row(repo, "B-64", batch, True, steps, args.small, device),
          lambda: titok_row(repo, "L-32", batch, False, steps, args.small, device),
          lambda: maskgit_row(repo, 256 if not args.small else 4, repeats, args.small, device),
          lambda: maskgit_row(repo, 32 if not args.small else 2, repeats, args.small, device),
          lambda: titok_row(repo, "S-128", batch, False, steps, args.small, device)]
  if args.small:
    runs.pop(1)  # torch.compile needs a C++ toolchain and minutes on a CPU
  rows = []
  for run in runs:
    try:
      rows.append(dict(run(), device=str(device), torch=torch.__version__))
    except Exception as error:  # one failing run (e.g. out of memory) must not hide the others
      rows.append(dict(error=f"{type(error).__name__}: {str(error)[:300]}"))
    if device.type == "cuda":
      torch.cuda.empty_cache()
    print(json.dumps(rows[-1]), flush=True)
    pathlib.Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
  main()
