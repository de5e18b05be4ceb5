"""Normalizing flows: x = f(z) invertible, log p(x) = log p(z) + log |det dz/dx|, exact; RealNVP and Glow."""
