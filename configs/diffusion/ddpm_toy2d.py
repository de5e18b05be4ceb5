"""DDPM with an MLP denoiser on a 2-D toy distribution (two moons by default).

Variants: "smoke" (a few steps, for tests) and "full".
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  smoke = check_variant(arg) == "smoke"
  return experiment(
      model=dict(name="ddpm.mlp", hidden=64 if smoke else 256, depth=2 if smoke else 3, schedule="linear",
                 num_steps=1000, prediction="eps",
                 variance="large",  # beta_t as the reverse variance: the better fixed choice for continuous data
                 sampler="ddim", sample_steps=50, bound_timesteps=50 if smoke else 0,
                 log_prob_timesteps=50 if smoke else 0),
      data=dict(name="toy2d_moons", batch_size=64 if smoke else 512, eval_batch_size=256 if smoke else 2000),
      optim=dict(lr=1e-3, grad_clip=1.0, warmup_steps=0 if smoke else 200, decay="constant" if smoke else "cosine",
                 decay_steps=20 if smoke else 20_000, ema_decay=0.999),
      train=dict(steps=20 if smoke else 20_000, log_every=5 if smoke else 200, eval_every=10 if smoke else 2_000,
                 ckpt_every=10 if smoke else 5_000, keep=2,
                 eval_batches=2 if smoke else -1,  # -1: the whole validation split
                 sample_num=256 if smoke else 2_000))
