"""posterior.nc written with the netCDF4 engine reads back identically with h5netcdf, netCDF4 and ArviZ.

Reference: the tree written is the reference; a round trip must give the same values, dtypes, coordinates
and attributes (xarray ``identical``), and the same as the file h5netcdf writes of that tree.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayes_rescue.outputs import trees


def _tree() -> xr.DataTree:
    """A DataTree with what a run's tree holds: float/int/bool draws over string coordinates, a string
    (object) variable like nutpie's divergence messages, and long JSON/unicode root attributes."""
    rng = np.random.default_rng(1)
    coords = {"chain": np.arange(2), "draw": np.arange(50), "estimand": ["mrs_0_2/mild_anterior", "mortality/all"]}
    posterior = xr.Dataset(
        {
            "rd": (("chain", "draw", "estimand"), rng.normal(size=(2, 50, 2))),
            "n_steps": (("chain", "draw"), rng.integers(1, 64, size=(2, 50))),
            "diverging": (("chain", "draw"), rng.random((2, 50)) < 0.1),
        },
        coords=coords,
    )
    stats = xr.Dataset(
        {"divergence_message": (("chain", "draw"), np.array([["", "diverged ∞"] * 25] * 2, dtype=object))},
        coords={"chain": coords["chain"], "draw": coords["draw"]},
    )
    tree = xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})
    tree.attrs = {"bayes_rescue_prior_spec": '{"name": "skeptical", "sd": 0.5296}' * 200, "note": "Chen – 2025 ±"}
    return tree


def _as_saved(tree: xr.DataTree) -> xr.DataTree:
    out = tree.copy()
    msg = out["sample_stats"]["divergence_message"]
    out["sample_stats"] = xr.DataTree(out["sample_stats"].to_dataset().assign(divergence_message=msg.astype(str)))
    return out


@pytest.mark.parametrize("reader", ["load_tree", "h5netcdf", "netcdf4", "arviz"])
def test_netcdf4_round_trip(tmp_path, reader):
    """Written by netCDF4, read by each reader: identical to the tree written and to h5netcdf's file."""
    pytest.importorskip("netCDF4")
    tree = _tree()
    path = trees.save_tree(tree, tmp_path / "posterior.nc", engine="netcdf4")
    if reader == "load_tree":
        back = trees.load_tree(path)
    elif reader == "arviz":
        import arviz as az

        back = az.from_netcdf(path).load()
    else:
        back = xr.open_datatree(path, engine=reader).load()
    h5 = trees.load_tree(trees.save_tree(tree, tmp_path / "h5.nc", engine="h5netcdf"))
    expected = _as_saved(tree)
    for group in ("posterior", "sample_stats"):
        got = back[group].to_dataset()
        assert got.identical(expected[group].to_dataset()), group
        assert got.identical(h5[group].to_dataset()), group
    assert back.attrs == tree.attrs


def test_default_engine_is_netcdf4_when_installed():
    """save_tree writes with netCDF4 when it is importable (the faster writer), else h5netcdf."""
    import importlib.util

    expected = "netcdf4" if importlib.util.find_spec("netCDF4") else "h5netcdf"
    assert trees.write_engine() == expected
