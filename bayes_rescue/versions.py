"""Versions of Python and the packages that determine the numbers (recorded in every run)."""

from __future__ import annotations

import functools
import platform
from importlib import metadata


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that determine the numbers (looked up once per process)."""
    return dict(_package_versions())


@functools.cache
def _package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("bayes_rescue", "pymc", "pytensor", "nutpie", "arviz", "xarray", "numpy", "scipy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
