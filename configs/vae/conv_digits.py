"""Conv VAE with a 2-D latent on scikit-learn's bundled 8x8 digits: the `make demo` experiment.

Bernoulli likelihood on dynamically binarized images; needs no download.

  jgen train configs/vae/conv_digits.py:full --workdir runs/vae_digits
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  smoke = check_variant(arg) == "smoke"
  c = experiment(
      model=dict(name="vae.conv", latent_dim=2, channels=(32, 64)),
      data=dict(name="digits", batch_size=64, eval_batch_size=300),
      optim=dict(lr=2e-3),
      train=dict(steps=3000, log_every=100, eval_every=1000, ckpt_every=1000, sample_num=100))
  if smoke:
    c.data.batch_size = 32
    c.train.update(steps=60, log_every=10, eval_every=60, ckpt_every=30, sample_num=16)
  return c
