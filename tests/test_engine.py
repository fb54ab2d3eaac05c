"""The sampling engine (bayes_rescue.inference.engine) behind its backend switch, and the diagnostics gate on
every sampled parameter.

References: the public path (``BAYES_RESCUE_BACKEND=public``: ``nutpie.compile_pymc_model``,
``CompiledPyMCModel.with_data``, ``nutpie.sample``'s DataTree) is the reference of the backend path: the same
compiled log density and start give the same draws bit for bit for the same seed (not only within Monte Carlo
error). The gate tests use synthetic draws whose effective sample sizes follow from their construction:
independent normal draws (ESS about the number of draws, 4000) and an AR(1) chain with coefficient 0.95
(ESS about 4000 (1 - 0.95) / (1 + 0.95), about 100; Geyer 1992)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import xarray as xr

from bayes_rescue.data.counts import load_counts
from bayes_rescue.inference import compile as compile_module
from bayes_rescue.inference import engine
from bayes_rescue.inference.diagnostics import ESS_MIN, diagnose_draws, diagnose_effects
from bayes_rescue.inference.sampling import sample_raw, sample_tree
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.spec import load_prior

TINY = SamplerSettings(draws=60, tune=60, chains=2, seed=11, prior_draws=10)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Every test compiles into its own empty cache directory (never the user's)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def _specs():
    data = load_counts("bundled:chen2025")
    return [ModelSpec(data, load_prior(name), "hierarchical") for name in ("skeptical", "enthusiastic")]


def _run(monkeypatch, switch: str) -> dict[str, np.ndarray]:
    """Two priors sampled from one compiled structure (the second by swapping its data in), as DataTrees and
    as raw draws, with the backend switched to ``switch``; a fresh cache each time."""
    monkeypatch.setenv(compile_module.ENV_BACKEND, switch)
    cache = engine.ModelCache()
    out = {}
    for spec in _specs():
        tree = sample_tree(spec, TINY, cache=cache)
        for name in ("mu_log_or", "tau_log_or", "delta"):
            out[f"{spec.name}/tree/{name}"] = tree["posterior"][name].to_numpy()
        out[f"{spec.name}/tree/step_size"] = tree["sample_stats"]["step_size"].to_numpy()
        posterior, stats = sample_raw(spec, TINY, cache=cache, names=("delta", "mu_log_or"))
        out[f"{spec.name}/raw/delta"] = posterior["delta"].to_numpy()
        out[f"{spec.name}/raw/mu_log_or"] = posterior["mu_log_or"].to_numpy()
        out[f"{spec.name}/raw/diverging"] = stats["diverging"].to_numpy()
    assert cache.compilations == 1
    return out


def test_backend_and_public_path_give_the_same_draws(monkeypatch):
    """Reference: the public path. Per prior (the second swapped into the compiled structure), the DataTree's
    parameters and step sizes and the raw draws are bit-identical between the backend and the public path;
    the raw draws equal the DataTree's (the same run); the two priors' draws differ (the swap took effect)."""
    ours = _run(monkeypatch, "fast")
    theirs = _run(monkeypatch, "public")
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    for name in ("skeptical", "enthusiastic"):
        np.testing.assert_array_equal(ours[f"{name}/raw/delta"], ours[f"{name}/tree/delta"])
        np.testing.assert_array_equal(ours[f"{name}/raw/mu_log_or"], ours[f"{name}/tree/mu_log_or"])
    assert not np.array_equal(ours["skeptical/tree/delta"], ours["enthusiastic/tree/delta"])


@pytest.mark.slow  # 9 s: two fresh-process fits
def test_public_path_never_imports_the_backend(tmp_path):
    """With BAYES_RESCUE_BACKEND=public a whole compile and sample (raw draws) never imports the backend
    module, the only home of the private names of nutpie, numba and PyTensor."""
    import os
    import subprocess
    from pathlib import Path

    code = (
        "import sys; from bayes_rescue.data.counts import load_counts; from bayes_rescue.model.spec import ModelSpec;"
        "from bayes_rescue.priors.spec import load_prior; from bayes_rescue.inference.settings import SamplerSettings;"
        "from bayes_rescue.inference.sampling import sample_raw;"
        "spec = ModelSpec(load_counts('bundled:chen2025'), load_prior('neutral'), 'hierarchical');"
        "sample_raw(spec, SamplerSettings(draws=20, tune=20, chains=1));"
        "print('bayes_rescue.inference.backend' in sys.modules)"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root, "BAYES_RESCUE_BACKEND": "public", "XDG_CACHE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split()[-1] == "False"


def test_a_broken_backend_falls_back_with_one_warning(monkeypatch):
    """If the backend cannot be imported, the engine warns once, in one line, and uses nutpie's public API;
    sampling still works (the public path's draws are those of the backend, test above)."""
    monkeypatch.setitem(sys.modules, "bayes_rescue.inference.backend", None)  # import fails
    monkeypatch.setattr(compile_module, "_unavailable", [])
    monkeypatch.setenv(compile_module.ENV_BACKEND, "fast")
    with pytest.warns(RuntimeWarning, match="backend unavailable") as caught:
        cache = engine.ModelCache()
        tree = sample_tree(_specs()[0], TINY, cache=cache)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert tree["posterior"].sizes["draw"] == TINY.draws


def _synthetic(slow: str | None) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """Effects (rd, log_or per estimand) and parameters with iid normal draws (4 chains x 1000), except the
    parameter ``slow`` (one element), an AR(1) chain with coefficient 0.95 per chain."""
    rng = np.random.default_rng(5)
    shape = (4, 1000)
    effects = xr.Dataset(
        {n: (("chain", "draw", "estimand"), rng.normal(size=(*shape, 3))) for n in ("rd", "log_or")},
        coords={"estimand": ["a", "b", "c"]},
    )
    params = xr.Dataset(
        {
            "mu_baseline": (("chain", "draw", "outcome"), rng.normal(size=(*shape, 2))),
            "tau_log_or": (("chain", "draw", "pooled_outcome"), np.abs(rng.normal(size=(*shape, 1)))),
        },
        coords={"outcome": ["mrs_0_2", "death"], "pooled_outcome": ["mrs_0_2"]},
    )
    if slow is not None:
        ar = np.zeros(shape)
        noise = rng.normal(size=shape)
        for t in range(1, shape[1]):
            ar[:, t] = 0.95 * ar[:, t - 1] + noise[:, t]
        params[slow][..., 0] = ar
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros(shape, dtype=bool))})
    return effects, params, stats


@pytest.mark.parametrize("slow", ["mu_baseline", "tau_log_or"])
def test_the_gate_fails_on_a_parameter_that_is_not_reported(slow):
    """Reference: ESS by construction (module docstring). Every RD and log OR is iid (ESS about 4000), one
    element of a parameter is AR(1) (ESS about 100): the effects alone pass, the gate with the parameters fails
    and names that element in its problem text; without the slow element everything passes."""
    effects, params, stats = _synthetic(slow)
    assert diagnose_effects(effects, stats, 0.95).passed  # the effects alone would pass
    diag = diagnose_effects(effects, stats, 0.95, posterior=params)
    assert not diag.passed
    assert diag.min_ess_bulk < ESS_MIN / 3
    label = f"{slow}[mrs_0_2]"
    assert diag.worst_ess_bulk == label
    assert any("bulk ESS" in p and label in p for p in diag.problems()), diag.problems()
    assert not diagnose_draws(params, stats, 0.95).passed
    effects, params, stats = _synthetic(None)
    assert diagnose_effects(effects, stats, 0.95, posterior=params).passed


def test_a_fit_failing_on_a_parameter_warns_loudly_naming_it():
    """A real fit too short for the gate (2 chains x 60 draws: ESS well under 1000) is returned with a
    RuntimeWarning whose text names a quantity; its diagnostics table covers every sampled parameter."""
    from bayes_rescue.inference.sampling import fit

    spec = _specs()[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(spec, TINY, retry=False)
    assert not result.passed
    text = " ".join(str(w.message) for w in caught if issubclass(w.category, RuntimeWarning))
    assert "diagnostics FAILED" in text and "[" in text
    gated = {q.split("[")[0] for q in result.diagnostics.per_quantity["quantity"]}
    assert {"mu_baseline", "mu_log_or", "sigma_baseline", "tau_log_or", "baseline_z", "log_or_z"} <= gated
    assert {"rd", "log_or", "baseline", "delta"} <= gated


def test_map_meta_analysis_samples_through_the_engine_as_nutpie_alone():
    """Reference: nutpie's public compile and sample of the same meta-analysis model (same seed, tune 2000,
    4 chains, nutpie's default start), as fit_map did before it used the engine: the same mu and tau draws bit
    for bit (so the bundled MAP prior files, which quote them, are unchanged), and the quoted diagnostics are
    those of mu and tau."""
    import nutpie
    from arviz_stats import ess, rhat

    from bayes_rescue.analyses.map_prior import LITERATURE_SETS, MAP_SEED, build_map_model, fit_map, trial_counts

    counts = trial_counts(LITERATURE_SETS["map_early"][1], "mrs_0_2")
    fitted = fit_map(counts, draws=200)
    ref = nutpie.sample(
        nutpie.compile_pymc_model(build_map_model(counts)),
        draws=200,
        tune=2000,
        chains=4,
        seed=MAP_SEED,
        target_accept=0.99,
        progress_bar=False,
    )
    post = ref["posterior"].to_dataset()
    np.testing.assert_array_equal(fitted.mu, post["mu"].to_numpy().ravel())
    np.testing.assert_array_equal(fitted.tau, post["tau"].to_numpy().ravel())
    core = post[["mu", "tau"]]
    assert fitted.max_rhat == max(float(v) for v in rhat(core).data_vars.values())
    assert fitted.min_ess == min(float(v) for m in ("bulk", "tail") for v in ess(core, method=m).data_vars.values())


def test_the_helpers_task_module_imports_no_sampler():
    """A helper process completing and gating a prior's tree imports bayes_rescue.inference.results, which must
    not import PyMC, nutpie, numba or the backend (checked in a fresh process)."""
    import os
    import subprocess
    from pathlib import Path

    code = (
        "import sys; import bayes_rescue.inference.results;"
        "print([m for m in ('pymc', 'nutpie', 'numba', 'bayes_rescue.inference.backend') if m in sys.modules])"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
