"""Which losses beyond reconstruction + quantizer a training run adds, built from a config's `losses` section."""
import dataclasses
from typing import Any

import flax.linen as nn

from jaxtok.losses import adversarial
from jaxtok.losses import perceptual

FIELDS = {
    "perceptual_weight": "float: weight of the LPIPS-style perceptual loss (0 = off)",
    "perceptual_weights_path": "str: .npz of the VGG-like feature net and linear weights (jaxtok.losses.perceptual)",
    "adversarial_weight": "float: weight of the PatchGAN hinge loss, times the adaptive weight (0 = off)",
    "adversarial_start_step": "int: step from which the discriminator trains and the adversarial loss applies",
    "discriminator_channels": "int: channels of the discriminator's first layer",
    "discriminator_layers": "int: stride-2 layers of the discriminator",
}


@dataclasses.dataclass(frozen=True)
class LossSettings:
  """Attributes:
    perceptual_weight: weight of the LPIPS term (0 = off).
    perceptual_params: params of `perceptual.lpips` (None when off).
    perceptual_stages: channels per stage of the feature net those params belong to.
    adversarial_weight: weight of the generator's hinge loss (0 = off), multiplied by the adaptive weight.
    adversarial_start_step: first step of discriminator training and of the adversarial term.
    discriminator: the PatchDiscriminator (None when off).
  """

  perceptual_weight: float = 0.0
  perceptual_params: Any = None
  perceptual_stages: tuple[tuple[int, ...], ...] = perceptual.VGG16_STAGES
  adversarial_weight: float = 0.0
  adversarial_start_step: int = 0
  discriminator: nn.Module | None = None

  def __post_init__(self):
    if self.perceptual_weight < 0 or self.adversarial_weight < 0 or self.adversarial_start_step < 0:
      raise ValueError(f"Loss weights and the start step must be >= 0, got perceptual_weight="
                       f"{self.perceptual_weight}, adversarial_weight={self.adversarial_weight}, "
                       f"adversarial_start_step={self.adversarial_start_step}.")
    if self.perceptual_weight > 0 and self.perceptual_params is None:
      raise ValueError("perceptual_weight > 0 needs perceptual_params (a weights file).")
    if self.adversarial_weight > 0 and self.discriminator is None:
      raise ValueError("adversarial_weight > 0 needs a discriminator.")


def from_config(losses_config: Any) -> LossSettings:
  """A config's `losses` section (fields in FIELDS) -> LossSettings, reading the perceptual weights file if used."""
  params = None
  if losses_config.perceptual_weight > 0:
    if not losses_config.perceptual_weights_path:
      raise ValueError("losses.perceptual_weight > 0 needs losses.perceptual_weights_path (an .npz file).")
    params = perceptual.load_perceptual_params(losses_config.perceptual_weights_path)
  discriminator = None
  if losses_config.adversarial_weight > 0:
    discriminator = adversarial.PatchDiscriminator(losses_config.discriminator_channels,
                                                   losses_config.discriminator_layers)
  return LossSettings(perceptual_weight=losses_config.perceptual_weight, perceptual_params=params,
                      adversarial_weight=losses_config.adversarial_weight,
                      adversarial_start_step=losses_config.adversarial_start_step, discriminator=discriminator)
