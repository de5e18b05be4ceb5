"""DCGAN on Fashion-MNIST with the non-saturating loss.

  jgen train configs/gan/dcgan_fashion_mnist.py:full --workdir runs/dcgan_fmnist
"""

import ml_collections


def get_config(arg: str = "full") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.model = dict(name="gan.dcgan", latent_dim=64, gen_channels=(64, 32), disc_channels=(32, 64))
  c.data = dict(name="fashion_mnist", batch_size=64, eval_batch_size=1000, source_dir="")
  adam = dict(name="adam", lr=2e-4, b1=0.5, b2=0.999, grad_clip=0.0, warmup_steps=0, decay="constant", decay_steps=0)
  c.optim = dict(gen=dict(adam), disc=dict(adam))
  c.train = dict(steps=6000, seed=0, log_every=100, eval_every=1000, eval_batches=2, ckpt_every=500, keep=3,
                 sample_num=64)
  c.mesh = dict(data=-1, fsdp=1)
  if arg == "smoke":
    c.model.update(gen_channels=(32, 16), disc_channels=(16, 32))
    c.data.batch_size = 32
    c.optim.gen.lr = 1e-3
    c.optim.disc.lr = 1e-3
    c.train.update(steps=40, log_every=5, eval_every=40, eval_batches=1, ckpt_every=20, sample_num=16)
  elif arg != "full":
    raise ValueError(f"unknown variant {arg!r}: use smoke or full")
  return c
