"""`python scripts/bench.py --scale`: how the cost of a fit grows with the table and with the patients (issue 22).

Each case is a counts table fitted by `scripts/fit.py --prior skeptical` (figures and every output) in a
fresh process: first once untimed (each table shape compiles its model once per machine, then loads it
from the cache), then timed. Reported per case: wall time (start to exit), peak RSS of the largest single
process (``os.wait4``), peak memory of all the run's processes together (sum of PSS, /proc sampled every
20 ms in one more, untimed run; ``--no-pss`` skips it), and the size of the run folder and of its
``posterior.nc``.

Cases (``--scale-cases``, comma-separated labels):

- ``sub1``, ``sub10``, ``sub50``, ``sub200``: 1, 10, 50, 200 subgroups of one outcome (mRS 0-2), 50-200
  patients per arm (drawn with a fixed seed; event rates 0.45 treated, 0.35 control);
- ``pat43``: the bundled cohort (43 patients, 3 cells);
- ``pat11558``: RECOVERY convalescent plasma, 28-day mortality 1399/5795 vs 1408/5763 (Lancet
  2021;397:2049-59), one cell;
- ``pat100000``: one cell of 50,000 patients per arm, mortality 12,000 vs 12,100 events.

Targets of issue 22 (checked in the printout): RECOVERY wall time <= 1.2x the bundled cohort's, run folder
<= 10 MB, peak memory <= 600 MB; 200 subgroups: peak memory <= 1.5 GB, run folder <= 100 MB.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

CASES = ("sub1", "sub10", "sub50", "sub200", "pat43", "pat11558", "pat100000")
HEADER = "outcome,subgroup,arm,events,total,direction"


def subgroups_csv(n_sub: int, seed: int = 22) -> str:
    """``n_sub`` subgroups of mRS 0-2, 50-200 patients per arm, binomial events at 0.45 / 0.35."""
    rng = np.random.default_rng([seed, n_sub])
    lines = [HEADER]
    for s in range(n_sub):
        for arm, rate in (("treatment", 0.45), ("control", 0.35)):
            n = int(rng.integers(50, 201))
            lines.append(f"mrs_0_2,s{s:03d},{arm},{int(rng.binomial(n, rate))},{n},higher")
    return "\n".join(lines) + "\n"


def one_cell_csv(y_t: int, n_t: int, y_c: int, n_c: int) -> str:
    """A single 2x2 table of mortality."""
    return f"{HEADER}\nmortality,all,treatment,{y_t},{n_t},lower\nmortality,all,control,{y_c},{n_c},lower\n"


def case_data(label: str, folder: Path) -> str:
    """The ``--data`` argument of a case (a CSV written into ``folder``, or the bundled cohort)."""
    if label not in CASES:
        raise SystemExit(f"unknown --scale-cases label {label!r}; choose from {', '.join(CASES)}")
    if label == "pat43":
        return "bundled:chen2025"
    if label.startswith("sub"):
        text = subgroups_csv(int(label[3:]))
    elif label == "pat11558":
        text = one_cell_csv(1399, 5795, 1408, 5763)
    else:
        text = one_cell_csv(12000, 50000, 12100, 50000)
    path = folder / f"{label}.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def case_size(label: str, data: str) -> tuple[int, int]:
    """(cells, patients) of a case."""
    if label == "pat43":
        return 3, 43
    rows = Path(data).read_text("utf-8").splitlines()[1:]
    totals = [int(r.split(",")[4]) for r in rows]
    return len(rows) // 2, sum(totals)


def folder_mb(path: Path) -> float:
    """Size (MB) of every file under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def run_scale(labels: list[str], *, run_process, pss: bool, out_json: Path) -> list[str]:
    """Run the cases (``run_process`` is bench.py's: python args -> seconds, rc, peak_rss_mb, peak_tree_pss_mb)
    and return the printed lines (also written to ``out_json``)."""
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as d:
        tmp = Path(d)
        for label in labels:
            data = case_data(label, tmp)
            cells, patients = case_size(label, data)
            run = tmp / f"{label}-run"
            args = ["scripts/fit.py", "--data", data, "--prior", "skeptical", "--out", str(run), "--overwrite"]
            args.append("--quiet")
            print(f"{label}: {cells} cells, {patients} patients: warm-up run (untimed) ...", flush=True)
            run_process(args)
            res = run_process(args)
            res |= {"cells": cells, "patients": patients, "folder_mb": folder_mb(run)}
            trees = list(run.rglob("posterior.nc"))
            res["posterior_nc_mb"] = sum(p.stat().st_size for p in trees) / 1e6
            if pss:
                res["peak_tree_pss_mb"] = run_process(args, memory=True)["peak_tree_pss_mb"]
            results[label] = res
            print(
                f"  {res['seconds']:.1f} s, largest process {res['peak_rss_mb']:.0f} MB, all processes"
                f" {res['peak_tree_pss_mb']:.0f} MB, folder {res['folder_mb']:.1f} MB, rc {res['rc']}",
                flush=True,
            )
    base = results.get("pat43", {}).get("seconds")
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average"
        f" at the end {os.getloadavg()[0]:.1f} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, python scripts/bench.py"
        f" --scale --scale-cases {','.join(labels)})",
        "| case | cells | patients | wall (s) | x bundled | largest process (MB) | all processes (MB) | run folder (MB)"
        " | posterior.nc (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, r in results.items():
        ratio = f"{r['seconds'] / base:.2f}" if base else "-"
        lines.append(
            f"| {label} | {r['cells']} | {r['patients']} | {r['seconds']:.1f} | {ratio} | {r['peak_rss_mb']:.0f}"
            f" | {r['peak_tree_pss_mb']:.0f} | {r['folder_mb']:.1f} | {r['posterior_nc_mb']:.1f} |"
        )
    lines += _targets(results, base)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"results": results, "report": lines}, indent=2))
    return lines


def _targets(results: dict[str, dict], base: float | None) -> list[str]:
    ok = lambda good: "met" if good else "NOT met"  # noqa: E731
    out = []

    def memory(r: dict) -> float:  # all processes when measured, else the largest one
        return r["peak_tree_pss_mb"] if r["peak_tree_pss_mb"] == r["peak_tree_pss_mb"] else r["peak_rss_mb"]

    def failed(r: dict, what: str) -> str | None:  # a run that exited non-zero wrote nothing: no target is met
        return f"{what}: the run exited {r['rc']} (nothing written): targets NOT measured" if r["rc"] else None

    if "pat11558" in results and (msg := failed(results["pat11558"], "RECOVERY (11,558 patients)")):
        out.append(msg)
    elif "pat11558" in results:
        r = results["pat11558"]
        wall = f"{r['seconds'] / base:.2f}x bundled (<= 1.2: {ok(r['seconds'] <= 1.2 * base)})" if base else "no base"
        out.append(
            f"RECOVERY (11,558 patients): wall {wall};"
            f" folder {r['folder_mb']:.1f} MB (<= 10: {ok(r['folder_mb'] <= 10)});"
            f" memory {memory(r):.0f} MB (<= 600: {ok(memory(r) <= 600)})"
        )
    if "sub200" in results and (msg := failed(results["sub200"], "200 subgroups")):
        out.append(msg)
    elif "sub200" in results:
        r = results["sub200"]
        out.append(
            f"200 subgroups ({r['patients']:,} patients): memory {memory(r):.0f} MB (<= 1500: {ok(memory(r) <= 1500)});"
            f" folder {r['folder_mb']:.1f} MB (<= 100: {ok(r['folder_mb'] <= 100)})"
        )
    return out
