"""Denoising diffusion probabilistic models: schedules, samplers, the variational bound, the family."""
