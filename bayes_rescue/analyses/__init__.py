"""Analyses beside the main fit: prior sensitivity and tipping points, MAP priors, validation (SBC)."""
