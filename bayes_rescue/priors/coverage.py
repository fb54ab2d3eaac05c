"""What a prior or bias model says about the data it is applied to, checked before any heavy import.

:func:`check_coverage` refuses a prior that does not cover one of the data's outcomes, a subgroup offset
for a subgroup the data lack (also under ``[effect.default]``), and a bias model without a term for an
outcome; :func:`bundled_content_notes` says when bundled stroke-specific content (a bundled prior's
outcome-specific effect, a bundled bias model) is applied to data that are not the bundled cohort. Both need
only the parsed files (no PyMC), so the command line runs them before it imports the sampler.
"""

from __future__ import annotations

from bayes_rescue.data.counts import BUNDLED_COHORT, CountsData
from bayes_rescue.errors import InputError
from bayes_rescue.priors.bias import BiasModel
from bayes_rescue.priors.spec import DEFAULT_OUTCOME, PriorSpec


def check_coverage(data: CountsData, priors: list[PriorSpec], bias: BiasModel | None = None) -> None:
    """Refuse priors or a bias model that do not fit ``data``.

    Raises
    ------
    InputError
        A prior with no effect prior for one of the data's outcomes (and no ``default``); a subgroup offset
        naming a subgroup the data do not have (for a named outcome, that outcome's subgroups; under
        ``[effect.default]``, those of the outcomes the default applies to); a bias model with no term for an
        outcome (and no ``default``). The message names the file and the field.
    """
    outcomes = data.outcomes
    for prior in priors:
        for outcome in outcomes:
            prior.effect_for(outcome)
        for outcome, table in prior.shifts.items():
            if outcome == DEFAULT_OUTCOME:
                users = [o for o in outcomes if o not in prior.shifts]
            else:
                users = [outcome] if outcome in outcomes else []
            known = {sg for o in users for sg in data.subgroups(o)}
            for sg in table:
                if sg not in known:
                    where = "the outcomes it applies to" if outcome == DEFAULT_OUTCOME else f"outcome '{outcome}'"
                    raise InputError(
                        f"prior '{prior.name}' sets an offset for subgroup '{sg}', which the data do not have for"
                        f" {where} (subgroups: {', '.join(sorted(known)) or 'none'})",
                        source=prior.origin or None,
                        field=f"effect.{outcome}.subgroups.{sg}",
                    )
    if bias is not None:
        for outcome in outcomes:
            bias.term_for(outcome)  # raises naming the outcome


def is_bundled_cohort(data: CountsData) -> bool:
    """True if ``data`` are the bundled cohort (by source, or byte for byte by hash)."""
    if data.source == f"bundled:{BUNDLED_COHORT}":
        return True
    from bayes_rescue.data.counts import load_bundled

    return data.sha256 == load_bundled(BUNDLED_COHORT).sha256


def bundled_content_notes(data: CountsData, priors: list[PriorSpec], bias: BiasModel | None = None) -> list[str]:
    """One line per bundled prior or bias model whose stroke-specific content (an outcome-specific effect
    prior, a bias model's BRANDO-based terms) is applied to data that are not the bundled cohort; empty for
    the bundled cohort, for user files and for a bundled prior's ``default`` effect."""
    if is_bundled_cohort(data):
        return []
    notes = []
    for prior in priors:
        if not prior.origin.startswith("bundled:"):
            continue
        specific = [o for o in data.outcomes if o in prior.effects]
        if specific:
            notes.append(
                f"note: bundled prior '{prior.name}' applies its stroke-specific effect prior for"
                f" {', '.join(specific)} (from the rescue-EVT literature) to data that are not the bundled"
                f" {BUNDLED_COHORT} cohort"
            )
    if bias is not None and bias.origin.startswith("bundled:"):
        notes.append(
            f"note: bundled bias model '{bias.name}' (figures for a non-randomised stroke comparison) is applied"
            f" to data that are not the bundled {BUNDLED_COHORT} cohort"
        )
    return notes
