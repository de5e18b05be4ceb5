"""Energy-based model with an MLP energy on a 2-D toy distribution (two moons by default).

Persistent contrastive divergence: negatives from a replay buffer refined by
Langevin dynamics with noise sqrt(2 * step_size) (the sampler, not the book's
image settings), no gradient clipping, clamped to the box [-2.5, 2.5]^2 the
model lives on. The validation metric is the exact nll in nats: Z by quadrature
on a 256 x 256 grid over that box.

Variants:
  smoke  a tiny MLP, a few steps, for tests;
  cpu    128 wide, 3 layers, batch 128, 10,000 steps: a few minutes on a 2-core CPU;
  full   256 wide, 30,000 steps.

  jgen train configs/ebm/langevin_toy2d.py:cpu --workdir runs/ebm_moons_cpu
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full"))
  smoke = variant == "smoke"
  c = experiment(
      model=dict(name="ebm.langevin", hidden=256, depth=3, alpha=0.001, data_noise=0.0, buffer_size=8192,
                 reinit_prob=0.05, langevin_steps=60, step_size=0.001, noise=0.0447, grad_clip=0.0,
                 data_range=(-2.5, 2.5), sample_steps=2000, quadrature_resolution=256),
      data=dict(name="toy2d_moons", batch_size=128, eval_batch_size=2000),
      optim=dict(lr=1e-3, b1=0.0, b2=0.999, warmup_steps=200, decay="cosine", decay_steps=30_000),
      train=dict(steps=30_000, log_every=200, eval_every=2_000, ckpt_every=2_000, keep=2, sample_num=2_000))
  if variant == "cpu":
    c.model.update(hidden=128)
    c.optim.update(decay_steps=10_000)
    c.train.update(steps=10_000, log_every=100, eval_every=2_000, ckpt_every=2_000)
  if smoke:
    c.model.update(hidden=32, depth=2, buffer_size=1024, langevin_steps=10, sample_steps=20,
                   quadrature_resolution=64)
    c.data.update(batch_size=64, eval_batch_size=256)
    c.optim.update(warmup_steps=0, decay="constant", decay_steps=0)
    c.train.update(steps=30, log_every=5, eval_every=15, ckpt_every=15, eval_batches=2, sample_num=256)
  return c
