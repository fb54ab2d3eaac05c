"""Where every prior came from and what it implies for the cohort, as a table (and a figure).

For each prior x outcome: the source trials or figures, the centre and spread on the log OR, the implied
prior on the risk difference at the cohort's own control risk (a prior-predictive check in clinical units:
RD = expit(logit p_c + log OR) - p_c, a monotone map, so its quantiles are the mapped log-OR quantiles),
and the prior effective sample size in patients by ELIR (:func:`bayes_rescue.priors.ess_patients`).

The control risk is the pooled observed one, y_c / n_c; when that is 0 or 1 (no control events, or all)
the implied RD and the ESS would be degenerate (one patient then carries no information, so the ESS is
infinite), and the risk is taken as (y_c + 0.5) / (n_c + 1) instead (the continuity-corrected estimate).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from bayes_rescue.data.counts import CountsData
from bayes_rescue.priors.spec import PriorSpec, ess_patients


def source_trials(prior) -> str:
    """Trials the components were derived from (their ``trials`` field), or how the prior was set."""
    names = [t for c in prior.components for t in c.trials]
    if names:
        return ", ".join(dict.fromkeys(names))
    return "- (stated effect; see --verbose)"


def prior_table(specs: list[PriorSpec], data: CountsData) -> pd.DataFrame:
    """One row per prior x outcome of ``data`` (see the module docstring)."""
    cells = data.cells()
    rows = []
    for spec in specs:
        for outcome in data.outcomes:
            e = spec.effect_for(outcome)
            sub = cells[cells["outcome"] == outcome]
            y_c, n_c = int(sub["y_c"].sum()), int(sub["n_c"].sum())
            p_c = y_c / n_c if 0 < y_c < n_c else (y_c + 0.5) / (n_c + 1)
            q = np.array([e.ppf(0.025), e.ppf(0.5), e.ppf(0.975)])
            rd = special.expit(special.logit(p_c) + q) - p_c
            sign = 1.0 if data.directions[outcome] == "higher" else -1.0
            rows.append(
                {
                    "prior": spec.name,
                    "outcome": outcome,
                    "components": len(e.components),
                    "source_trials": source_trials(e),
                    "log_or_mean": e.mean,
                    "log_or_sd": e.sd,
                    "log_or_eti95_lb": q[0],
                    "log_or_median": q[1],
                    "log_or_eti95_ub": q[2],
                    "or_median": float(np.exp(q[1])),
                    "p_control": p_c,
                    "rd_median": rd[1],
                    "rd_eti95_lb": rd[0],
                    "rd_eti95_ub": rd[2],
                    "prior_p_benefit": float(1 - e.cdf(0.0)) if sign > 0 else float(e.cdf(0.0)),
                    "ess_patients": ess_patients(e, p_c),
                    "subgroup_shifts": "; ".join(
                        f"{k} {v.offset:+.3g}" for k, v in spec.shifts.get(outcome, {}).items()
                    ),
                }
            )
    return pd.DataFrame(rows)


def describe_priors(table: pd.DataFrame) -> str:
    head = (
        f"{'prior':<24}{'outcome':<11}{'K':>2}  {'log OR median (95%)':<24}{'implied RD (95%) at p_c':<30}"
        f"{'P(ben)':>7}{'ESS':>8}  source trials"
    )
    lines = [head, "-" * len(head)]

    def ess(v: float) -> str:
        return f"{v:>8.0f}" if np.isfinite(v) else f"{'n/a':>8}"

    for r in table.itertuples():
        lo = f"{r.log_or_median:+.2f} ({r.log_or_eti95_lb:+.2f}, {r.log_or_eti95_ub:+.2f})"
        rd = f"{100 * r.rd_median:+.1f} ({100 * r.rd_eti95_lb:+.1f}, {100 * r.rd_eti95_ub:+.1f}) pp @{r.p_control:.2f}"
        lines.append(
            f"{r.prior:<24}{r.outcome:<11}{r.components:>2}  {lo:<24}{rd:<30}{r.prior_p_benefit:>7.3f}"
            f"{ess(r.ess_patients)}  {r.source_trials}"
        )
    lines.append(
        "\nESS: prior effective sample size in patients of a 1:1 trial at the cohort's control risk, by the"
        " expected local-information ratio (Neuenschwander et al., Biometrics 2020, doi 10.1111/biom.13252)."
    )
    return "\n".join(lines)
