"""Simulation-based calibration: `python scripts/validate.py [--sims 1000] [--model hierarchical|independent|map]`.

`--model map` calibrates the random-effects meta-analysis behind the MAP priors on the arm sizes of the
trials of `--literature` (default map_early) for `--outcome` (default mrs_0_2); the other models are
calibrated on the arm sizes of `--data` under `--prior`.

Writes `models/validate-<time>/` (or --out): ranks.csv, uniformity.csv, sbc_ranks.png, and prints the
per-quantity chi-square uniformity tests. Exit code 1 if any quantity fails at the Bonferroni-corrected
level 0.001 / number of quantities, or if more than 1% of the simulated fits had a divergence.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sims", type=int, default=1000)
    p.add_argument("--prior", default="skeptical")
    p.add_argument("--model", default="hierarchical", choices=["hierarchical", "independent", "map"])
    p.add_argument("--literature", default="map_early", help="trial set of the MAP meta-analysis (--model map)")
    p.add_argument("--outcome", default="mrs_0_2", help="outcome of the MAP meta-analysis (--model map)")
    p.add_argument("--data", default="bundled:chen2025")
    p.add_argument("--scheduler", default="serial", help="serial, local (Dask LocalCluster) or a scheduler address")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    from bayes_rescue import io
    from bayes_rescue.data import load_counts
    from bayes_rescue.map_prior import LITERATURE_SETS, trial_counts
    from bayes_rescue.parallel import dask_map
    from bayes_rescue.priors import load_prior
    from bayes_rescue.validate import plot_ranks, sbc, sbc_map, uniformity

    warnings.simplefilter("ignore", RuntimeWarning)
    out = args.out or Path("models") / f"validate-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    t0 = time.perf_counter()
    with dask_map(args.scheduler) as mapper:
        if args.model == "map":
            if args.literature not in LITERATURE_SETS:
                p.error(f"--literature must be one of {', '.join(LITERATURE_SETS)}")
            counts = trial_counts(LITERATURE_SETS[args.literature][1], args.outcome)
            if len(counts) < 2:
                p.error(f"--outcome {args.outcome!r}: fewer than two trials of {args.literature} report it")
            ranks = sbc_map(counts, n_sims=args.sims, map_fn=mapper)
        else:
            data, prior = load_counts(args.data), load_prior(args.prior)
            ranks = sbc(data, prior, kind=args.model, n_sims=args.sims, map_fn=mapper)
    tests = uniformity(ranks)
    level = 0.001 / len(tests)
    with io.atomic_run_dir(out, overwrite=True) as tmp:
        ranks.to_csv(tmp / "ranks.csv", index=False)
        tests.to_csv(tmp / "uniformity.csv", index=False)
        plot_ranks(ranks, tmp / "sbc_ranks.png")
    print(tests.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    diverged = int((ranks["divergences"] > 0).sum())
    print(
        f"\n{args.sims} simulations in {time.perf_counter() - t0:.0f} s; simulations with divergences: {diverged};"
        f" Bonferroni level {level:.2g}; written to {out}/"
    )
    failed = tests[tests["p_value"] < level]
    if len(failed) or diverged > 0.01 * args.sims:
        print("SBC FAILED: " + ", ".join(failed["quantity"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
