"""Priors made from other numbers: a normal component calibrated from a reference effect (Spiegelhalter,
Freedman and Parmar's rules, the ``derive`` table of a prior file), and the robust (mixed with a vague
component) and discounted (sd inflated) versions of a prior. Every name is importable from
:mod:`bayes_rescue.priors.spec` too.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from scipy import stats

from bayes_rescue.data.tomlfile import check_keys, number, shown, text
from bayes_rescue.errors import InputError
from bayes_rescue.priors.effects import EffectPrior, NormalComponent

if TYPE_CHECKING:
    from bayes_rescue.priors.spec import PriorSpec

DERIVE_KEYS = {"rule", "trials", "outcome", "tail", "reference_or", "reference_source"}


def check_trials(value, *, src: str, where: str) -> tuple[str, ...]:
    """Trial names a component was derived from; each must be in the package trial table."""
    from bayes_rescue.priors.literature import trial_table

    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InputError("must be a list of trial names", source=src, field=where)
    known = set(trial_table()["source"])
    for t in value:
        if t not in known:
            raise InputError(f"{shown(t)} is not in the package trial table", source=src, field=where)
    return tuple(value)


def derive_component(doc, *, src: str, where: str) -> dict:
    """A calibrated normal component from a rule and a reference effect (see :func:`calibrate_normal`).

    The reference is either the DerSimonian-Laird pooled log OR of ``trials`` in the package trial table
    (so the prior changes when the table changes) or a stated ``reference_or`` with its source.
    """
    from bayes_rescue.priors.literature import pooled_log_or, trial_table

    check_keys(doc, DERIVE_KEYS, source=src, where=where)
    rule = text(doc.get("rule"), source=src, field=f"{where}.rule", required=True)
    if rule not in ("skeptical", "enthusiastic", "pessimistic"):
        raise InputError(
            f"unknown rule {shown(rule)}; use skeptical, enthusiastic or pessimistic", source=src, field=where
        )
    tail = number(doc.get("tail", 0.05), source=src, field=f"{where}.tail")
    if not 0 < tail < 0.5:
        raise InputError(f"must be in (0, 0.5), got {tail}", source=src, field=f"{where}.tail")
    if ("trials" in doc) == ("reference_or" in doc):
        raise InputError("give exactly one of 'trials' or 'reference_or'", source=src, field=where)
    if "trials" in doc:
        trials = doc["trials"]
        if not trials:
            raise InputError("must name at least one trial", source=src, field=f"{where}.trials")
        check_trials(trials, src=src, where=f"{where}.trials")
        outcome = text(doc.get("outcome"), source=src, field=f"{where}.outcome", required=True)
        table = trial_table()
        try:
            pooled = pooled_log_or(tuple(trials), outcome, table)
        except KeyError as exc:
            raise InputError(str(exc.args[0]), source=src, field=f"{where}.trials") from None
        ref = pooled.log_or
        lo, hi = pooled.ci()
        cites = []
        for t in trials:
            rows = table[(table["source"] == t) & (table["outcome"] == outcome)].set_index("arm")
            cites.append(
                f"{t} {rows.loc['treatment', 'events']}/{rows.loc['treatment', 'total']} vs"
                f" {rows.loc['control', 'events']}/{rows.loc['control', 'total']} ({rows.loc['treatment', 'citation']})"
            )
        reference = (
            f"reference: DerSimonian-Laird pooled OR {math.exp(ref):.3f} (95% CI {math.exp(lo):.2f}-{math.exp(hi):.2f},"
            f" log OR {ref:.4f}) for {outcome} over the package trial table: " + "; ".join(cites)
        )
    else:
        ref_or = number(doc["reference_or"], source=src, field=f"{where}.reference_or")
        if ref_or <= 0 or ref_or == 1:
            raise InputError("must be > 0 and not 1", source=src, field=f"{where}.reference_or")
        ref = math.log(ref_or)
        why = text(doc.get("reference_source"), source=src, field=f"{where}.reference_source", required=True)
        reference = f"reference: stated OR {ref_or:g} (log OR {ref:.4f}); {why}"
    mean, sd = calibrate_normal(rule, ref, tail=tail)
    return {
        "name": rule,
        "weight": 1.0,
        "mean": mean,
        "sd": sd,
        "source": f"{rule} rule, tail {tail:g} (sd = |reference log OR| / qnorm({1 - tail:g})); {reference}",
        "trials": list(doc.get("trials", [])),
    }


def robustify(spec: PriorSpec, weight: float = 0.2, *, vague_sd: float = 1.5285) -> PriorSpec:
    """Robust version: each effect prior becomes (1 - weight) x itself + weight x Normal(0, vague_sd).

    The vague component is the ``neutral`` prior's N(0, 1.5285) (95% of OR within 1/20..20). ``weight`` 0
    returns the prior unchanged; 1 gives the vague component alone (Schmidli et al., Biometrics
    2014;70:1023-1032, doi 10.1111/biom.12242, robust MAP priors).
    """
    if not 0 <= weight <= 1:
        raise InputError(f"robust weight must be in [0, 1], got {weight}", field="--robust")
    if weight == 0:
        return spec
    vague = NormalComponent(
        "robust_vague", weight, 0.0, vague_sd, "weakly informative robustness component (neutral sd)"
    )
    effects = {}
    for o, e in spec.effects.items():
        kept = [dataclasses.replace(c, weight=c.weight * (1 - weight)) for c in e.components if weight < 1]
        effects[o] = EffectPrior(
            (*kept, vague), e.rationale + f" Robust: mixed with weight {weight:g} on N(0, {vague_sd:g})."
        )
    return dataclasses.replace(spec, name=f"{spec.name}_robust{weight:g}", effects=effects)


def discount(spec: PriorSpec, factor: float) -> PriorSpec:
    """Discounted version: every component's sd multiplied by ``factor`` (>= 1; variance inflation,
    equivalent for a normal prior to a power prior with weight 1 / factor^2)."""
    if factor < 1:
        raise InputError(f"discount factor must be >= 1, got {factor}", field="--discount")
    if factor == 1:
        return spec
    effects = {
        o: EffectPrior(
            tuple(dataclasses.replace(c, sd=c.sd * factor) for c in e.components),
            e.rationale + f" Discounted: sd x {factor:g}.",
        )
        for o, e in spec.effects.items()
    }
    return dataclasses.replace(spec, name=f"{spec.name}_disc{factor:g}", effects=effects)


def calibrate_normal(rule: str, reference_log_or: float, *, tail: float = 0.05) -> tuple[float, float]:
    """Spiegelhalter-Freedman-Parmar calibration of a normal prior from a reference effect.

    ``skeptical``: mean 0, P(log OR beyond the reference) = ``tail``.
    ``enthusiastic``: mean = reference, P(effect on the other side of 0) = ``tail``.
    ``pessimistic``: mirror image of enthusiastic, mean = -reference.

    Returns
    -------
    (mean, sd) on the log OR scale.
    """
    z = stats.norm.ppf(1 - tail)
    sd = abs(reference_log_or) / z
    if rule == "skeptical":
        return 0.0, sd
    if rule == "enthusiastic":
        return reference_log_or, sd
    if rule == "pessimistic":
        return -reference_log_or, sd
    raise ValueError(f"unknown calibration rule {rule!r}")
