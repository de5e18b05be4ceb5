"""Classical latent-variable models: PPCA, factor analysis, Student-t PPCA, GMM, Bayesian GMM.

The math lives in one module per model as pure, jittable functions of arrays;
`linear_families` and `mixture_families` wrap them in registered `Family`
objects whose `train_step` runs one EM / variational update.
"""
