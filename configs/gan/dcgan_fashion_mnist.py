"""DCGAN on Fashion-MNIST with the non-saturating loss; checkpoints ranked by FID-FMNIST.

  jgen train configs/gan/dcgan_fashion_mnist.py:full --workdir runs/dcgan_fmnist
"""

from jgen.config_schema import check_variant, experiment, optim_block


def get_config(arg: str = "full"):
  smoke = check_variant(arg) == "smoke"
  adam = optim_block(lr=2e-4, b1=0.5)
  c = experiment(
      model=dict(name="gan.dcgan", latent_dim=64, gen_channels=(64, 32), disc_channels=(32, 64)),
      data=dict(name="fashion_mnist", batch_size=64, eval_batch_size=1000),
      optim=dict(gen=dict(adam), disc=dict(adam)),
      # FID-FMNIST on 2,000 samples at every eval step is the main metric (best checkpoint).
      train=dict(steps=6000, log_every=100, eval_every=1000, eval_batches=2, ckpt_every=500, sample_num=64,
                 evals="fid:2000"))
  if smoke:
    c.model.update(gen_channels=(32, 16), disc_channels=(16, 32))
    c.data.batch_size = 32
    c.optim.gen.lr = 1e-3
    c.optim.disc.lr = 1e-3
    c.train.update(steps=40, log_every=5, eval_every=40, eval_batches=1, ckpt_every=20, sample_num=16,
                   evals="fid:256")
  return c
