"""RealNVP on 2-D toy data (two moons by default): affine couplings alternating between the coordinates, MLP
networks; the exact density, in nats per point. Other toy sets: --set data.name=toy2d_8gaussians (or
toy2d_checkerboard, toy2d_circles, ...).

Variants:
  smoke  4 small couplings, a few steps, for tests;
  cpu    12 couplings of 2 x 128 units, batch 512, 10,000 steps: about 5 minutes on a shared 2-core CPU;
  full   16 couplings of 3 x 256 units, batch 1024, 50,000 steps.

  jgen train configs/flow/realnvp_toy2d.py:cpu --workdir runs/realnvp_moons_cpu
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full"))
  smoke = variant == "smoke"
  c = experiment(
      model=dict(name="flow.realnvp", num_scales=1, num_steps=4 if smoke else 16, features=16 if smoke else 256,
                 num_blocks=2 if smoke else 3, scale="tanh", actnorm=True),
      data=dict(name="toy2d_moons", batch_size=64 if smoke else 1024, eval_batch_size=256 if smoke else 2000),
      optim=dict(lr=3e-3 if smoke else 1e-3, grad_clip=10.0, warmup_steps=0 if smoke else 500,
                 decay="constant" if smoke else "cosine", decay_steps=20 if smoke else 50_000),
      train=dict(steps=20 if smoke else 50_000, log_every=5 if smoke else 500, eval_every=10 if smoke else 5_000,
                 ckpt_every=10 if smoke else 5_000, keep=2, eval_batches=2 if smoke else -1,
                 sample_num=256 if smoke else 2_000))
  if variant == "cpu":
    c.model.update(num_steps=12, features=128, num_blocks=2)
    c.data.update(batch_size=512)
    c.optim.update(decay_steps=10_000)
    c.train.update(steps=10_000, log_every=250, eval_every=1_000, ckpt_every=1_000)
  return c
