"""Class-conditional GAN on Fashion-MNIST: the label embedded and concatenated to z in the generator, a
spectrally normalised projection discriminator (Miyato & Koyama 2018), the non-saturating loss; samples
drawn under the classes in turn; checkpoints ranked by the conditional FID-FMNIST of validation samples
(computed in the loop), with the share of samples the shipped classifier assigns to their requested class.

Variants:
  smoke  a few steps, for tests;
  cpu    the 2-core CPU run;
  full   the accelerator run.

  jgen train configs/gan/cgan_fashion_mnist.py:full --workdir runs/cgan_fmnist
  jgen sample --workdir runs/cgan_fmnist --per-class 8 --out per_class.png
"""

from jgen.config_schema import check_variant, experiment, optim_block


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full"))
  adam = optim_block(lr=2e-4, b1=0.5)
  c = experiment(
      model=dict(name="gan.cgan", latent_dim=64, gen_channels=(128, 64), disc_channels=(64, 128),
                 upsample="nearest", label_dim=32, spectral_norm=True),
      data=dict(name="fashion_mnist", batch_size=64, eval_batch_size=1000),
      optim=dict(gen=dict(adam, ema_decay=0.999), disc=dict(adam)),
      train=dict(steps=40_000, log_every=200, eval_every=2_000, eval_batches=2, ckpt_every=2_000, sample_num=100,
                 evals="fid:2000,pr:2000,classes:1000"))
  if variant == "cpu":
    c.model.update(gen_channels=(64, 32), disc_channels=(32, 64))
    c.train.update(steps=10_000, eval_every=1_000, ckpt_every=1_000)
  if variant == "smoke":
    c.model.update(gen_channels=(32, 16), disc_channels=(16, 32), label_dim=8)
    c.data.update(batch_size=32, eval_batch_size=64)
    c.optim.gen.update(lr=1e-3, ema_decay=0.0)
    c.optim.disc.lr = 1e-3
    c.train.update(steps=40, log_every=5, eval_every=40, eval_batches=1, ckpt_every=20, sample_num=20,
                   evals="fid:256,classes:256")
  return c
