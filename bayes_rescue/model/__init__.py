"""Model: the specification (counts + prior + structure), the estimands it reports, and the PyMC model."""
