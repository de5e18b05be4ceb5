"""Classical latent-variable models: PPCA, factor analysis, Student-t PPCA, GMM, Bayesian GMM.

The math lives in one module per model as pure, jittable functions of arrays;
`linear_families` and `mixture_families` wrap them in registered `Family`
objects whose `train_step` runs one EM / variational update.

EM iterations call LAPACK (Cholesky factors, triangular solves) between passes over the data: importing
the classical models runs XLA:CPU's LAPACK on one thread (`jgen.lapack_threads`), so its spinning workers do
not take cores from XLA's during the pass.
"""

from jgen import lapack_threads

lapack_threads.use_one_thread()
