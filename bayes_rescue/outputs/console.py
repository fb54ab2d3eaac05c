"""Text for the console: tables and sentences in lines of at most 100 columns, in the readers' words.

Every name is the data file's label (:mod:`bayes_rescue.outputs.wording`); a raw name follows its label in
parentheses once per output, where it differs, so a reader can find the row in the CSV files. Names are never
cut: a long label wraps inside its column (a single word longer than the column is folded, every character
kept). A table wider than the console continues below, the name columns repeated.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence

import pandas as pd

from bayes_rescue.data.counts import OVERALL, Labels
from bayes_rescue.model.estimands import prob_column
from bayes_rescue.outputs import wording as w

#: Width of the console output (characters).
CONSOLE_WIDTH = 100
#: Widest the name columns of the console tables grow before their text wraps.
NAME_WIDTHS = {"prior": 14, "outcome": 20, "subgroup": 22}


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in an ellipsis when cut (not used for names any more:
    the console wraps them, see :func:`render_table`)."""
    text = str(text)
    return text if len(text) <= width else text[: max(0, width - 1)] + "\u2026"


def wrap(text: str, width: int = CONSOLE_WIDTH, *, indent: str = "    ") -> list[str]:
    """``text`` as lines of at most ``width`` characters, continuation lines indented by ``indent``; words
    (and names, paths) longer than a line are folded, never cut."""
    return textwrap.wrap(
        text, width=width, subsequent_indent=indent, break_on_hyphens=False, break_long_words=True
    ) or [""]


def wrap_text(text: str, width: int = CONSOLE_WIDTH, *, indent: str = "    ") -> str:
    """:func:`wrap` joined into one string."""
    return "\n".join(wrap(text, width, indent=indent))


class Names:
    """Labels for one output, with each raw name shown once, in parentheses, at its first mention."""

    def __init__(self, labels: Labels | None = None) -> None:
        self.labels = labels if labels is not None else Labels()
        self._seen: set = set()

    def _once(self, key, label: str, name: str) -> str:
        if key in self._seen:
            return label
        self._seen.add(key)
        return w.with_name(label, name)

    def outcome(self, outcome: str, *, raw: bool = True) -> str:
        """The outcome's label; the first time (with ``raw``), followed by its name."""
        label = w.outcome_label(outcome, self.labels)
        return self._once(("o", outcome), label, outcome) if raw else label

    def subgroup(self, outcome: str, subgroup: str, *, raw: bool = True) -> str:
        """The subgroup's label; the first time (with ``raw``), followed by its name."""
        label = w.subgroup_label(outcome, subgroup, self.labels)
        return self._once(("s", outcome, subgroup), label, subgroup) if raw else label

    def arm(self, arm: str) -> str:
        return w.arm_label(arm, self.labels)


def block_heading(names: Names, outcome: str, subgroups: Iterable[str], *, width: int = CONSOLE_WIDTH) -> list[str]:
    """The heading of one outcome's block of a table: its label and the labels of its subgroups, each followed
    (at its first mention in the output) by its raw name, so that the table's cells carry labels alone."""
    subs = ", ".join(names.subgroup(outcome, s) for s in dict.fromkeys(subgroups) if s != OVERALL)
    return wrap(f"{names.outcome(outcome)}" + (f"; subgroups: {subs}" if subs else "") + ":", width, indent="  ")


def _cell_lines(text: str, width: int) -> list[str]:
    """A cell's text in lines of ``width``: broken between words, then after a hyphen inside a word, and a
    word still longer than the column is folded (every character kept)."""
    return textwrap.wrap(text, width=width, break_on_hyphens=True) or [""]


def render_table(
    rows: Sequence[dict[str, str]],
    *,
    keys: Sequence[str] = (),
    right: Iterable[str] = (),
    wrap_widths: dict[str, int] | None = None,
    width: int = CONSOLE_WIDTH,
) -> list[str]:
    """Rows of strings (column heading -> cell) as a text table, two spaces between columns.

    Columns in ``wrap_widths`` wrap their text (and heading) at that width, or wider where a table that fits
    in ``width`` leaves room (a name is never cut). The
    ``keys`` columns are repeated in every part when the table is wider than ``width``: the other columns
    continue in further tables below. ``right`` columns are right aligned.
    """
    if not rows:
        return []
    wrap_widths = wrap_widths or {}
    right = set(right)
    cols = list(rows[0])

    widths = {}
    for c in cols:
        cells = [r[c] for r in rows]
        if c in wrap_widths:
            widths[c] = min(wrap_widths[c], max(len(x) for x in [c, *cells]))
        else:
            widths[c] = max(len(x) for x in [c, *cells])
    slack = width - (sum(widths.values()) + 2 * (len(cols) - 1))
    for c in wrap_widths:  # a table that fits: its wrapping columns grow into the room left, to wrap less
        if c in widths and slack > 0:
            grow = min(slack, max(len(x) for x in [c, *(r[c] for r in rows)]) - widths[c])
            widths[c] += max(0, grow)
            slack -= max(0, grow)
    parts: list[list[str]] = []
    current: list[str] = []
    base = sum(widths[k] + 2 for k in keys)
    used = base
    for c in cols:
        if c in keys:
            continue
        if current and used + widths[c] > width:
            parts.append(current)
            current, used = [], base
        current.append(c)
        used += widths[c] + 2
    parts.append(current)

    def block(cells: dict[str, list[str]], shown: list[str]) -> list[str]:
        height = max(len(v) for v in cells.values())
        out = []
        for i in range(height):
            texts = []
            for c in shown:
                t = cells[c][i] if i < len(cells[c]) else ""
                texts.append(t.rjust(widths[c]) if c in right else t.ljust(widths[c]))
            out.append("  ".join(texts).rstrip())
        return out

    lines: list[str] = []
    for i, part in enumerate(parts):
        shown = [*keys, *part]
        if i:
            lines.append("")
        head = block({c: _cell_lines(c, widths[c]) for c in shown}, shown)
        lines += head
        lines.append("-" * (sum(widths[c] for c in shown) + 2 * (len(shown) - 1)))
        for r in rows:
            lines += block({c: _cell_lines(r[c], widths[c]) for c in shown}, shown)
    return lines


def _level(table: pd.DataFrame) -> tuple[str, str]:
    pct = next(c for c in table.columns if c.startswith("rd_eti") and c.endswith("_lb"))
    pct = pct.removeprefix("rd_").removesuffix("_lb")
    return pct, pct.removeprefix("eti")


def _mcids_of(table: pd.DataFrame) -> tuple[float, ...]:
    return tuple(float(c.removeprefix("p_benefit_ge_")) for c in table.columns if c.startswith("p_benefit_ge_"))


def _ess(x) -> str:
    return "n/a" if x is None or not math.isfinite(float(x)) else f"{float(x):.0f}"


def describe(
    table: pd.DataFrame,
    *,
    labels: Labels | None = None,
    mcids: Sequence[float] | None = None,
    treatment: str | None = None,
    control: str | None = None,
    width: int = CONSOLE_WIDTH,
) -> str:
    """The fit for people, in lines of at most ``width`` characters, per outcome: a heading that says what
    benefit means, a table of effects (RD and NNT) and one of probabilities and diagnostics; then one sentence
    per cohort-level row and a warning line for every power-scaling diagnosis of the prior.

    Names are the labels of ``labels`` (the data file's); probabilities are written by
    :func:`~bayes_rescue.outputs.wording.format_probability`; the full numbers are in summary.csv. ``mcids``
    default to the table's ``p_benefit_ge_<m>`` columns; ``treatment`` and ``control`` to the arm labels.
    """
    names = Names(labels)
    treatment = treatment or names.arm("treatment")
    control = control or names.arm("control")
    mcids = _mcids_of(table) if mcids is None else tuple(mcids)
    pct, level = _level(table)
    ci = float(level) / 100
    rd_head, nnt_head = w.interval_heading("RD, pp", ci), w.interval_heading("NNT", ci)
    lines = [
        f"RD = risk difference, {treatment} - {control}, in percentage points (pp): median ({level}% ETI,"
        " equal-tailed interval); NNT in Altman's form, with a point NNT only where the interval excludes"
        " no effect.",
    ]
    lines = [x for t in lines for x in wrap(t, width, indent="")]
    wraps = {"prior": NAME_WIDTHS["prior"], "subgroup": NAME_WIDTHS["subgroup"]}
    for outcome, part in table.groupby("outcome", sort=False):
        direction = part["direction"].iloc[0]
        label = names.outcome(outcome, raw=False)
        subs = ", ".join(names.subgroup(outcome, s) for s in dict.fromkeys(part["subgroup"]) if s != OVERALL)
        meaning = w.benefit_meaning(direction, label, treatment=treatment, control=control)
        head = f"{names.outcome(outcome)}: benefit = {meaning}"
        lines += ["", *wrap(head + (f"; subgroups: {subs}" if subs else ""), width, indent="  ")]
        effects, probs = [], []
        for _, r in part.iterrows():
            key = {"prior": w.prior_label(r["prior"]), "subgroup": names.subgroup(outcome, r["subgroup"], raw=False)}
            rd = f"{100 * r['rd_median']:+.1f} ({100 * r[f'rd_{pct}_lb']:+.1f}, {100 * r[f'rd_{pct}_ub']:+.1f})"
            effects.append({**key, rd_head: rd, nnt_head: w.nnt_display(r, ci)})
            probs.append(
                {
                    **key,
                    w.heading("p_benefit"): w.format_probability(r["p_benefit"]),
                    **{w.mcid_heading(m): w.format_probability(r.get(prob_column("benefit", m))) for m in mcids},
                    w.heading("p_harm"): w.format_probability(r["p_harm"]),
                }
            )
        lines.append("")
        lines += render_table(effects, keys=list(wraps), wrap_widths=wraps, width=width)
        lines.append("")
        right = set(probs[0]) - set(wraps)
        lines += render_table(probs, keys=list(wraps), right=right, wrap_widths=wraps, width=width)
    lines += ["", *diagnostics_lines(table, width=width), ""]
    for _, r in table[table["level"] == "cohort"].iterrows():
        label = names.outcome(r["outcome"], raw=False)
        text = (
            f"Under the {_under(r['prior'], r.get('bias'))}, {label}, whole cohort: risk difference"
            f" {100 * r['rd_median']:+.1f} percentage points ({level}% ETI {100 * r[f'rd_{pct}_lb']:+.1f} to"
            f" {100 * r[f'rd_{pct}_ub']:+.1f}); probability of benefit"
            f" ({w.benefit_meaning(r['direction'], label, treatment=treatment, control=control)})"
            f" = {w.format_probability(r['p_benefit'])}"
            + "".join(
                f", of {w.mcid_phrase(m) if i == 0 else f'at least {100 * m:g}'}"
                f" = {w.format_probability(r.get(prob_column('benefit', m)))}"
                for i, m in enumerate(mcids)
            )
            + "."
        )
        lines += wrap(text, width)
    lines += psense_warnings(table, labels=names.labels, width=width)
    return "\n".join(lines)


def diagnostics_lines(table: pd.DataFrame, *, width: int = CONSOLE_WIDTH) -> list[str]:
    """The sampler diagnostics per prior, over every reported RD and log OR of its fit: max R-hat, min bulk
    ESS, min tail ESS (and divergences, where the table has them)."""
    rows = []
    for prior, part in table.groupby("prior", sort=False):
        row = {
            "prior": w.prior_label(prior),
            w.heading("rhat_max"): f"{part['rhat_max'].max():.3f}",
            w.heading("ess_bulk_min"): _ess(part["ess_bulk_min"].min()),
            w.heading("ess_tail_min"): _ess(part["ess_tail_min"].min()),
        }
        if "divergences" in part:
            row[w.heading("divergences")] = f"{int(part['divergences'].max())}"
        rows.append(row)
    head = "Sampler diagnostics, worst over the estimands of each fit (per estimand in summary.csv):"
    wraps = {"prior": NAME_WIDTHS["prior"]}
    return [
        *wrap(head, width, indent=""),
        *render_table(rows, keys=["prior"], right=set(rows[0]) - {"prior"}, wrap_widths=wraps, width=width),
    ]


def _under(prior: str, bias: str | None) -> str:
    """``skeptical prior`` or ``skeptical prior, adjusted for the bias model observational``."""
    adjusted = isinstance(bias, str) and bias not in ("", "none")
    return f"{w.prior_label(prior)} prior" + (f", adjusted for the bias model {bias}" if adjusted else "")


def psense_warnings(table: pd.DataFrame, *, labels: Labels | None = None, width: int = CONSOLE_WIDTH) -> list[str]:
    """One warning line per prior and power-scaling diagnosis of the RD (``rd_psense_diagnosis``, e.g.
    "potential prior-data conflict"), naming the estimands it concerns; none where the column is absent."""
    if "rd_psense_diagnosis" not in table.columns:
        return []
    out = []
    flagged = table[table["rd_psense_diagnosis"].map(lambda d: isinstance(d, str) and d.strip() not in ("", "-", "ok"))]
    for (prior, diagnosis), part in flagged.groupby(["prior", "rd_psense_diagnosis"], sort=False):
        bias = part["bias"].iloc[0] if "bias" in part else None
        where = "; ".join(w.estimand_label(r["outcome"], r["subgroup"], labels) for _, r in part.iterrows())
        kind = "WARNING" if "conflict" in diagnosis else "note"
        text = (
            f"{kind}: power-scaling sensitivity, under the {_under(prior, bias)}: {diagnosis} for the"
            f" risk difference of {where} (rd_prior_sensitivity and rd_likelihood_sensitivity in summary.csv)."
        )
        out += wrap(text, width)
    return out


def _num(x, spec: str) -> str:
    return "n/a" if x is None or not math.isfinite(float(x)) else format(float(x), spec)


def tipping_bias_text(tips: pd.DataFrame, *, labels: Labels | None = None, width: int = CONSOLE_WIDTH) -> str:
    """The tipping-bias table for the console (``bias_tipping.csv`` for people): per prior and estimand, the
    mean bias towards benefit (log OR, and as a ratio of ORs) at which P(benefit) falls to each level."""
    names = Names(labels)
    lines = wrap(
        "Tipping bias: the mean bias towards benefit (log OR; ROR = ratio of odds ratios) at which P(benefit)"
        " falls to the level, at the bias model's sd, with its Monte Carlo error (bias_tipping.csv; 'below"
        " grid': already below at -1).",
        width,
        indent="",
    )
    wraps = {"prior": NAME_WIDTHS["prior"], "subgroup": NAME_WIDTHS["subgroup"], "status": 12}
    right = {"level", "tipping bias", "MC error", "ROR", "model mean"}
    for outcome, part in tips.groupby("outcome", sort=False):
        rows = [
            {
                "prior": w.prior_label(r["prior"]),
                "subgroup": names.subgroup(outcome, r["subgroup"], raw=False),
                "level": f"{r['level']:g}",
                "tipping bias": _num(r["tipping_bias_mean"], ".2f"),
                "MC error": _num(r.get("tipping_bias_mean_mcse", float("nan")), ".3f"),
                "ROR": _num(r["tipping_ror"], ".2f"),
                "model mean": _num(r["model_bias_mean"], ".2f"),
                "status": str(r["status"]),
            }
            for _, r in part.iterrows()
        ]
        lines += ["", *block_heading(names, outcome, part["subgroup"], width=width)]
        lines += render_table(rows, keys=["prior", "subgroup"], right=right, wrap_widths=wraps, width=width)
    return "\n".join(lines)


def fitting_line(fit_names: Sequence[str], model: str, *, width: int = CONSOLE_WIDTH) -> str:
    """The status line before sampling: ``fitting 'skeptical' (hierarchical) ...``, several fits counted and
    wrapped: ``fitting 14 fits (hierarchical): 'neutral', ...``."""
    quoted = ", ".join(f"'{n}'" for n in fit_names)
    if len(fit_names) == 1:
        return wrap_text(f"fitting {quoted} ({model}) ...", width)
    return wrap_text(f"fitting {len(fit_names)} fits ({model}): {quoted} ...", width)


def written_line(target, files: Sequence[str], *, width: int = CONSOLE_WIDTH) -> str:
    """``results written to <folder>/ (a, b, ...)``, wrapped within ``width``."""
    return wrap_text(f"results written to {target}/ ({', '.join(files)})", width)


#: The crude tests of ``check``, by column of :func:`bayes_rescue.data.check.check_table`.
CHECK_TESTS = {"p_fisher": "Fisher exact", "p_chi2": "Pearson chi-square", "p_chi2_yates": "Yates chi-square"}


def check_text(table: pd.DataFrame, *, labels: Labels | None = None, width: int = CONSOLE_WIDTH) -> str:
    """What the counts give (:func:`bayes_rescue.data.check.check_table`) and whether it matches what was
    reported, one statement per outcome x subgroup in the data file's labels, wrapped within ``width``."""
    names = Names(labels)
    t, c = names.arm("treatment"), names.arm("control")
    out = []
    for _, r in table.iterrows():
        where = f"{names.outcome(r['outcome'])}, {names.subgroup(r['outcome'], r['subgroup'])}"
        text = (
            f"{where}: {t} {r['y_t']}/{r['n_t']} ({100 * r['risk_t']:.1f}%) vs {c} {r['y_c']}/{r['n_c']}"
            f" ({100 * r['risk_c']:.1f}%), RD {100 * r['rd']:+.1f} percentage points; "
            + ", ".join(f"{CHECK_TESTS[k]} P={r[k]:.3f}" for k in CHECK_TESTS if not math.isnan(r[k]))
        )
        rep = r["reported_p"]
        matching = [CHECK_TESTS[k] for k in CHECK_TESTS if rep and r[f"{k}_agrees"]]
        if not rep:
            text += "; no reported P to compare."
        elif matching:
            text += f"; reported P={rep} AGREES with: {', '.join(matching)}."
        else:
            smaller = min(r[k] for k in CHECK_TESTS if not math.isnan(r[k]))
            text += (
                f"; reported P={rep} DOES NOT match any crude test (the crude tests give"
                f" {'smaller' if smaller < float(rep) else 'larger'} P values). It may come from an adjusted model"
                " (e.g. logistic regression on baseline covariates), another test, or counts other than those"
                " printed; the Bayesian reanalysis uses the printed counts."
            )
        out += wrap(text, width)
    return "\n".join(out)


def export_heading(outcome: str, subgroup: str, *, labels: Labels | None, prior: str, n_draws: int) -> str:
    """The first line of ``export``: whose posterior log OR is approximated, in labels (the raw
    ``outcome/subgroup`` once, in parentheses, as ``--outcome`` / ``--subgroup`` take it)."""
    where = w.with_name(w.estimand_label(outcome, subgroup, labels), f"{outcome}/{subgroup}")
    return wrap_text(f"posterior log OR of {where} (prior '{w.prior_label(prior)}', {n_draws} draws):")
