"""The GAN family: DCGAN, WGAN-GP and the class-conditional GAN (jgen.families.gan.family), their networks
and their losses / penalties."""

from jgen.families.gan.family import GAN, ConditionalGAN, DCGAN, WGANGP  # noqa: F401  (registers gan.*)
