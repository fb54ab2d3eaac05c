"""``bayes-rescue predict``: the coming trial's probability of success (assurance) under a run's posterior.

``predict RUN --outcome O [--subgroup S] --n N [N_CONTROL] [--alpha A] [--sided one|two]
[--test z|chisq|yates|fisher] [--control-rate P|posterior] [--prior NAME] [--design NAME|FILE.toml]
--out FILE.csv [--figure FILE.png|.svg] [--overwrite]``

``--n N`` is a total randomised 1:1 (the odd patient, if any, to treatment); ``--n N_T N_C`` gives the arms;
``--n 50:400:25`` a range of totals (start:stop:step, stop included), which also draws the assurance curve
(``--figure``, default: the CSV's name with ``.png``). ``--design`` fills every analysis value from a design
file; options given explicitly override it. The CSV has one row per sample size and says, per analysis value,
whether it was registered, assumed (design file), set on the command line, or a default.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from bayes_rescue.cli._args import _prob
from bayes_rescue.errors import InputError

#: Largest total sample size accepted (the exact power sums over (n_t + 1) x (n_c + 1) trial results).
MAX_TOTAL = 6000
#: The analysis values and their option names.
KEYS = {
    "outcome": "--outcome",
    "subgroup": "--subgroup",
    "n": "--n",
    "alpha": "--alpha",
    "sided": "--sided",
    "test": "--test",
    "control_rate": "--control-rate",
}


def _control_rate(text: str):
    if text == "posterior":
        return "posterior"
    return _prob("--control-rate")(text)


def add_parser(sub) -> None:
    from bayes_rescue.analyses.prediction import SIDES, TESTS

    p = sub.add_parser("predict", help="probability of success (assurance) of a coming trial under a run's posterior")
    p.add_argument("run_dir", metavar="RUN", type=Path, help="a run folder (models/<run>) or its posterior.nc")
    p.add_argument("--outcome", default=None, help="the run's outcome (default: the design's)")
    p.add_argument("--subgroup", default=None, help="the run's subgroup whose posterior is used (default: overall)")
    p.add_argument(
        "--n",
        nargs="+",
        default=None,
        metavar="N",
        help="total randomised 1:1; or N_T N_C; or totals START:STOP:STEP (default: the design's)",
    )
    p.add_argument(
        "--alpha", type=_prob("--alpha", 0.0, 0.5), default=None, help="test level (default: design's, else 0.025)"
    )
    p.add_argument("--sided", choices=SIDES, default=None, help="alpha is one- or two-sided (default: one)")
    p.add_argument("--test", choices=TESTS, default=None, help="the trial's test (default: the design's, else z)")
    p.add_argument(
        "--control-rate",
        type=_control_rate,
        default=None,
        help="fixed control event rate in (0, 1), keeping the posterior OR; 'posterior' = the run's (default)",
    )
    p.add_argument("--prior", default=None, help="the prior of a several-prior run (default: the only one)")
    p.add_argument("--design", default=None, help="bundled design (rescue-end-low) or .toml (default: none)")
    p.add_argument(
        "--bias",
        default=None,
        help="use the run's fit adjusted by this bias model (fit --bias NAME); default: the unadjusted fit",
    )
    p.add_argument("--out", type=Path, required=True, help="the output CSV")
    p.add_argument(
        "--figure",
        type=Path,
        default=None,
        help="figure of a range of --n, .png/.svg (default: beside --out)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (default: refuse)")
    p.set_defaults(run=run)


def parse_n(values: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """``--n`` to ``(kind, [(n_t, n_c), ...])``: kind ``'total'`` (one total), ``'arms'`` or ``'range'``.

    Raises
    ------
    InputError
        Not whole numbers, a total < 2 or an arm < 1, a malformed or empty range, or more than
        :data:`MAX_TOTAL` patients.
    """
    from bayes_rescue.analyses.prediction import split_total

    def whole(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise InputError(f"must be whole numbers or START:STOP:STEP, got {text!r}", field="--n") from None

    if len(values) == 1 and ":" in values[0]:
        parts = values[0].split(":")
        if len(parts) not in (2, 3):
            raise InputError(f"a range is START:STOP[:STEP], got {values[0]!r}", field="--n")
        start, stop = whole(parts[0]), whole(parts[1])
        step = whole(parts[2]) if len(parts) == 3 else 1
        if step < 1 or stop < start:
            raise InputError(f"a range needs STEP >= 1 and STOP >= START, got {values[0]!r}", field="--n")
        totals = list(range(start, stop + 1, step))
        kind = "range"
    elif len(values) == 1:
        totals = [whole(values[0])]
        kind = "total"
    elif len(values) == 2:
        n_t, n_c = whole(values[0]), whole(values[1])
        if n_t < 1 or n_c < 1:
            raise InputError(f"each arm needs >= 1 patient, got {n_t} and {n_c}", field="--n")
        if n_t + n_c > MAX_TOTAL:
            raise InputError(f"at most {MAX_TOTAL} patients in all, got {n_t + n_c}", field="--n")
        return "arms", [(n_t, n_c)]
    else:
        raise InputError(f"takes one total, two arm sizes or one range, got {len(values)} values", field="--n")
    if max(totals) > MAX_TOTAL:
        raise InputError(f"at most {MAX_TOTAL} patients in all, got {max(totals)}", field="--n")
    return kind, [split_total(n) for n in totals]


def _resolve(args) -> tuple[dict, dict, object]:
    """The analysis values and, per value, its basis: command line > design file > default."""
    from bayes_rescue.analyses.prediction import load_design

    design = load_design(args.design) if args.design is not None else None
    notes = []
    if design is not None and design.origin.startswith("bundled:") and not _run_of_bundled_cohort(args.run_dir):
        # the bundled design's control rate and caveat are about the bundled cohort: not for another study
        notes.append(
            f"note: bundled design '{design.name}' is applied to a run whose data are not the bundled cohort: its"
            " control rate (the cohort's) is not used, the run's posterior is (set --control-rate to fix one),"
            " and its caveat about the cohort does not apply"
        )
        design = dataclasses.replace(
            design,
            control_rate=None,
            facts=tuple(f for f in design.facts if "overlap" not in f.fact),
            sources={k: v for k, v in design.sources.items() if k != "control_rate"},
            assumptions={k: v for k, v in design.assumptions.items() if k != "control_rate"},
        )
    values, basis = {}, {}
    given = {
        "outcome": args.outcome,
        "subgroup": args.subgroup,
        "n": args.n,
        "alpha": args.alpha,
        "sided": args.sided,
        "test": args.test,
        "control_rate": args.control_rate,
    }
    defaults = {"subgroup": "overall", "alpha": 0.025, "sided": "one", "test": "z", "control_rate": "posterior"}
    from_design = {}
    if design is not None:
        from_design = {
            "outcome": design.outcome,
            "subgroup": design.subgroup,
            "n": [str(design.n_treatment), str(design.n_control)],
            "alpha": design.alpha,
            "sided": design.sided,
            "test": design.test,
            "control_rate": design.control_rate if design.control_rate is not None else "posterior",
        }
    for key in KEYS:
        if given[key] is not None:
            values[key], basis[key] = given[key], "command line"
        elif key in from_design:
            values[key] = from_design[key]
            if key == "n":
                kinds = {design.basis("n_treatment"), design.basis("n_control")}
                basis[key] = "assumed" if "assumed" in kinds else kinds.pop()
            elif key == "control_rate" and design.control_rate is None:
                basis[key] = "default"
            else:
                basis[key] = design.basis(key)
        elif key in defaults:
            values[key], basis[key] = defaults[key], "default"
        else:
            raise InputError("is required (or give --design)", field=KEYS[key])
    if values["control_rate"] == "posterior":
        basis["control_rate"] = f"{basis['control_rate']} (the run's posterior)"
    for note in notes:
        print(note, file=sys.stderr)
    return values, basis, design


def _run_of_bundled_cohort(run: Path) -> bool:
    """True if the run's manifest says its data are the bundled cohort (by source or sha256); False when it
    says otherwise or cannot be read (then the bundled cohort's numbers are not applied)."""
    import json

    from bayes_rescue.data.counts import BUNDLED_COHORT, load_bundled
    from bayes_rescue.data.files import read_input_bytes

    folder = run.parent if run.suffix == ".nc" else run
    try:
        doc = json.loads(read_input_bytes(folder / "manifest.json", what="manifest").decode("utf-8"))
        data = doc["data"]
        source, sha = data.get("source"), data.get("sha256")
    except (InputError, UnicodeDecodeError, ValueError, RecursionError, KeyError, TypeError, AttributeError):
        return False
    return source == f"bundled:{BUNDLED_COHORT}" or sha == load_bundled(BUNDLED_COHORT).sha256


def _direction(run: Path, outcome: str) -> str:
    """The outcome's direction from the run's ``summary.csv`` (else the known outcome names)."""
    import pandas as pd

    from bayes_rescue.data.counts import KNOWN_DIRECTIONS

    folder = run.parent if run.suffix == ".nc" else run
    summary = folder / "summary.csv"
    if summary.is_file():
        table = pd.read_csv(summary, usecols=["outcome", "direction"])
        found = table.loc[table["outcome"] == outcome, "direction"]
        if len(found):
            return str(found.iloc[0])
    if outcome in KNOWN_DIRECTIONS:
        return KNOWN_DIRECTIONS[outcome]
    raise InputError(f"cannot tell whether more or fewer events of '{outcome}' is better", source=run)


def _load_draws(args, values: dict) -> dict:
    from bayes_rescue.outputs.trees import load_run_draws

    kwargs = {"outcome": values["outcome"], "subgroup": values["subgroup"], "prior": args.prior}
    return load_run_draws(args.run_dir, bias=args.bias, **kwargs)


def _refuse_existing(path: Path, overwrite: bool, option: str) -> None:
    if path.exists() and not overwrite:
        raise InputError("already exists; pass --overwrite to replace it", source=path, field=option)
    if path.exists() and path.is_dir():
        raise InputError("is a directory", source=path, field=option)


def _atomic_write(path: Path, write, *, overwrite: bool, field: str) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path`` (same suffix), then move it into place
    (:func:`bayes_rescue.outputs.rundir.atomic_write`). Without ``overwrite`` the move is a hard link, which
    fails if the name exists: a file that appeared after the check up front is never replaced."""
    from bayes_rescue.outputs.rundir import atomic_write

    return atomic_write(path, write, overwrite=overwrite, field=field)


def cmd_predict(args) -> int:
    import numpy as np
    import pandas as pd

    from bayes_rescue.analyses.prediction import (
        TEST_LABELS,
        assurance,
        assurance_curve,
        median_effect,
        with_control_rate,
    )
    from bayes_rescue.outputs import wording as w
    from bayes_rescue.outputs.console import wrap_text
    from bayes_rescue.outputs.rundir import write_csv
    from bayes_rescue.outputs.trees import run_labels

    values, basis, design = _resolve(args)
    kind, sizes = parse_n([str(v) for v in values["n"]])
    if args.out.suffix.lower() != ".csv":
        raise InputError("must name a .csv file", source=args.out, field="--out")
    figure = None
    if kind == "range":
        figure = args.figure if args.figure is not None else args.out.with_suffix(".png")
        if figure.suffix.lower() not in (".png", ".svg"):
            raise InputError("must name a .png or .svg file", source=figure, field="--figure")
    elif args.figure is not None:
        raise InputError("draws the curve of a range of --n (START:STOP:STEP)", field="--figure")
    _refuse_existing(args.out, args.overwrite, "--out")
    if figure is not None:
        _refuse_existing(figure, args.overwrite, "--figure")

    draws = _load_draws(args, values)
    direction = _direction(args.run_dir, values["outcome"])
    if values["control_rate"] == "posterior":
        p_c, p_t = draws["p_control"], draws["p_treatment"]
    else:
        p_c, p_t = with_control_rate(draws["log_or"], values["control_rate"])
    design_kw = {"alpha": values["alpha"], "test": values["test"], "direction": direction, "sided": values["sided"]}
    if kind == "range":
        table = assurance_curve(p_c, p_t, n_values=[a + b for a, b in sizes], **design_kw)
    else:
        (n_t, n_c) = sizes[0]
        a = assurance(p_c, p_t, n_t=n_t, n_c=n_c, **design_kw)
        table = pd.DataFrame([a.row()])
    pc_med, pt_med = median_effect(p_c, p_t)
    assumed = [k for k in KEYS if basis[k] == "assumed"]
    basis_text = "; ".join(f"{k}: {basis[k]}" for k in KEYS)
    context = {
        "run": str(args.run_dir),
        "prior": args.prior or "",
        "bias": args.bias or "",
        "outcome": values["outcome"],
        "subgroup": values["subgroup"],
        "direction": direction,
        "design": design.name if design is not None else "",
        "test": values["test"],
        "test_description": TEST_LABELS[values["test"]],
        "alpha": values["alpha"],
        "sided": values["sided"],
        "control_rate": np.nan if values["control_rate"] == "posterior" else values["control_rate"],
        "p_c_median": pc_med,
        "p_t_median": pt_med,
        "odds_ratio_median": float(np.median(draws["odds_ratio"])),
        "n_draws": int(np.asarray(p_c).size),
    }
    out = table.copy()
    for i, (k, v) in enumerate(context.items()):
        out.insert(i, k, v)
    out["assumed"] = ", ".join(assumed)
    out["basis"] = basis_text
    _atomic_write(args.out, lambda tmp: write_csv(out, tmp), overwrite=args.overwrite, field="--out")

    # ---- the printed result
    title = f"{design.name} ({design.registry})" if design is not None and design.registry else "the coming trial"
    cr = (
        "the run's posterior control rate"
        if values["control_rate"] == "posterior"
        else f"control rate fixed at {values['control_rate']:.4g}, posterior odds ratio kept"
    )
    labels = run_labels(args.run_dir)
    where = w.with_name(
        w.estimand_label(values["outcome"], values["subgroup"], labels, sep=" / "),
        f"{values['outcome']}/{values['subgroup']}",
    )
    benefit = w.direction_phrase(direction, w.outcome_label(values["outcome"], labels))
    print(
        wrap_text(
            f"{title}: {where} (benefit: {benefit}), posterior of {args.run_dir}"
            + (f" (prior {w.prior_label(args.prior)})" if args.prior else "")
        )
    )
    level = f"{'one' if values['sided'] == 'one' else 'two'}-sided alpha {values['alpha']:g}"
    print(f"analysis: {TEST_LABELS[values['test']]}, {level}; {cr}")
    print(f"posterior median effect: OR {context['odds_ratio_median']:.2f}; at p_c = {pc_med:.3f}, p_t = {pt_med:.3f}")
    if kind == "range":
        print(f"{'n total':>8} {'n_t':>5} {'n_c':>5}  {'PoS':>6} {'MCSE':>7}  {'cond. power':>11}")
        for r in table.itertuples():
            print(f"{r.n_total:>8} {r.n_t:>5} {r.n_c:>5}  {r.pos:6.3f} {r.pos_mcse:7.4f}  {r.conditional_power:11.3f}")
    else:
        r = table.iloc[0]
        print(
            f"n = {int(r.n_t)} treated + {int(r.n_c)} control: probability of success {r.pos:.3f}"
            f" (MCSE {r.pos_mcse:.4f}, ESS {r.ess:.0f}); power at the posterior median effect"
            f" {r.conditional_power:.3f}"
        )
    print("basis of the analysis values: " + basis_text)
    if assumed:
        print(f"ASSUMED (not registered; override on the command line): {', '.join(assumed)}")
    if design is not None:
        for f in design.facts:
            if "overlap" in f.fact:
                print(f"caveat ({f.fact}): {f.value}")
    if kind == "range":
        from bayes_rescue.outputs.figures import plot_assurance

        mark = design.n_treatment + design.n_control if design is not None else None
        estimand = w.estimand_label(values["outcome"], values["subgroup"], labels, sep=" / ")
        label = f"{estimand}, {values['test']} test, {level}"
        _atomic_write(
            figure,
            lambda tmp: plot_assurance(table, tmp, title=label, mark_n=mark),
            overwrite=args.overwrite,
            field="--figure",
        )
        print(f"written: {args.out}, {figure}")
    else:
        print(f"written: {args.out}")
    return 0


def run(args, argv: list[str]) -> int:
    return cmd_predict(args)
