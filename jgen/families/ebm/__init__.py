"""Energy-based models: p(x) = exp(-E(x)) / Z with Z intractable, trained by contrastive divergence on Langevin samples."""
