"""Inference: compiling for nutpie, sampling, the diagnostics gate, derived quantities, power-scaling."""
