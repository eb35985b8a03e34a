"""The MaskGIT-VQGAN 2D baseline on the embedded photos, CPU-sized: 64x64 crops -> an 8x8 grid (f=8) of FSQ tokens with
32 codes: 64 tokens x 5 bits = 320 bits per image, equal to experiments/titok_photos.py's 32 tokens x 10 bits.

  python -m jaxtok.main --config=experiments/vqgan_photos.py --workdir=workdirs/vqgan_photos

Arguments: "" the baseline; "smoke" a few tiny steps.

Measured (seed 0, pinned photos protocol, EMA weights, 1000 steps of batch 32, `benchmarks/quality_cpu.py
--only=vqgan_photos`; 891 s on the shared 2-core box under a load of ~7-10): 16.37 dB eval PSNR against the
mean-colour baseline's 16.62 dB, codebook usage 100%; step 500: 15.94 dB. Edges and shapes show, colours are off
(pinkish) with blotches: below the baseline at this budget.
"""
from jaxtok.configs import common
from jaxtok.configs import models


def get_config(arg=None):
  arg = common.check_arg("vqgan_photos", arg, ("smoke",))
  model = models.vqgan(base_channels=16, channel_multipliers=(1, 2, 2, 4), num_res_blocks=1, latent_dim=2,
                       quantizer={"name": "fsq", "levels": (8, 4)})
  config = common.tokenizer("vqgan", model, data=common.photos_data(image_size=64, crop_fractions=(0.15, 0.5)),
                            optimizer=common.adamw(learning_rate=1e-3, warmup_steps=100), num_steps=1000,
                            log_every_steps=50, eval_every_steps=500)
  if arg == "smoke":
    config.model.base_channels = 8
    config.model.channel_multipliers = (1, 2)
    config.data.image_size = 32
    common.tokenizer_smoke(config, num_steps=4, batch_size=4, checkpoint_every_steps=4)
  return config
