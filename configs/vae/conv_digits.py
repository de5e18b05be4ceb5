"""Conv VAE with a 2-D latent on scikit-learn's bundled 8x8 digits: the `make demo` experiment.

Bernoulli likelihood on dynamically binarized images; needs no download.
  jgen train configs/vae/conv_digits.py:full --workdir runs/vae_digits
"""

import ml_collections


def get_config(arg: str = "full") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.model = dict(name="vae.conv", latent_dim=2, channels=(32, 64), beta=1.0)
  c.data = dict(name="digits", batch_size=64, eval_batch_size=300, source_dir="")
  c.optim = dict(name="adam", lr=2e-3, b1=0.9, b2=0.999, grad_clip=0.0, warmup_steps=0, decay="constant",
                 decay_steps=0)
  c.train = dict(steps=3000, seed=0, log_every=100, eval_every=1000, eval_batches=-1, ckpt_every=1000, keep=3,
                 sample_num=100)
  c.mesh = dict(data=-1, fsdp=1)
  if arg == "smoke":
    c.data.batch_size = 32
    c.train.update(steps=60, log_every=10, eval_every=60, ckpt_every=30, sample_num=16)
  elif arg != "full":
    raise ValueError(f"unknown variant {arg!r}: use smoke or full")
  return c
