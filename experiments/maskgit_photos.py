"""MaskGIT on the embedded photos: a small class-conditional masked token transformer trained on the quickstart
tokenizer's tokens (one class per photo; the held-out tokens are other crops of the same 9 training photos), minutes
on 2 CPU cores. Train the tokenizer first:

  python -m jaxtok.main --config=experiments/quickstart.py --workdir=workdirs/quickstart
  python -m jaxtok.main --config=experiments/maskgit_photos.py --workdir=workdirs/maskgit_photos
  python -m jaxtok.sample --workdir=workdirs/maskgit_photos

The tokenizer is the one trained in `tokenizer.workdir` (workdirs/quickstart), with the config recorded there;
`model.vocab_size` and `model.sequence_length` are 0: taken from its tokens, so a change of the quickstart tokenizer
needs no edit here. `:smoke` shrinks everything to a few steps (same tokenizer).

Samples with classifier-free guidance 1.5 (the model trains with class dropout 0.1). Measured on the committed
quickstart (seed 0, 800 steps, 2-core CPU box, README "Training a generator"): held-out loss 3.71, token TV 0.510
against the training-data floor 0.502, and a token classifier assigns 91.7% of the samples to their class against
76.8% of real held-out crops; without guidance TV 0.483 and 72.2%, at 3 TV 0.578 and 91.7%, at 5 TV 0.651 and 97.2%.
"""
from jaxtok.configs import common
from jaxtok.configs import models


def get_config(arg=None):
  arg = common.check_arg("maskgit_photos", arg, ("smoke",))
  model = models.maskgit(num_classes=12, width=128, depth=3, num_heads=4, mlp_dim=256, dropout_rate=0.0)  # 12 photos
  config = common.generator("maskgit", model, tokenizer_workdir="workdirs/quickstart", tokens=(8192, 512),
                            optimizer=common.adamw(learning_rate=1e-3, warmup_steps=50, weight_decay=0.03, beta2=0.96),
                            num_steps=800, batch_size=64, ema_decay=0.99, log_every_steps=25, eval_every_steps=400,
                            eval_batch_size=128, samples_per_class=8,
                            guidance_scale=1.5)  # classifier-free guidance: see the docstring
  if arg == "smoke":
    common.generator_smoke(config, width=16, depth=1, num_heads=2, mlp_dim=32)
  return config
