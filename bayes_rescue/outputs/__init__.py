"""Outputs of a run: tables, DataTrees, figures, exports, the report, and the run folder itself."""
