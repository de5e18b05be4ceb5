"""jgen: generative models across the whole taxonomy, in JAX and Flax NNX."""

__version__ = "0.1.0"
