"""The conv VAE trained on the importance-weighted bound with K = 5 samples (Burda et al. 2016).

The same networks as conv_fashion_mnist.py; only `model.objective` and `model.num_samples` differ, so the two
rows compare the objectives. Checkpoints are ranked by the validation IWAE-5 bound. Variants as there.

  jgen train configs/vae/iwae_fashion_mnist.py:full --workdir runs/iwae_fmnist
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full"))
  c = experiment(
      model=dict(name="vae.conv", latent_dim=32, channels=(32, 64), objective="iwae", num_samples=5),
      data=dict(name="fashion_mnist", batch_size=128, eval_batch_size=1000),
      optim=dict(lr=1e-3),
      train=dict(steps=40_000, log_every=500, eval_every=4_000, ckpt_every=4_000, keep=2, sample_num=64))
  if variant == "cpu":
    c.train.update(steps=8_000, log_every=100, eval_every=2_000, ckpt_every=1_000)
  if variant == "smoke":
    c.model.update(num_samples=3)
    c.data.update(batch_size=32, eval_batch_size=64)
    c.train.update(steps=40, log_every=5, eval_every=40, eval_batches=2, ckpt_every=20, sample_num=16)
  return c
