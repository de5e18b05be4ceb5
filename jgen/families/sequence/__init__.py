"""Sequence models of tokens: a stacked LSTM and a causal transformer, exact likelihood, prompted sampling."""
