"""Benchmark (not a test) of issue 14's whole-process targets: `python scripts/bench.py [--pairs 3] [--grid]`;
with `--scale`, issue 22's growth of cost with the table and the patients instead (`scripts/bench_scale.py`).

Every stage is a fresh subprocess, timed from outside (wall time from start to exit, so imports,
compilation and the interpreter's tear-down count) with its peak RSS: of the largest single process of its
tree (``os.wait4``). The peak memory of all the processes of (a) together (the fit's helper processes
included: the sum of their proportional set sizes, /proc sampled every 20 ms, so a peak shorter than that can
be missed) comes from one more, untimed run of each side, as sampling takes CPU from the run. Our side and the reference (`scripts/bench_reference.py`, the plain PyMC script of
the Chen overall 2x2 table) run as interleaved pairs, alternating which goes first. Figures are printed side
by side and written to `models/bench.json`.

- (a) `scripts/fit.py --prior skeptical` (figures and all), caches warm (one untimed run of each side
  first), against the reference: median of ``--pairs`` pairs, ratio ours / reference (target <= 0.5);
  peak RSS of ours (target <= 600 MB).
- (b) the very first run on a fresh machine: HOME, XDG_CACHE_HOME, NUMBA_CACHE_DIR,
  PYTENSOR_FLAGS=compiledir=..., MPLCONFIGDIR set to new empty temporary directories, for ours and for the
  reference alike (``--cold-pairs`` pairs), ours after the set-up's precompile (``scripts/setup.sh`` runs
  ``scripts/precompile.py`` once per machine; its time is printed beside); ratio (target <= 1.0). Installed packages' bytecode (.pyc,
  written by pip at install time) is kept, as on a fresh installation.
- (c) `scripts/fit.py --prior all` in a fresh process against (a)'s, both new processes with warm caches,
  interleaved (target <= 1.5x).
- (d) one Python process (notebook use): fit one prior, then time a second fit of another prior, by the
  API (`fit` + `summarize`) and by `bayes_rescue.cli.main(["fit", ...])` with every output (target <= 1.5 s).
- `--grid` adds the sensitivity-grid stages (PSIS where it passes the gate; NUTS at every point) and the
  naive grid (a fresh `pm.sample` per point, a few points run, scaled).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS_A = ["scripts/fit.py", "--prior", "skeptical"]
OURS_C = ["scripts/fit.py", "--prior", "all"]
REFERENCE = ["scripts/bench_reference.py"]


def _env(extra: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    return {**env, **(extra or {})}


def _tree_pss_mb(pid: int) -> float:
    """Memory (MB) of ``pid`` and all its descendants now: the sum of their proportional set sizes (PSS,
    /proc/<pid>/smaps_rollup: each page shared by k processes counts 1/k to each, so pages of the same
    libraries are not counted twice, as a sum of RSS would)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
            total += next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")) / 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def _sample_tree_pss(pid: int, stop: threading.Event, peak: list[float]) -> None:
    """Keep in ``peak[0]`` the largest :func:`_tree_pss_mb` seen, every 20 ms until ``stop``."""
    while not stop.wait(0.02):
        peak[0] = max(peak[0], _tree_pss_mb(pid))


def run_process(args: list[str], env: dict | None = None, *, memory: bool = False) -> dict:
    """Run ``python args`` from the repository root; wall seconds, exit code, peak RSS (MB) of the largest
    single process of its tree (``os.wait4``), and with ``memory`` the peak memory of all its processes
    together (the sum of their PSS, :func:`_tree_pss_mb`, sampled every 20 ms: reading /proc that often takes
    CPU from the run, so timed runs do not sample)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], stdout=out, stderr=err, cwd=ROOT, env=env or _env())
        stop, peak = threading.Event(), [float("nan")]
        if memory:
            peak[0] = 0.0
            sampler = threading.Thread(target=_sample_tree_pss, args=(proc.pid, stop, peak), daemon=True)
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t
        stop.set()
        if memory:
            sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode("utf-8", "replace")[-1500:]
    res = {
        "seconds": seconds,
        "rc": proc.returncode,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "peak_tree_pss_mb": peak[0],
    }
    if proc.returncode != 0:
        res["stderr_tail"] = tail
        print(f"  {' '.join(args)} exited {proc.returncode}:\n{tail}", file=sys.stderr)
    return res


def _ours(args: list[str], out: Path, env: dict | None = None, *, memory: bool = False) -> dict:
    return run_process([*args, "--out", str(out), "--overwrite", "--quiet"], env, memory=memory)


def _cold_env(root: Path) -> dict:
    """Fresh, empty HOME and cache directories under ``root`` (a new machine's first run)."""
    dirs = {k: root / k.lower() for k in ("HOME", "XDG_CACHE_HOME", "NUMBA_CACHE_DIR", "MPLCONFIGDIR", "PYTENSOR")}
    for d in dirs.values():
        d.mkdir(parents=True)
    env = {k: str(v) for k, v in dirs.items() if k != "PYTENSOR"}
    env["PYTENSOR_FLAGS"] = f"compiledir={dirs['PYTENSOR']}"
    return _env(env)


def first_run_pairs(n: int, tmp: Path) -> dict:
    """(b): ``n`` interleaved pairs of first runs, each side on its own empty HOME and caches; ours after the
    set-up's precompile (``scripts/precompile.py``, as ``scripts/setup.sh`` runs it once per machine) into that
    side's caches, timed separately (``setup_seconds``) and not counted in the first run."""
    runs: dict[str, list[dict]] = {"ours": [], "other": []}
    setup: list[float] = []
    for i in range(n):
        for side in ("ours", "other") if i % 2 == 0 else ("other", "ours"):
            env = _cold_env(tmp / f"b-{i}-{side}-env")
            if side == "ours":
                setup.append(run_process(["scripts/precompile.py"], env)["seconds"])
                res = _ours(OURS_A, tmp / f"b-{i}-ours", env)
            else:
                res = run_process(REFERENCE, env)
            runs[side].append(res)
            print(f"  b pair {i + 1}/{n} {side}: {res['seconds']:.1f} s, {res['peak_rss_mb']:.0f} MB", flush=True)
    out = {
        side: {
            "seconds": [r["seconds"] for r in rs],
            "median_seconds": statistics.median(r["seconds"] for r in rs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
            "rc": [r["rc"] for r in rs],
        }
        for side, rs in runs.items()
    }
    out["setup_seconds"] = statistics.median(setup)
    return out


def pairs(ours: list[str], other: list[str] | None, n: int, tmp: Path, tag: str, *, cold: bool = False) -> dict:
    """``n`` interleaved pairs (ours, other), alternating which runs first; ``other`` a reference script or
    another of our commands."""
    runs: dict[str, list[dict]] = {"ours": [], "other": []}
    for i in range(n):
        order = ("ours", "other") if i % 2 == 0 else ("other", "ours")
        for side in order:
            env = _cold_env(tmp / f"{tag}-{i}-{side}-env") if cold else None
            if side == "ours":
                res = _ours(ours, tmp / f"{tag}-{i}-ours", env)
            elif other[0] == "scripts/fit.py":
                res = _ours(other, tmp / f"{tag}-{i}-other", env)
            else:
                res = run_process(other, env)
            runs[side].append(res)
            print(f"  {tag} pair {i + 1}/{n} {side}: {res['seconds']:.1f} s, {res['peak_rss_mb']:.0f} MB", flush=True)
    return {
        side: {
            "seconds": [r["seconds"] for r in rs],
            "median_seconds": statistics.median(r["seconds"] for r in rs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
            "rc": [r["rc"] for r in rs],
        }
        for side, rs in runs.items()
    }


def stage_d() -> dict:
    """In one process: a first fit, then a second of another prior (API, then the command with outputs)."""
    import warnings

    warnings.simplefilter("ignore")
    from bayes_rescue.cli import main
    from bayes_rescue.data.counts import load_counts
    from bayes_rescue.inference.sampling import fit
    from bayes_rescue.model.spec import ModelSpec
    from bayes_rescue.outputs.tables import summarize
    from bayes_rescue.priors.spec import load_prior

    data = load_counts("bundled:chen2025")
    out: dict = {}
    t = time.perf_counter()
    summarize(fit(ModelSpec(data, load_prior("skeptical"))))
    out["first_fit_seconds"] = time.perf_counter() - t
    for k, prior in enumerate(("enthusiastic", "pessimistic")):
        t = time.perf_counter()
        summarize(fit(ModelSpec(data, load_prior(prior))))
        out[f"api_second_fit_seconds_{k}"] = time.perf_counter() - t
    out["api_second_fit_seconds"] = min(out["api_second_fit_seconds_0"], out["api_second_fit_seconds_1"])
    with tempfile.TemporaryDirectory() as d:
        main(["fit", "--prior", "skeptical", "--out", f"{d}/first", "--quiet"])  # figures' first draw paid
        t = time.perf_counter()
        out["cli_rc"] = main(["fit", "--prior", "neutral", "--out", f"{d}/second", "--quiet"])
        out["cli_second_fit_seconds"] = time.perf_counter() - t
    return out


def stage_grid(name: str, n_grid: int, n_naive: int) -> dict:
    """The sensitivity-grid stages of the earlier bench: ``c`` (PSIS where it passes, else NUTS), ``cn``
    (NUTS at every point), ``naive`` (a fresh pm.sample per point)."""
    import warnings

    warnings.simplefilter("ignore")
    import numpy as np

    from bayes_rescue.analyses.sensitivity import grid_prior, points_failing_gate, sensitivity_grid
    from bayes_rescue.data.counts import load_counts
    from bayes_rescue.inference.sampling import DEFAULT_CACHE
    from bayes_rescue.model.spec import ModelSpec

    data = load_counts("bundled:chen2025")
    out: dict = {}
    if name == "naive":
        import pymc as pm

        from bayes_rescue.model.build import build_model

        t = time.perf_counter()
        for i in range(n_naive):
            with build_model(ModelSpec(data, grid_prior(data, 0.1 * i, 0.5 + 0.1 * i), "hierarchical")):
                pm.sample(random_seed=i, progressbar=False)
        out["seconds_per_point"] = (time.perf_counter() - t) / n_naive
        out["seconds_scaled_to_grid"] = out["seconds_per_point"] * n_grid
        return out
    side = round((n_grid / 2) ** 0.5)
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
    by_point = grid.groupby(["centre_benefit", "sd", "robust"])
    out["points_psis"] = int((by_point["method"].first() == "psis").sum())
    out["points_failing_gate"] = points_failing_gate(grid)
    out["worst_rhat"] = float(grid["rhat_max"].max())
    out["worst_ess"] = float(grid["ess_min"].min())
    return out


def _stage_process(name: str, args: argparse.Namespace) -> dict:
    cmd = [__file__, "--stage", name, "--grid-points", str(args.grid_points), "--naive-points", str(args.naive_points)]
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *cmd], stdout=out, cwd=ROOT, env=_env())
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t
        out.seek(0)
        text = out.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {name} failed")
    return {
        **json.loads(text.strip().splitlines()[-1]),
        "process_seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def _range(xs: list[float]) -> str:
    return f"{min(xs):.1f}-{max(xs):.1f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3, help="interleaved pairs for (a) and (c) (3)")
    p.add_argument("--cold-pairs", type=int, default=1, help="pairs of first runs on empty caches for (b) (1)")
    p.add_argument("--grid", action="store_true", help="also the sensitivity-grid stages")
    p.add_argument("--grid-points", type=int, default=200)
    p.add_argument("--naive-points", type=int, default=3)
    p.add_argument(
        "--scale",
        action="store_true",
        help="only issue 22's scale cases: wall time, peak memory and run-folder size of fit.py on 1, 10, 50,"
        " 200 subgroups and on 43, 11,558 and 100,000 patients (see scripts/bench_scale.py)",
    )
    p.add_argument("--scale-cases", default=None, help="comma-separated scale cases (default: all)")
    p.add_argument("--no-pss", action="store_true", help="with --scale: skip the untimed all-processes memory runs")
    p.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=None, help="JSON results (models/bench.json, models/bench_scale.json)")
    args = p.parse_args(argv)
    if args.scale:
        import bench_scale

        labels = args.scale_cases.split(",") if args.scale_cases else list(bench_scale.CASES)
        out = args.out or ROOT / "models" / "bench_scale.json"
        print("\n".join(bench_scale.run_scale(labels, run_process=run_process, pss=not args.no_pss, out_json=out)))
        return 0
    args.out = args.out or ROOT / "models" / "bench.json"
    if args.stage:
        res = stage_d() if args.stage == "d" else stage_grid(args.stage, args.grid_points, args.naive_points)
        print(json.dumps(res))
        return 0
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as d:
        tmp = Path(d)
        print("warming caches (untimed): one run of each ...", flush=True)
        results["warmup"] = {"ours": _ours(OURS_A, tmp / "warm-ours"), "reference": run_process(REFERENCE)}
        print("(a) fit --prior skeptical vs the plain PyMC script, caches warm ...", flush=True)
        results["a"] = pairs(OURS_A, REFERENCE, args.pairs, tmp, "a")
        print("(a) memory: one more run of each, /proc sampled (untimed) ...", flush=True)
        results["a_memory"] = {
            "ours": _ours(OURS_A, tmp / "mem-ours", memory=True),
            "reference": run_process(REFERENCE, memory=True),
        }
        print("(b) first runs on empty HOME and caches (ours after the set-up's precompile) ...", flush=True)
        results["b"] = first_run_pairs(args.cold_pairs, tmp)
        print("(c) fit --prior all vs fit --prior skeptical, fresh processes ...", flush=True)
        results["c"] = pairs(OURS_C, OURS_A, args.pairs, tmp, "c")
    print("(d) a second fit in one process ...", flush=True)
    results["d"] = _stage_process("d", args)
    if args.grid:
        for name in ("c", "cn", "naive"):
            print(f"grid stage {name} ...", flush=True)
            results[f"grid_{name}"] = _stage_process(name, args)
    a, b, c, dd = results["a"], results["b"], results["c"], results["d"]
    mem = {k: v["peak_tree_pss_mb"] for k, v in results["a_memory"].items()}
    ratio_a = a["ours"]["median_seconds"] / a["other"]["median_seconds"]
    ratio_b = b["ours"]["median_seconds"] / b["other"]["median_seconds"]
    ratio_c = c["ours"]["median_seconds"] / c["other"]["median_seconds"]
    fastest_a = min(a["ours"]["seconds"]) / min(a["other"]["seconds"])  # less sensitive to other load
    fastest_c = min(c["ours"]["seconds"]) / min(c["other"]["seconds"])
    ok = lambda good: "met" if good else "NOT met"  # noqa: E731
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average at the end {os.getloadavg()[0]:.1f}"
        f" ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, python scripts/bench.py --pairs {args.pairs})",
        f"(a) fit.py --prior skeptical, new process, caches warm: ours {a['ours']['median_seconds']:.1f} s (median; {_range(a['ours']['seconds'])}),"
        f" plain PyMC script {a['other']['median_seconds']:.1f} s ({_range(a['other']['seconds'])}); ratio {ratio_a:.2f} (target <= 0.5: {ok(ratio_a <= 0.5)}); fastest run each {fastest_a:.2f}",
        f"    peak RSS: ours {a['ours']['peak_rss_mb']:.0f} MB (target <= 600: {ok(a['ours']['peak_rss_mb'] <= 600)}), plain PyMC {a['other']['peak_rss_mb']:.0f} MB (largest single process);"
        f" all processes together (PSS, a separate run): ours {mem['ours']:.0f} MB ({ok(mem['ours'] <= 600)}), plain PyMC {mem['reference']:.0f} MB",
        f"(b) first run, empty HOME and caches: ours {b['ours']['median_seconds']:.1f} s, plain PyMC script {b['other']['median_seconds']:.1f} s;"
        f" ratio {ratio_b:.2f} (target <= 1.0: {ok(ratio_b <= 1.0)}); peak RSS ours {b['ours']['peak_rss_mb']:.0f} MB;"
        f" the set-up's extra time (scripts/precompile.py, once per machine) {b['setup_seconds']:.1f} s",
        f"(c) fit.py --prior all (7 priors), new process: {c['ours']['median_seconds']:.1f} s ({_range(c['ours']['seconds'])}) against (a)'s"
        f" {c['other']['median_seconds']:.1f} s in the same pairs = {ratio_c:.2f}x (target <= 1.5: {ok(ratio_c <= 1.5)}), fastest run each {fastest_c:.2f}x; peak RSS {c['ours']['peak_rss_mb']:.0f} MB",
        f"(d) one process, a second fit of another prior: API fit() + summarize {dd['api_second_fit_seconds']:.2f} s (target <= 1.5: {ok(dd['api_second_fit_seconds'] <= 1.5)});"
        f" the fit command with every output {dd['cli_second_fit_seconds']:.2f} s; (the first fit {dd['first_fit_seconds']:.1f} s)",
    ]
    if args.grid:
        g, gn, nv = results["grid_c"], results["grid_cn"], results["grid_naive"]
        lines += [
            f"(grid) {g['points']}-point sensitivity grid, PSIS where it passes the gate: {g['seconds']:.1f} s with the one compile ({g['compile_seconds']:.1f} s);"
            f" points by PSIS {g['points_psis']}; worst R-hat {g['worst_rhat']:.4f}, min ESS {g['worst_ess']:.0f}, failing the gate {g['points_failing_gate']}; peak RSS {g['peak_rss_mb']:.0f} MB",
            f"       NUTS at every point: {gn['seconds']:.1f} s; naive (fresh pm.sample per point, scaled to {args.grid_points}): {nv['seconds_scaled_to_grid']:.0f} s"
            f" = {nv['seconds_scaled_to_grid'] / g['seconds'] * g['points'] / args.grid_points:.0f}x ours",
        ]
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results, "report": lines}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
