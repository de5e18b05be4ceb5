"""beta-VAE (beta = 4) with a linear KL warm-up on Fashion-MNIST: the conv VAE's networks, a heavier KL.

Its training objective, recon + beta * w(step) * KL, is not a bound on log p(x) for beta != 1; the reported
nll is the ELBO (beta = 1) of the same networks, which is. Variants as in conv_fashion_mnist.py.

  jgen train configs/vae/beta_vae_fashion_mnist.py:full --workdir runs/beta_vae_fmnist
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full"))
  c = experiment(
      model=dict(name="vae.conv", latent_dim=32, channels=(32, 64), beta=4.0, kl_warmup_steps=4_000),
      data=dict(name="fashion_mnist", batch_size=128, eval_batch_size=1000),
      optim=dict(lr=1e-3),
      train=dict(steps=40_000, log_every=500, eval_every=4_000, ckpt_every=4_000, keep=2, sample_num=64))
  if variant == "cpu":
    c.model.update(kl_warmup_steps=1_000)
    c.train.update(steps=8_000, log_every=100, eval_every=2_000, ckpt_every=1_000)
  if variant == "smoke":
    c.model.update(kl_warmup_steps=20)
    c.data.update(batch_size=32, eval_batch_size=64)
    c.train.update(steps=40, log_every=5, eval_every=40, eval_batches=2, ckpt_every=20, sample_num=16)
  return c
