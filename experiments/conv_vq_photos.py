"""A small convolutional VQ autoencoder on the embedded photos, minutes on 2 CPU cores: the fast 2D baseline of the
quickstart's TiTok (and the tokenizer the runner's tests train).

  python -m jaxtok.main --config=experiments/conv_vq_photos.py --workdir=workdirs/conv_vq_photos

32x32 crops -> an 8x8 grid of tokens from a 512-code VQ (9 bits per token, 576 bits per image).
`:smoke` shrinks it to a few steps for tests.
"""
from jaxtok.configs import common
from jaxtok.configs import models


def get_config(arg=None):
  arg = common.check_arg("conv_vq_photos", arg, ("smoke",))
  model = models.conv_vq_autoencoder(channels=(32, 64), quantizer={"name": "vq", "codebook_size": 512,
                                                                   "distance": "l2", "commitment_cost": 0.25})
  config = common.tokenizer("conv_vq_autoencoder", model,
                            data=common.photos_data(image_size=32, crop_fractions=(0.1, 0.4)),
                            optimizer=common.adamw(learning_rate=2e-3, warmup_steps=50), num_steps=600,
                            log_every_steps=25, eval_every_steps=300)
  if arg == "smoke":
    config.model.channels = (8, 16)
    config.model.latent_dim = 8
    config.model.quantizer.codebook_size = 16
    common.tokenizer_smoke(config, num_steps=6, batch_size=8, checkpoint_every_steps=2)
  return config
