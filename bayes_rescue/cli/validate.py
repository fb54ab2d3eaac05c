"""``bayes-rescue validate``: simulation-based calibration of the reanalysis model or of the MAP meta-analysis.

``--model map`` calibrates the random-effects meta-analysis behind the MAP priors on the arm sizes of the
trials of ``--literature`` (default map_early) for ``--outcome`` (default mrs_0_2); the other models are
calibrated on the arm sizes of ``--data`` under ``--prior``.

Writes ``models/validate-<time>/`` (or ``--out``; an existing folder only with ``--overwrite`` and only if it
is a run of this tool): ranks.csv, uniformity.csv, sbc_ranks.png, manifest.json, and prints the
per-quantity chi-square uniformity tests. Bad input exits 2 with one line, as ``fit`` does. Exit code 1
if any quantity fails at the Bonferroni-corrected level 0.001 / number of quantities, or if more than 1% of
the simulated fits had a divergence.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

from bayes_rescue.cli._args import DEFAULT_MODELS_DIR, _positive_int, _scheduler, utc_stamp
from bayes_rescue.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="simulation-based calibration (SBC) of the model or of the MAP meta-analysis")
    p.add_argument("--sims", type=_positive_int("--sims"), default=1000, help="number of simulations (default: 1000)")
    p.add_argument("--prior", default="skeptical", help="prior of the reanalysis model (default: skeptical)")
    p.add_argument(
        "--model",
        default="hierarchical",
        choices=["hierarchical", "independent", "map"],
        help="model to calibrate; 'map' = the meta-analysis behind the MAP priors (default: hierarchical)",
    )
    p.add_argument(
        "--literature",
        default="map_early",
        help="trial set of the MAP meta-analysis, with --model map (default: map_early)",
    )
    p.add_argument(
        "--outcome", default="mrs_0_2", help="outcome of the MAP meta-analysis, with --model map (default: mrs_0_2)"
    )
    p.add_argument(
        "--data", default="bundled:chen2025", help="counts whose arm sizes are simulated (default: bundled:chen2025)"
    )
    p.add_argument(
        "--scheduler",
        type=_scheduler,
        default="serial",
        help="serial, local (Dask LocalCluster) or a scheduler address (default: serial)",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default models/validate-<UTC time>)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing run folder of this tool (default: refuse)",
    )
    p.set_defaults(run=run)


def run(args, argv: list[str]) -> int:
    """Check the inputs and the output folder, then simulate, test and write under the run lock."""
    from bayes_rescue.analyses.map_prior import LITERATURE_SETS, trial_counts
    from bayes_rescue.data.counts import load_counts
    from bayes_rescue.model.spec import ModelSpec
    from bayes_rescue.outputs import rundir
    from bayes_rescue.priors.spec import load_prior

    warnings.simplefilter("ignore", RuntimeWarning)
    out = args.out or DEFAULT_MODELS_DIR / f"validate-{utc_stamp()}"
    counts = data = prior = None
    if args.model == "map":
        if args.literature not in LITERATURE_SETS:
            raise InputError(f"must be one of {', '.join(LITERATURE_SETS)}", field="--literature")
        counts = trial_counts(LITERATURE_SETS[args.literature][1], args.outcome)
        if len(counts) < 2:
            raise InputError(f"fewer than two trials of {args.literature} report '{args.outcome}'", field="--outcome")
    else:
        data, prior = load_counts(args.data), load_prior(args.prior)
        ModelSpec(data, prior, args.model)  # the prior covers the data's outcomes, every number in range
    with rundir.claim_run_dir(out, overwrite=args.overwrite, field="--out"):
        return _simulate_and_write(args, argv, out, counts, data, prior)


def _simulate_and_write(args, argv: list[str], out: Path, counts, data, prior) -> int:
    """SBC, the uniformity tests and the output folder (the caller holds its lock)."""
    import shlex

    from bayes_rescue.analyses.parallel import dask_map
    from bayes_rescue.analyses.validation import N_RANK_DRAWS, sbc, sbc_map, uniformity
    from bayes_rescue.outputs import rundir
    from bayes_rescue.outputs.console import wrap_text
    from bayes_rescue.outputs.figures import plot_ranks
    from bayes_rescue.outputs.wording import parameter_label, with_name
    from bayes_rescue.versions import package_versions

    t0 = time.perf_counter()
    with dask_map(args.scheduler) as mapper:
        if args.model == "map":
            ranks = sbc_map(counts, n_sims=args.sims, map_fn=mapper)
        else:
            ranks = sbc(data, prior, kind=args.model, n_sims=args.sims, map_fn=mapper)
    tests = uniformity(ranks)
    level = 0.001 / len(tests)
    with rundir.atomic_run_dir(out, overwrite=args.overwrite) as tmp:
        ranks.to_csv(tmp / "ranks.csv", index=False)
        tests.to_csv(tmp / "uniformity.csv", index=False)
        plot_ranks(ranks, tmp / "sbc_ranks.png", n_rank_draws=N_RANK_DRAWS)
        meta = {
            "tool": "bayes_rescue",
            "command": shlex.join(["bayes-rescue", "validate", *argv]),
            "versions": package_versions(),
        }
        rundir.write_json(tmp / "manifest.json", {**meta, "files": rundir.file_hashes(tmp)})
    labels = data.labels if data is not None else None
    print(uniformity_text(tests, labels))
    diverged = int((ranks["divergences"] > 0).sum())
    print(
        "\n"
        + wrap_text(
            f"{args.sims} simulations in {time.perf_counter() - t0:.0f} s; simulations with divergences: {diverged};"
            f" Bonferroni level {level:.2g}; written to {out}/"
        )
    )
    failed = tests[tests["p_value"] < level]
    if len(failed) or diverged > 0.01 * args.sims:
        names = ", ".join(with_name(parameter_label(q, labels), q) for q in failed["quantity"])
        print(wrap_text("SBC FAILED: " + (names or "divergences in more than 1% of the simulations")), file=sys.stderr)
        return 1
    return 0


def uniformity_text(tests, labels=None) -> str:
    """The uniformity tests for people: each quantity by its label, its raw name after it in parentheses
    (the column of ranks.csv), with the chi-square statistic, its degrees of freedom and P."""
    from bayes_rescue.outputs.console import render_table
    from bayes_rescue.outputs.wording import parameter_label, with_name

    rows = [
        {
            "quantity": with_name(parameter_label(r["quantity"], labels), r["quantity"]),
            "chi-square": f"{r['chi2']:.4g}",
            "df": f"{r['df']:d}",
            "P": f"{r['p_value']:.4g}",
        }
        for _, r in tests.iterrows()
    ]
    return "\n".join(
        render_table(rows, keys=["quantity"], right={"chi-square", "df", "P"}, wrap_widths={"quantity": 70})
    )
