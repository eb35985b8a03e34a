"""MaskGIT on the embedded photos: a small class-conditional masked token transformer trained on the quickstart
tokenizer's tokens (one class per photo; the held-out tokens are other crops of the same 9 training photos), minutes
on 2 CPU cores. Train the tokenizer first:

  python -m jaxtok.main --config=experiments/quickstart.py --workdir=workdirs/quickstart
  python -m jaxtok.main --config=experiments/maskgit_photos.py --workdir=workdirs/maskgit_photos
  python -m jaxtok.sample --workdir=workdirs/maskgit_photos

The tokenizer is the one trained in `tokenizer.workdir` (workdirs/quickstart), with the config recorded there;
`model.vocab_size` and `model.sequence_length` are 0: taken from its tokens, so a change of the quickstart tokenizer
needs no edit here. `:smoke` shrinks everything to a few steps (same tokenizer).
"""
from jaxtok.configs import common
from jaxtok.configs import models


def get_config(arg=None):
  arg = common.check_arg("maskgit_photos", arg, ("smoke",))
  model = models.maskgit(num_classes=12, width=128, depth=3, num_heads=4, mlp_dim=256, dropout_rate=0.0)  # 12 photos
  config = common.generator("maskgit", model, tokenizer_workdir="workdirs/quickstart", tokens=(8192, 512),
                            optimizer=common.adamw(learning_rate=1e-3, warmup_steps=50, weight_decay=0.03, beta2=0.96),
                            num_steps=800, batch_size=64, ema_decay=0.99, log_every_steps=25, eval_every_steps=400,
                            eval_batch_size=128, samples_per_class=8)
  if arg == "smoke":
    common.generator_smoke(config, width=16, depth=1, num_heads=2, mlp_dim=32)
  return config
