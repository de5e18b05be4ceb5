"""WGAN-GP on Fashion-MNIST (Gulrajani et al. 2017): a layer-normalised critic, Wasserstein loss, gradient
penalty 10 on random interpolates, five critic updates per generator update (`train.batches_per_step = 5`:
one jitted step reads five batches), Adam(1e-4, b1 0.5, b2 0.9); checkpoints ranked by FID-FMNIST on validation
samples computed in the loop.

Variants:
  smoke  a few steps, for tests;
  cpu    the 2-core CPU run;
  full   the accelerator run.

  jgen train configs/gan/wgan_gp_fashion_mnist.py:full --workdir runs/wgan_gp_fmnist
"""

from jgen.config_schema import check_variant, experiment, optim_block


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full"))
  adam = optim_block(lr=1e-4, b1=0.5, b2=0.9)
  c = experiment(
      model=dict(name="gan.wgan_gp", latent_dim=64, gen_channels=(128, 64), disc_channels=(64, 128),
                 upsample="nearest"),
      data=dict(name="fashion_mnist", batch_size=64, eval_batch_size=1000),
      optim=dict(gen=dict(adam, ema_decay=0.999), disc=dict(adam)),
      train=dict(steps=40_000, batches_per_step=5, log_every=200, eval_every=2_000, eval_batches=2,
                 ckpt_every=2_000, sample_num=64, evals="fid:2000,pr:2000,classes:1000"))
  if variant == "cpu":
    c.model.update(gen_channels=(64, 32), disc_channels=(32, 64))
    c.optim.gen.lr = c.optim.disc.lr = 2e-4
    c.train.update(steps=3_000, eval_every=500, ckpt_every=500)
  if variant == "smoke":
    c.model.update(gen_channels=(32, 16), disc_channels=(16, 32))
    c.data.update(batch_size=16, eval_batch_size=64)
    c.optim.gen.update(lr=1e-3, ema_decay=0.0)
    c.optim.disc.lr = 1e-3
    c.train.update(steps=20, batches_per_step=2, log_every=5, eval_every=20, eval_batches=1, ckpt_every=10,
                   sample_num=16, evals="fid:256")
  return c
