"""Energy-based model on Fashion-MNIST: a small SiLU CNN energy, contrastive divergence on Langevin samples
from a replay buffer, with the book's settings (Foster, Generative Deep Learning, ch. 7): images in [-1, 1],
60 Langevin steps of size 10 with noise 0.005 and gradients clipped to +-0.03, buffer of 8,192, 5% restarts
from noise, alpha = 0.1, Adam lr 1e-4 with b1 = 0.

Variants:
  smoke  a tiny CNN, a few steps, for tests;
  cpu    the book's network and sampler, batch 64, lr 5e-4, 3,000 steps: 2.5 steps/s (20 minutes) on a 2-core
         CPU alone, 49 minutes on a shared one; FID-FMNIST on 1,000 samples (1,000-step chains from noise) at
         steps 1,500 and 3,000;
  full   the book's network and sampler, batch 128, 28,000 steps (60 epochs), FID-FMNIST on 2,000 samples
         ranks checkpoints;
  igebm  IGEBM-like settings (Du & Mordatch 2019): spectral norm, images in [0, 1], alpha = 1, gradients
         clipped to +-0.01, a buffer of 10,240; the `full` schedule.

  jgen train configs/ebm/langevin_fashion_mnist.py:cpu --workdir runs/ebm_fmnist_cpu
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full", "igebm"))
  c = experiment(
      model=dict(name="ebm.langevin", channels=(16, 32, 64, 64), hidden=64, spectral_norm=False, alpha=0.1,
                 data_noise=0.005, buffer_size=8192, reinit_prob=0.05, langevin_steps=60, step_size=10.0,
                 noise=0.005, grad_clip=0.03, data_range=(-1.0, 1.0), sample_steps=1000, sample_init="noise"),
      data=dict(name="fashion_mnist", batch_size=128, eval_batch_size=500),
      optim=dict(lr=1e-4, b1=0.0, b2=0.999),
      train=dict(steps=28_000, log_every=100, eval_every=2_000, ckpt_every=2_000, keep=2, eval_batches=4,
                 sample_num=64, evals="fid:2000"))
  if variant == "igebm":
    c.model.update(spectral_norm=True, data_range=(0.0, 1.0), alpha=1.0, grad_clip=0.01, buffer_size=10_240)
  if variant == "cpu":
    c.data.update(batch_size=64)
    c.optim.update(lr=5e-4)  # 3,000 steps instead of 28,000: a larger step than the book's 1e-4
    c.train.update(steps=3_000, log_every=50, eval_every=1_500, ckpt_every=500, evals="fid:1000")
  if variant == "smoke":
    c.model.update(channels=(8, 16), hidden=16, buffer_size=256, langevin_steps=10, sample_steps=10)
    c.data.update(batch_size=16, eval_batch_size=64)
    c.optim.update(lr=1e-3)  # a few steps must move the energies
    c.train.update(steps=30, log_every=5, eval_every=15, ckpt_every=15, eval_batches=2, sample_num=16, evals="")
  return c
