"""Student-t robust PPCA on 2-D toy data with injected gross outliers.

The data layer is asked for 5 % outliers (data.outlier_fraction) drawn uniformly
in a box data.outlier_scale times the data scale; EM then down-weights them.
"""

from jgen.config_schema import check_variant, experiment


def get_config(arg="full"):
  smoke = check_variant(arg) == "smoke"
  return experiment(
      model=dict(name="robust_ppca", latent_dim=1, nu=5.0, learn_nu=True),
      data=dict(name="toy2d_moons", outlier_fraction=0.05, outlier_scale=10.0,
                batch_size=4096 if smoke else 10000, eval_batch_size=512 if smoke else 10000),
      train=dict(steps=8 if smoke else 50, log_every=1, eval_every=8 if smoke else 25,
                 ckpt_every=8 if smoke else 25, keep=2, sample_num=512 if smoke else 2000))
