"""Training losses: pixel reconstruction, LPIPS-style perceptual, PatchGAN hinge, multi-resolution STFT."""
from jaxtok.losses.adversarial import PatchDiscriminator
from jaxtok.losses.adversarial import adaptive_generator_weight
from jaxtok.losses.adversarial import generator_adversarial_loss
from jaxtok.losses.adversarial import hinge_discriminator_loss
from jaxtok.losses.perceptual import load_perceptual_params
from jaxtok.losses.perceptual import lpips
from jaxtok.losses.reconstruction import multi_resolution_stft_loss
from jaxtok.losses.reconstruction import reconstruction_loss
