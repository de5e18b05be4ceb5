"""Bayesian Gaussian mixture on the 8-Gaussians toy with room for 20 components.

A stick-breaking (Dirichlet-process) prior on the weights and a Normal-Wishart prior
on each component; the components the data do not need are pruned to weight ~0.
EM-style variational updates need no optimizer, so there is no optim block.
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg="full"):
  smoke = check_variant(arg) == "smoke"
  return experiment(
      model=dict(name="bgmm", max_components=20, dirichlet_process=True,
                 weight_concentration=0.0,  # 0 means 1 / max_components
                 reg_covar=0.0, lloyd_iters=10, init="kmeans"),
      # Classical fits see the whole training set per step.
      data=dict(name="toy2d_8gaussians", batch_size=512 if smoke else 10000, eval_batch_size=512 if smoke else 10000),
      train=dict(steps=3 if smoke else 200, log_every=1, eval_every=3 if smoke else 100,
                 ckpt_every=3 if smoke else 100, keep=2, sample_num=512 if smoke else 2000))
