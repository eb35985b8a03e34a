"""Quickstart: TiTok with 32 tokens on the embedded photos, a few minutes on 2 CPU cores.

  python -m jaxtok.main --config=experiments/quickstart.py --workdir=workdirs/quickstart

32x32 crops -> 16 patches of 8x8 -> 32 latent tokens of an FSQ with 1024 codes (10 bits per token, 320 bits per
image), ViT encoder and decoder of width 128 and depth 2, in the official TiTok layout (class token, ln_pre, exact
GELU, LayerNorm eps 1e-5, the legacy token projection) with the official non-legacy pixel head. Two departures from
the official model, both jaxtok's named options: `patch_position = "sincos"` (fixed 2D sine-cosine patch positions,
official: learned) and `input_embedding_scale = 0.1` (see `jaxtok/tokenizers/titok.py`). 4000 steps of batch 16: on
these 9 photos the step count, not the images seen, sets the pace (batch 16 for 2000 steps, the images of 1000 steps
of batch 32, gains 0.55 dB over them; see benchmarks/quality_cpu_probes.md). Figures: README, "Configs and what they
reach so far" (`benchmarks/quality_cpu.py --only=quickstart`). Its 2D baseline is experiments/conv_vq_photos.py.
`:smoke` shrinks it to a few steps.
`:flex` is the same model trained to decode any prefix of its tokens: causal latent attention and One-D-Piece's tail
drop (half the examples keep only their first k tokens, k uniform in 1..32), without the legacy token projection
(which mixes tokens), for 2000 steps (the test suite trains it at full settings in colabs/flexible_tokens.ipynb, and
4000 steps would put the suite past its 20 minutes; 4000 steps reach 20.65 dB from all 32 tokens, see
benchmarks/quality_cpu_probes.md). `:flex_smoke` shrinks it.
"""
from jaxtok.configs import common
from jaxtok.configs import models


def get_config(arg=None):
  arg = common.check_arg("quickstart", arg, ("smoke", "flex", "flex_smoke"))
  model = models.titok(image_size=32, patch_size=8, token_dim=4, encoder_size="tiny", decoder_size="tiny",
                       quantizer={"name": "fsq", "levels": (8, 8, 8, 2)}, decoder_output="pixels",
                       patch_position="sincos", input_embedding_scale=0.1)
  data = common.photos_data(image_size=32, crop_fractions=(0.1, 0.4), batch_size=16)  # steps, not images, set the pace
  config = common.tokenizer("titok", model, data=data, optimizer=common.adamw(learning_rate=1e-3, warmup_steps=50),
                            num_steps=4000, log_every_steps=100, eval_every_steps=1000)
  if arg in ("flex", "flex_smoke"):
    config.model.latent_attention = "causal"
    config.model.token_dropout = "tail_drop"
    config.model.legacy_token_projection = False  # the legacy reshape mixes tokens: causal latents need it off
    config.train.num_steps = 2000  # half the quickstart's: flexible_tokens.ipynb trains it as is in the test suite
  if arg in ("smoke", "flex_smoke"):
    config.model.encoder_size = config.model.decoder_size = "micro"
    config.model.num_latent_tokens = 8
    common.tokenizer_smoke(config, num_steps=6, batch_size=8, checkpoint_every_steps=2)
  return config
