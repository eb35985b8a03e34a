"""Autoregressive generator on the embedded photos: a small class-conditional causal transformer trained on the
quickstart tokenizer's tokens, read left to right (raster order for a 2D grid). The same tokens, budget and sizes as
`maskgit_photos.py` (so the two compare directly) with `model_name = "autoregressive"` and no label smoothing; the
sampling section's temperature, top_k, top_p and guidance_scale apply, its masked-decoding fields are ignored.

  python -m jaxtok.main --config=experiments/quickstart.py --workdir=workdirs/quickstart
  python -m jaxtok.main --config=experiments/ar_photos.py --workdir=workdirs/ar_photos
  python -m jaxtok.sample --workdir=workdirs/ar_photos

Speculative decoding of such a model (a smaller draft trained the same way) is benchmarked by
`benchmarks/speculative.py --tokens=workdirs/ar_photos/tokens/train.npz`.
"""
from jaxtok.configs import common
from jaxtok.configs import models


def get_config(arg=None):
  arg = common.check_arg("ar_photos", arg, ("smoke",))
  model = models.autoregressive(num_classes=12, width=128, depth=3, num_heads=4, mlp_dim=256)
  config = common.generator("autoregressive", model, tokenizer_workdir="workdirs/quickstart", tokens=(8192, 512),
                            optimizer=common.adamw(learning_rate=1e-3, warmup_steps=50, weight_decay=0.03, beta2=0.96),
                            num_steps=800, batch_size=64, ema_decay=0.99, log_every_steps=25, eval_every_steps=400,
                            eval_batch_size=128, samples_per_class=8)
  config.train.label_smoothing = 0.0
  if arg == "smoke":
    common.generator_smoke(config, width=16, depth=1, num_heads=2, mlp_dim=32)
  return config
