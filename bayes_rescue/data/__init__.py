"""Data: the counts table (loading, validation, the bundled cohort) and the check of the source's P values."""
