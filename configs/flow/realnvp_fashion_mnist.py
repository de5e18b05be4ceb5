"""RealNVP on Fashion-MNIST 28x28: logit preprocessing, 2 scales (3 checkerboard couplings, squeeze, 3 channel
couplings, half factored out; then 4 checkerboard couplings), residual conv networks, tanh-bounded scales.

The exact density of uniformly dequantized pixels, every Jacobian counted (the logit's too):
bits/dim = nll / (784 ln 2) + 8, an upper bound on the 8-bit pixels' bits/dim.

Variants:
  smoke  tiny networks, a few steps, for tests;
  cpu    32 features, 1 residual block, batch 32, 6,000 steps: about 12 minutes on a 2-core CPU (9 steps/s);
  full   64 features, 4 residual blocks, batch 64, 100,000 steps: the accelerator run.

  jgen train configs/flow/realnvp_fashion_mnist.py:cpu --workdir runs/realnvp_fmnist_cpu
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg: str = "full"):
  variant = check_variant(arg, ("smoke", "cpu", "full"))
  smoke = variant == "smoke"
  c = experiment(
      model=dict(name="flow.realnvp", num_scales=2, num_steps=1 if smoke else 3, features=8 if smoke else 64,
                 num_blocks=1 if smoke else 4, scale="tanh", actnorm=True, preprocess="logit", logit_alpha=0.05),
      data=dict(name="fashion_mnist", batch_size=8 if smoke else 64, eval_batch_size=8 if smoke else 500),
      optim=dict(lr=2e-3 if smoke else 1e-3, grad_clip=100.0, warmup_steps=0 if smoke else 500,
                 decay="constant" if smoke else "cosine", decay_steps=20 if smoke else 100_000),
      train=dict(steps=20 if smoke else 100_000, log_every=5 if smoke else 500, eval_every=20 if smoke else 5_000,
                 ckpt_every=10 if smoke else 5_000, keep=2, eval_batches=2 if smoke else 4,
                 sample_num=4 if smoke else 64))
  if variant == "cpu":
    c.model.update(features=32, num_blocks=1)
    c.data.update(batch_size=32, eval_batch_size=250)
    c.optim.update(decay_steps=6_000, warmup_steps=200)
    c.train.update(steps=6_000, log_every=200, eval_every=1_000, ckpt_every=1_000, sample_num=16)
  return c
