"""`make demo`: train the 2-D-latent VAE on the bundled 8x8 digits and draw what it learned.

Writes a sample grid, a reconstruction grid and the latent map (test images'
posterior means coloured by digit) as PNG, and prints the test negative ELBO.
"""

import argparse
import os
import sys

import jax
import numpy as np

from jgen import config as config_lib
from jgen.errors import UserError
from jgen.eval import plots, suite
from jgen.train import checkpoint, loop
from jgen.train.sampling import Sampler

DEMO_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "vae",
                           "conv_digits.py")


def run(workdir: str, variant: str = "full") -> dict:
  config = config_lib.load(f"{DEMO_CONFIG}:{variant}")
  loop.train(config, workdir)
  _, family, state = checkpoint.restore_for_inference(workdir)
  x, labels = suite.load_split(config.data.name, "test")
  # The test split is scored once, here; training selected on the validation split.
  nelbo = suite.nll_metrics(family, state, x)["nll"]["value"]
  mean, _ = jax.jit(family.encode)(state, x)
  recon = jax.jit(family.decode)(state, mean)
  samples = Sampler(family)(state, jax.random.key(0), 100)
  out = os.path.join(workdir, "figures")
  os.makedirs(out, exist_ok=True)
  paths = {
      "samples": plots.save_image_grid(np.asarray(samples), os.path.join(out, "samples.png"), ncol=10,
                                       title="VAE samples (pixel probabilities)"),
      "reconstructions": plots.save_reconstructions(x[:16], np.asarray(recon[:16]),
                                                    os.path.join(out, "reconstructions.png")),
      "latent map": plots.save_latent_map(np.asarray(mean), labels, os.path.join(out, "latent_map.png")),
  }
  print(f"\ntest negative ELBO: {nelbo:.2f} nats per image (Bernoulli likelihood on the 8x8 digits binarized "
        f"once with a fixed seed, {len(x)} test images)")
  for name, path in paths.items():
    print(f"{name:16s} {path}")
  return {"nelbo": nelbo, **paths}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--workdir", default="runs/demo")
  parser.add_argument("--variant", default="full")
  args = parser.parse_args(argv)
  try:
    run(args.workdir, args.variant)
  except UserError as e:
    print(f"jgen: error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
