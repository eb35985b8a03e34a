"""TiTok on the embedded photos, CPU-sized: 64x64 crops -> 32 tokens of an FSQ with 1024 codes (320 bits per image).

  python -m jaxtok.main --config=experiments/titok_photos.py --workdir=workdirs/titok_photos
  python -m jaxtok.main --config=experiments/titok_photos.py:flex --workdir=workdirs/titok_photos_flex
  # the paper's two stages, on the MaskGIT-VQGAN of vqgan_photos.py:
  python -m jaxtok.main --config=experiments/vqgan_photos.py --workdir=workdirs/vqgan_photos
  python -m jaxtok.main --config=experiments/titok_photos.py:stage1 --workdir=workdirs/titok_photos_stage1
  python -m jaxtok.main --config=experiments/titok_photos.py:stage2 --workdir=workdirs/titok_photos_stage2

Arguments: "" TiTok (full attention, fixed 32 tokens); "flex" FlexTok's nested dropout with causal latent
attention (reconstructs from any prefix 1..32); "tail_drop" One-D-Piece tail token drop; "stage1" learns the
VQGAN's codes (`train.proxy_codes_from`), "stage2" starts from stage 1 and decodes through the VQGAN's decoder
(`train.params_from`, `train.pixel_decoder_from`), both with the workdirs above; "smoke" a few tiny steps.
Its 2D baseline at equal bits per image is experiments/vqgan_photos.py (64 tokens x 5 bits).

Official TiTok layout (class token, ln_pre, exact GELU, LayerNorm eps 1e-5, legacy token projection) with two of
jaxtok's departures: `patch_position = "sincos"` (official: learned) and `input_embedding_scale = 0.1`.
Measured (seed 0, pinned photos protocol, EMA weights, 1000 steps of batch 32, `benchmarks/quality_cpu.py`, alone on
the 2-core box):
- TiTok (220 s): 17.98 dB eval PSNR against the mean-colour baseline's 16.62 dB (+1.36 dB), codebook usage 56%;
  step 500: 16.93 dB. 2000 steps (an earlier data order): 19.03 dB. Colours and coarse layout right, flat at the 8x8
  patch scale.
- vqgan_photos at the same bits and steps: 20.55 dB (524 s). The 2D baseline wins here, and no probe closes the gap
  (`benchmarks/quality_cpu_probes.md`, fourth round): ViT depth 4 18.31 dB, width 256 18.56 dB; 4000 steps 19.37 dB;
  `:stage1` 15.63 dB (29% of the VQGAN's codes right), then `:stage2` 18.16 dB; the official conv pixel decoder
  trained in one stage 16.58 dB (16.69 dB started from the VQGAN's).
- What holds it (seventh round, on a box where the default gives 18.23 dB): neither bits (nearly continuous tokens,
  768 bits: 18.57 dB; 64 tokens x 5 bits: 18.34 dB) nor size (width 256, depth 4, 5x the compute: 18.42 dB) nor the
  learning rate (2e-3: 18.05 dB, 4e-3: 17.56 dB). Steps do: 8000 of them (1781 s) reach 20.26 dB, +3.64 dB over
  the baseline but still 0.29 dB under the VQGAN at 1000, levelling off (+0.05 dB in the last 1000). Width 256 for
  3000 steps (eighth round, 1742 s): 19.81 dB.
- `:flex` (466 s on a slower box, where the fixed TiTok gives 18.11 dB): PSNR from the first k = 1, 2, 4, 8, 16, 32
  tokens is 15.41, 15.82, 16.57, 17.51, 18.06, 18.12 dB, codebook usage 16%. Seeds 1 and 2 give 18.28 and 18.51 dB
  at k = 32 (fixed model 17.89 and 18.24). It is non-decreasing and at or above the fixed model at k = 32 at every
  seed; k = 4 is 0.05 dB under the baseline at seed 0 (above it at seeds 1 and 2). Its prefix lengths are FlexTok's
  `uniform_pow2` mode, k uniform in 1..32 rounded up to a power of two. FlexTok's `pow2` mode (each power of two
  equally likely) gave 16.33, 17.83 and 17.70 dB at seeds 0-2.
- `:tail_drop` (248 s): 14.79, 15.08, 16.14, 16.26, 16.41, 16.64 dB, usage 46%. It is above the baseline only at
  k = 32.
"""
from jaxtok.configs import common
from jaxtok.configs import models


def get_config(arg=None):
  arg = common.check_arg("titok_photos", arg, ("flex", "tail_drop", "stage1", "stage2", "smoke"))
  model = models.titok(image_size=64, patch_size=8, token_dim=4, encoder_size="tiny", decoder_size="tiny",
                       quantizer={"name": "fsq", "levels": (8, 8, 8, 2)}, decoder_output="pixels",
                       patch_position="sincos", input_embedding_scale=0.1,  # jaxtok's departures, see the docstring
                       legacy_token_projection=arg != "flex",  # the legacy reshape mixes tokens: causal needs it off
                       latent_attention="causal" if arg == "flex" else "full",
                       length_distribution="uniform_powers_of_two" if arg == "flex" else "powers_of_two",
                       token_dropout={"flex": "nested_dropout", "tail_drop": "tail_drop"}.get(arg, "none"))
  config = common.tokenizer("titok", model, data=common.photos_data(image_size=64, crop_fractions=(0.15, 0.5)),
                            optimizer=common.adamw(learning_rate=1e-3, warmup_steps=100), num_steps=1000,
                            log_every_steps=50, eval_every_steps=500)
  if arg in ("stage1", "stage2"):
    two_stage(config, arg)
  if arg == "smoke":
    config.model.image_size = config.data.image_size = 32
    config.model.encoder_size = config.model.decoder_size = "micro"
    config.model.num_latent_tokens = 8
    config.model.token_dropout = "nested_dropout"
    config.model.latent_attention = "causal"
    config.model.legacy_token_projection = False
    common.tokenizer_smoke(config, num_steps=4, batch_size=4, checkpoint_every_steps=4)
  return config


def two_stage(config, stage):
  """TiTok's two-stage recipe on vqgan_photos' MaskGIT-VQGAN (workdirs/vqgan_photos): stage 1 learns its 32 codes per
  8x8 patch, stage 2 starts from stage 1 (workdirs/titok_photos_stage1) and decodes through the VQGAN's decoder."""
  config.model.proxy_codebook_size = 32
  if stage == "stage1":
    config.model.decoder_output = "proxy_codes"
    config.train.proxy_codes_from = "workdirs/vqgan_photos"
    return
  config.model.update(dict(decoder_output="proxy_codes_to_pixels", pixel_code_dim=2, pixel_decoder_channels=16,
                           pixel_decoder_multipliers=(1, 2, 2, 4), pixel_decoder_res_blocks=1,
                           pixel_decoder_norm_groups=4))  # vqgan_photos' decoder
  config.train.params_from = "workdirs/titok_photos_stage1"
  config.train.pixel_decoder_from = "workdirs/vqgan_photos"
