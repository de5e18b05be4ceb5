"""Autoregressive models: p(x) = prod_i p(x_i | x_<i), exact likelihoods, sampled one value at a time."""
