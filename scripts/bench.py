"""Benchmark (not a test): `python scripts/bench.py [--grid-points 200] [--naive-points 3]`.

Each stage runs in a fresh subprocess so that its wall time and peak RSS are its own; the numbers are
printed side by side and written to `models/bench.json`. Stages:

- a_cold: `fit.py --prior skeptical` end to end in a new process (imports, compile, sample, outputs).
- a_warm: the same analysis a second time in that process (compiled model reused): the "warm" run.
- plain: the same analysis written the plain way (pm.sample with default settings, PyMC's prior,
  log-likelihood and posterior-predictive samplers, the same summary), first and second run.
- b_all: `--prior all` (7 priors) in a new process, and warm.
- c_grid: an N-point sensitivity grid (compile once, swap priors), as `sensitivity.py` runs it: PSIS
  reweighting of one reference fit where that passes the gate, NUTS elsewhere; and (cn) the same grid with
  NUTS at every point.
- d_naive: the grid the naive way, a fresh `pm.sample` of a freshly built model per point, on a few
  points, scaled to N.
- e_quadrature: exact 2-D quadrature of one 2x2 posterior (independent model), per posterior: the floor.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage(name: str, n_grid: int, n_naive: int) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    out: dict = {}
    t0 = time.perf_counter()
    if name in ("a", "b"):
        from bayes_rescue.cli import main

        prior = "skeptical" if name == "a" else "all"
        with tempfile.TemporaryDirectory() as d:
            for run in ("cold", "warm"):
                t = time.perf_counter()
                rc = main(["fit", "--prior", prior, "--out", f"{d}/{run}"])
                out[f"{run}_seconds"] = time.perf_counter() - t + (t - t0 if run == "cold" else 0)
                out[f"{run}_rc"] = rc
        # the NUTS run alone (warm, same settings as the fit): the part of (a)/(b) no post-processing can cut
        from bayes_rescue.data.counts import load_counts
        from bayes_rescue.inference.sampling import DEFAULT_CACHE, _run_nutpie
        from bayes_rescue.inference.settings import SamplerSettings
        from bayes_rescue.model.spec import ModelSpec
        from bayes_rescue.priors.spec import resolve_priors

        specs = [ModelSpec(load_counts("bundled:chen2025"), p) for p in resolve_priors(prior)]
        compiled = DEFAULT_CACHE.get(specs[0]) if name == "a" else DEFAULT_CACHE.get_stacked(specs)
        settings = SamplerSettings()
        t = time.perf_counter()
        _run_nutpie(compiled, settings, settings.target_accept, raw=True)
        out["nuts_seconds"] = time.perf_counter() - t
    elif name == "plain":
        import arviz as az
        import pymc as pm

        from bayes_rescue.data.counts import load_counts
        from bayes_rescue.model.build import build_model
        from bayes_rescue.model.spec import ModelSpec
        from bayes_rescue.priors.spec import load_prior

        for run in ("cold", "warm"):
            t = time.perf_counter()
            spec = ModelSpec(load_counts("bundled:chen2025"), load_prior("skeptical"), "hierarchical")
            with build_model(spec):
                idata = pm.sample(random_seed=1, progressbar=False)
                prior = pm.sample_prior_predictive(random_seed=2)
                idata["prior"] = prior["prior"]
                idata["prior_predictive"] = prior["prior_predictive"]
                pm.compute_log_likelihood(idata, progressbar=False)
                pm.sample_posterior_predictive(idata, extend_inferencedata=True, progressbar=False)
            az.summary(idata, var_names=["log_or"], ci_prob=0.95, ci_kind="eti")
            out[f"{run}_seconds"] = time.perf_counter() - t + (t - t0 if run == "cold" else 0)
    elif name in ("c", "cn"):
        from bayes_rescue.analyses.sensitivity import points_failing_gate, sensitivity_grid
        from bayes_rescue.data.counts import load_counts

        data = load_counts("bundled:chen2025")
        side = round((n_grid / 2) ** 0.5)
        import numpy as np

        from bayes_rescue.analyses.sensitivity import grid_prior
        from bayes_rescue.inference.sampling import DEFAULT_CACHE
        from bayes_rescue.model.spec import ModelSpec

        t = time.perf_counter()
        DEFAULT_CACHE.get(ModelSpec(data, grid_prior(data, 0.0, 1.0), "hierarchical"))  # the one compile
        out["compile_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        grid = sensitivity_grid(
            data,
            centres=np.linspace(-1, 1.5, side),
            sds=np.geomspace(0.2, 3, side),
            robust=(0.0, 0.2),
            method="auto" if name == "c" else "nuts",
        )
        out["points"] = 2 * side * side
        out["seconds_warm"] = time.perf_counter() - t
        out["seconds"] = out["seconds_warm"] + out["compile_seconds"]
        out["seconds_incl_import"] = time.perf_counter() - t0
        out["worst_rhat"] = float(grid["rhat_max"].max())
        out["worst_ess"] = float(grid["ess_min"].min())
        out["max_divergences"] = int(grid["divergences"].max())
        out["points_failing_gate"] = points_failing_gate(grid)
        by_point = grid.groupby(["centre_benefit", "sd", "robust"])
        out["points_retried"] = int((by_point["attempts"].max() > 1).sum())
        out["points_psis"] = int((by_point["method"].first() == "psis").sum())
    elif name == "d":
        import pymc as pm

        from bayes_rescue.analyses.sensitivity import grid_prior
        from bayes_rescue.data.counts import load_counts
        from bayes_rescue.model.build import build_model
        from bayes_rescue.model.spec import ModelSpec

        data = load_counts("bundled:chen2025")
        t = time.perf_counter()
        for i in range(n_naive):
            with build_model(ModelSpec(data, grid_prior(data, 0.1 * i, 0.5 + 0.1 * i), "hierarchical")):
                pm.sample(random_seed=i, progressbar=False)
        per = (time.perf_counter() - t) / n_naive
        out["points_run"] = n_naive
        out["seconds_per_point"] = per
        out["seconds_scaled_to_grid"] = per * n_grid
    elif name == "e":
        sys.path.insert(0, str(ROOT / "tests"))
        from quadrature import reference_summary

        reps = 5
        t = time.perf_counter()
        for _ in range(reps):
            reference_summary(13, 17, 6, 19, direction="higher", weights=[1.0], means=[0.0], sds=[0.53])
        out["seconds_per_posterior"] = (time.perf_counter() - t) / reps
    out["peak_rss_mb"] = _peak_mb()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid-points", type=int, default=200)
    p.add_argument("--naive-points", type=int, default=3)
    p.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=ROOT / "models" / "bench.json")
    args = p.parse_args(argv)
    if args.stage:
        print(json.dumps(stage(args.stage, args.grid_points, args.naive_points)))
        return 0
    results = {}
    for name in ("a", "plain", "b", "c", "cn", "d", "e"):
        print(f"running stage {name} ...", flush=True)
        cmd = [
            sys.executable,
            __file__,
            "--stage",
            name,
            "--grid-points",
            str(args.grid_points),
            "--naive-points",
            str(args.naive_points),
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        if res.returncode != 0:
            print(res.stderr[-2000:], file=sys.stderr)
            return 1
        results[name] = json.loads(res.stdout.strip().splitlines()[-1])
    a, plain, b, c, cn, d, e = (results[k] for k in ("a", "plain", "b", "c", "cn", "d", "e"))
    lines = [
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        f"(a) fit --prior skeptical end to end: cold process {a['cold_seconds']:.1f} s, warm {a['warm_seconds']:.1f} s; peak RSS {a['peak_rss_mb']:.0f} MB",
        f"    plain PyMC (pm.sample defaults + PyMC prior/log-lik/predictive): cold {plain['cold_seconds']:.1f} s, warm {plain['warm_seconds']:.1f} s;"
        f" ratio plain/ours: cold {plain['cold_seconds'] / a['cold_seconds']:.1f}x, warm {plain['warm_seconds'] / a['warm_seconds']:.1f}x",
        f"(b) --prior all (7 priors): cold {b['cold_seconds']:.1f} s, warm {b['warm_seconds']:.1f} s = {b['warm_seconds'] / a['warm_seconds']:.1f}x (a) warm; peak RSS {b['peak_rss_mb']:.0f} MB",
        f"    the NUTS run alone (4 x (1000 + 1000) draws): (a) one prior {a['nuts_seconds']:.2f} s, (b) seven priors stacked {b['nuts_seconds']:.2f} s = {b['nuts_seconds'] / a['warm_seconds']:.2f}x (a) warm end to end",
        *(
            f"{label} {g['points']}-point sensitivity grid, {how}: {g['seconds']:.1f} s with the one compile ({g['compile_seconds']:.1f} s), {g['seconds_warm']:.1f} s warm; peak RSS {g['peak_rss_mb']:.0f} MB;"
            f" points by PSIS {g['points_psis']}, by NUTS {g['points'] - g['points_psis']}; worst R-hat {g['worst_rhat']:.4f}, min ESS {g['worst_ess']:.0f}, max divergences {g['max_divergences']},"
            f" NUTS points retried {g['points_retried']}, failing the gate after the retry {g['points_failing_gate']}"
            for label, how, g in (
                ("(c)", "PSIS where it passes the gate, else NUTS", c),
                ("   ", "NUTS at every point", cn),
            )
        ),
        f"(d) naive grid (fresh pm.sample per point, {d['points_run']} points run, scaled): {d['seconds_scaled_to_grid']:.0f} s;"
        f" ratio naive/ours {d['seconds_scaled_to_grid'] / c['seconds'] * c['points'] / args.grid_points:.0f}x (NUTS at every point: {d['seconds_scaled_to_grid'] / cn['seconds'] * cn['points'] / args.grid_points:.0f}x); peak RSS {d['peak_rss_mb']:.0f} MB",
        f"(e) exact quadrature, one 2x2 posterior: {1000 * e['seconds_per_posterior']:.0f} ms",
    ]
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results, "report": lines}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
