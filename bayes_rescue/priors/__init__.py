"""Priors as data: the prior format and loader, the cited trial table, and the prior report."""
