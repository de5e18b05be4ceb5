"""DDPM (Ho et al.) on Fashion-MNIST: a U-Net on 28x28x1, T = 1000 linear schedule,
epsilon prediction, label-conditional with classifier-free guidance.

Variants:
  smoke  a tiny U-Net, a few steps, for tests;
  cpu    a U-Net sized for a 2-core CPU (32 channels, one residual block per level,
         attention only at 7x7, float32, batch 64, 3,000 steps: about an hour there);
         the run experiments/diffusion reports when no accelerator is at hand;
  full   the reproduction for an accelerator (64 channels, bfloat16 compute with float32
         parameters, 150,000 steps).
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full"))
  smoke = variant == "smoke"
  c = experiment(
      model=dict(
          name="ddpm.unet", channels=16 if smoke else 64, channel_mults=(1, 2) if smoke else (1, 2, 2),
          num_res_blocks=1 if smoke else 2,
          attention_levels=(1,),  # level 1 is 14x14 in the full model: attention where it is cheap
          num_heads=1 if smoke else 4, dropout=0.1, schedule="linear", num_steps=1000, prediction="eps",
          variance="small", clip_x0=True, label_conditional=True, p_uncond=0.1, guidance=2.0, sampler="ddim",
          sample_steps=5 if smoke else 50, ddim_eta=0.0,
          # Training-time evals estimate the bound from 100 stratified timesteps (unbiased, 10x cheaper);
          # `jgen evaluate` (log_prob) sums all T terms of the bound.
          bound_timesteps=4 if smoke else 100, log_prob_timesteps=4 if smoke else 0,
          dtype="float32" if smoke else "bfloat16"),
      data=dict(name="fashion_mnist", batch_size=8 if smoke else 128, eval_batch_size=8 if smoke else 500),
      optim=dict(lr=1e-3 if smoke else 2e-4, grad_clip=1.0, warmup_steps=0 if smoke else 5_000, ema_decay=0.9999),
      # Training-time evals see 2000 validation images; `jgen evaluate` reports the whole test split.
      train=dict(steps=20 if smoke else 150_000, log_every=5 if smoke else 500, eval_every=10 if smoke else 10_000,
                 ckpt_every=10 if smoke else 10_000, keep=2, eval_batches=2 if smoke else 4,
                 sample_num=8 if smoke else 100))
  if variant == "cpu":
    c.model.update(channels=32, num_res_blocks=1, attention_levels=(2,), num_heads=2, dtype="float32",
                   bound_timesteps=20, log_prob_timesteps=100)
    c.data.update(batch_size=64, eval_batch_size=250)
    c.optim.update(lr=1e-3, warmup_steps=200, decay="cosine", decay_steps=3_000, ema_decay=0.999)
    c.train.update(steps=3_000, log_every=100, eval_every=1_000, ckpt_every=500, eval_batches=2, sample_num=100)
  return c
