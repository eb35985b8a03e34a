"""Training losses: pixel reconstruction, LPIPS-style perceptual, PatchGAN hinge, multi-resolution STFT.

`reconstruction_loss(images, reconstructions, kind)` ("l1" / "l2"), `lpips` with `load_perceptual_params(path)`
(weights from an `.npz`), `PatchDiscriminator` with `hinge_discriminator_loss`, `generator_adversarial_loss` and VQGAN's
`adaptive_generator_weight`, and `multi_resolution_stft_loss` for audio.
"""
from jaxtok.losses.adversarial import PatchDiscriminator
from jaxtok.losses.adversarial import adaptive_generator_weight
from jaxtok.losses.adversarial import generator_adversarial_loss
from jaxtok.losses.adversarial import hinge_discriminator_loss
from jaxtok.losses.perceptual import load_perceptual_params
from jaxtok.losses.perceptual import lpips
from jaxtok.losses.reconstruction import multi_resolution_stft_loss
from jaxtok.losses.reconstruction import reconstruction_loss

__all__ = ["PatchDiscriminator", "adaptive_generator_weight", "generator_adversarial_loss", "hinge_discriminator_loss",
           "load_perceptual_params", "lpips", "multi_resolution_stft_loss", "reconstruction_loss"]
