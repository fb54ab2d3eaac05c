"""Bias models as data: TOML files read with :mod:`tomllib`, every number cited.

A bias model says how far a study's design is expected to have moved its treatment effect, as an **additive
bias on the log odds ratio** (Turner, Spiegelhalter, Smith & Thompson, J R Stat Soc A 2009;172(1):21-47,
doi 10.1111/j.1467-985X.2008.00547.x, PMID 19381328). For outcome *o* with control logit ``alpha`` and true
(bias-adjusted) log OR ``delta``::

    logit p_control   = alpha
    logit p_treatment = alpha + delta + beta_o
    beta_o ~ Normal(s_o * mean_benefit_o, sd_o)        s_o = +1 if direction is 'higher', -1 if 'lower'

``mean_benefit`` is the expected bias *towards apparent benefit* on the log OR scale (>= 0 means the design
exaggerates benefit). Because a benefit is a larger odds of the event when more events are better
(``direction = 'higher'``, e.g. mRS 0-2) and a smaller odds when fewer are better (``'lower'``, e.g.
mortality), the signed mean on the outcome's own log OR is ``+mean_benefit`` or ``-mean_benefit``
(:meth:`BiasModel.log_or_mean`). The reported effect is ``delta``. A single study cannot tell ``delta`` from
``beta``: with a normal likelihood of the observed log OR ``y ~ N(delta + beta, v)``, integrating ``beta`` out
gives ``y - s m ~ N(delta, v + sd^2)``, i.e. the bias shifts the estimate by ``s m`` and adds ``sd^2`` to its
variance (Turner 2009, section 3).

Meta-epidemiological studies report the **ratio of odds ratios** (ROR) of flawed versus sound trials, with
outcomes coded so that ROR < 1 means the flawed trials show more benefit; a component with published ROR has
``log_ror = ln(ROR)`` and contributes ``-log_ror`` to ``mean_benefit``. Format::

    name = "observational"
    description = "one line"
    rationale = "the judgement, in words: how the cited figures become mean and sd"

    [bias.mrs_0_2]              # an outcome name, or "default" for any outcome not listed
    mean_benefit = 0.5347       # log OR of bias towards apparent benefit; |mean_benefit| <= 5
    sd = 0.4385                 # 0 < sd <= 5
    combine = "sum"             # optional: mean_benefit = -sum(log_ror), sd = sqrt(sum(sd^2)) of the components
    source = "studies, citations (DOI/PMID) and the figures used"
    assumption = "..."          # required when the numbers are a judgement (no 'combine' rule)

    [[bias.mrs_0_2.components]] # the cited ingredients
    name = "allocation concealment, subjective outcomes"
    log_ror = -0.1985           # ln(ROR); |log_ror| <= 5
    sd = 0.0752                 # 0 < sd <= 5 (the SE from the 95% interval, or a judged spread)
    source = "study, citation and the table or figure"
    assumption = "..."          # where the number is a judgement, not a published figure

With ``combine = "sum"`` the components are independent normal terms and the loader checks that the stated
``mean_benefit`` and ``sd`` are their sum (to 5e-4, files carry four decimals). Unknown keys are errors, as are
missing sources, numbers out of bounds and judgements without an ``assumption`` note.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from bayes_rescue.data.names import check_name
from bayes_rescue.data.tomlfile import check_count, check_keys, number, require_table, shown, text
from bayes_rescue.errors import InputError
from bayes_rescue.priors.spec import DEFAULT_OUTCOME, MAX_COMPONENTS, MAX_EFFECTS, for_outcome, read_named_toml

#: The bias model that ``--bias`` without a name means.
DEFAULT_BIAS = "observational"
#: Bound on |mean_benefit|, |log_ror| and sd (log OR units; e^5 ~ 148-fold).
MAX_ABS = 5.0
#: Tolerance of the ``combine = "sum"`` check (the files carry four decimals).
COMBINE_TOL = 5e-4
DIRECTIONS = ("higher", "lower")

_TOP_KEYS = {"name", "description", "rationale", "bias"}
_TERM_KEYS = {"mean_benefit", "sd", "source", "assumption", "combine", "components"}
_COMPONENT_KEYS = {"name", "log_ror", "sd", "source", "assumption"}
_COMBINE_RULES = ("sum",)


@dataclass(frozen=True)
class BiasComponent:
    """One cited ingredient of a bias term: ``log_ror = ln(ROR)`` (< 0 exaggerates benefit) and its sd."""

    name: str
    log_ror: float
    sd: float
    source: str
    assumption: str = ""

    @property
    def ror(self) -> float:
        """The ratio of odds ratios, ``exp(log_ror)``."""
        return math.exp(self.log_ror)


@dataclass(frozen=True)
class BiasTerm:
    """The bias on one outcome's log OR: ``Normal(+-mean_benefit, sd)``, signed by the outcome's direction."""

    mean_benefit: float
    sd: float
    source: str
    assumption: str = ""
    components: tuple[BiasComponent, ...] = ()
    combine: str = ""

    @property
    def ror(self) -> float:
        """The equivalent ratio of odds ratios, ``exp(-mean_benefit)`` (< 1: benefit exaggerated)."""
        return math.exp(-self.mean_benefit)


@dataclass(frozen=True)
class BiasModel:
    """A named bias model: a bias term per outcome (or ``default``), with provenance."""

    name: str
    description: str
    rationale: str
    terms: dict[str, BiasTerm]
    origin: str = ""
    sha256: str = ""

    def term_for(self, outcome: str) -> BiasTerm:
        """The bias term of ``outcome``, or the model's ``default``.

        Raises
        ------
        InputError
            If the model sets neither this outcome nor a default.
        """
        found = for_outcome(self.terms, outcome)
        if found is not None:
            return found
        raise InputError(
            f"bias model '{self.name}' sets no bias for outcome '{outcome}' and no [bias.{DEFAULT_OUTCOME}];"
            f" it covers: {', '.join(self.terms)}",
            source=self.origin or None,
            field=f"bias.{outcome}",
        )

    def log_or_mean(self, outcome: str, direction: str) -> float:
        """Signed mean of the bias on the outcome's own log OR: ``+mean_benefit`` when more events are better
        (``direction = 'higher'``), ``-mean_benefit`` when fewer are (``'lower'``).

        Raises
        ------
        InputError
            Unknown direction, or no term for the outcome.
        """
        if direction not in DIRECTIONS:
            raise InputError(
                f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}",
                source=self.origin or None,
                field="direction",
            )
        m = self.term_for(outcome).mean_benefit
        return m if direction == "higher" else -m

    def log_or_sd(self, outcome: str) -> float:
        """Sd of the bias on the outcome's log OR (the same for either direction)."""
        return self.term_for(outcome).sd

    def adjust_log_or(self, outcome: str, direction: str, log_or: float, se: float) -> tuple[float, float]:
        """Bias-adjusted estimate of a log OR with a normal likelihood (a quick check beside the full model).

        If ``y ~ N(delta + beta, se^2)`` and ``beta ~ N(s m, sd^2)`` independently, then
        ``y ~ N(delta + s m, se^2 + sd^2)``; with a flat prior on ``delta`` its posterior is
        ``N(y - s m, se^2 + sd^2)`` (Turner et al. 2009, section 3: bias shifts the estimate and adds variance).

        Returns
        -------
        (mean, se) of the bias-adjusted log OR.
        """
        if not (math.isfinite(se) and se > 0):
            raise InputError(f"se must be finite and > 0, got {se}", field="se")
        shift = self.log_or_mean(outcome, direction)
        return log_or - shift, math.sqrt(se**2 + self.log_or_sd(outcome) ** 2)

    def to_dict(self) -> dict:
        """Plain-data form (for manifests and saved posteriors)."""
        return {
            "name": self.name,
            "description": self.description,
            "rationale": self.rationale,
            "origin": self.origin,
            "sha256": self.sha256,
            "bias": {
                o: {
                    "mean_benefit": t.mean_benefit,
                    "sd": t.sd,
                    "source": t.source,
                    "assumption": t.assumption,
                    "combine": t.combine,
                    "components": [asdict(c) for c in t.components],
                }
                for o, t in self.terms.items()
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def __repr__(self) -> str:
        lines = [f"BiasModel('{self.name}': {self.description})"]
        for o, t in self.terms.items():
            lines.append(
                f"  bias[{o}] ~ Normal(+-{t.mean_benefit:.4g}, sd={t.sd:.4g})  (towards benefit; ROR {t.ror:.3g})"
            )
        return "\n".join(lines)


def _bounded(value, *, src: str, where: str, positive: bool) -> float:
    v = number(value, source=src, field=where)
    if positive and not 0 < v <= MAX_ABS:
        raise InputError(f"must be > 0 and <= {MAX_ABS:g}, got {value}", source=src, field=where)
    if not positive and abs(v) > MAX_ABS:
        raise InputError(f"must be within +-{MAX_ABS:g}, got {value}", source=src, field=where)
    return v


def _component(doc, *, src: str, where: str) -> BiasComponent:
    check_keys(doc, _COMPONENT_KEYS, source=src, where=where)
    for req in ("name", "log_ror", "sd", "source"):
        if req not in doc:
            raise InputError("is required", source=src, field=f"{where}.{req}")
    return BiasComponent(
        name=text(doc["name"], source=src, field=f"{where}.name", required=True),
        log_ror=_bounded(doc["log_ror"], src=src, where=f"{where}.log_ror", positive=False),
        sd=_bounded(doc["sd"], src=src, where=f"{where}.sd", positive=True),
        source=text(doc["source"], source=src, field=f"{where}.source", required=True),
        assumption=text(doc.get("assumption"), source=src, field=f"{where}.assumption"),
    )


def _term(doc, *, src: str, where: str) -> BiasTerm:
    check_keys(doc, _TERM_KEYS, source=src, where=where)
    for req in ("mean_benefit", "sd", "source"):
        if req not in doc:
            raise InputError("is required", source=src, field=f"{where}.{req}")
    mean = _bounded(doc["mean_benefit"], src=src, where=f"{where}.mean_benefit", positive=False)
    sd = _bounded(doc["sd"], src=src, where=f"{where}.sd", positive=True)
    source = text(doc["source"], source=src, field=f"{where}.source", required=True)
    assumption = text(doc.get("assumption"), source=src, field=f"{where}.assumption")
    comps_doc = doc.get("components", [])
    if not isinstance(comps_doc, list):
        raise InputError("must be a list of [[...components]] tables", source=src, field=f"{where}.components")
    check_count(len(comps_doc), MAX_COMPONENTS, what="components", source=src, field=f"{where}.components")
    comps = tuple(_component(c, src=src, where=f"{where}.components[{k}]") for k, c in enumerate(comps_doc))
    combine = text(doc.get("combine"), source=src, field=f"{where}.combine")
    if combine:
        if combine not in _COMBINE_RULES:
            raise InputError(
                f"unknown rule {shown(combine)}; use {', '.join(_COMBINE_RULES)}", source=src, field=f"{where}.combine"
            )
        if not comps:
            raise InputError("combine needs at least one component", source=src, field=f"{where}.components")
        want_mean = -sum(c.log_ror for c in comps)
        want_sd = math.sqrt(sum(c.sd**2 for c in comps))
        if abs(mean - want_mean) > COMBINE_TOL:
            raise InputError(
                f"is {mean:g} but -sum(log_ror) of the components is {want_mean:.4f}",
                source=src,
                field=f"{where}.mean_benefit",
            )
        if abs(sd - want_sd) > COMBINE_TOL:
            raise InputError(
                f"is {sd:g} but sqrt(sum(sd^2)) of the components is {want_sd:.4f}", source=src, field=f"{where}.sd"
            )
    elif not assumption.strip():
        raise InputError(
            "numbers not derived by a 'combine' rule are a judgement: state it in 'assumption'",
            source=src,
            field=f"{where}.assumption",
        )
    return BiasTerm(mean, sd, source, assumption, comps, combine)


def parse_bias(doc: dict, *, origin: str, sha256: str = "") -> BiasModel:
    """Validate a parsed bias-model TOML document (see the module docstring for the format).

    Raises
    ------
    InputError
        Unknown key, missing source, number out of bounds, a judgement without an ``assumption`` note, or a
        ``combine`` rule the stated numbers do not follow; the message names the file and the field.
    """
    src = origin
    check_keys(doc, _TOP_KEYS, source=src, where="")
    name = check_name(text(doc.get("name"), source=src, field="name", required=True), source=src, field="name")
    description = text(doc.get("description"), source=src, field="description", required=True)
    rationale = text(doc.get("rationale"), source=src, field="rationale", required=True)
    terms_doc = doc.get("bias")
    if not terms_doc:
        raise InputError("a bias model needs at least one [bias.<outcome>] table", source=src, field="bias")
    require_table(terms_doc, source=src, where="bias")
    check_count(len(terms_doc), MAX_EFFECTS, what="[bias.<outcome>] tables", source=src, field="bias")
    terms = {
        check_name(o, source=src, field="bias.<outcome>"): _term(t, src=src, where=f"bias.{o}")
        for o, t in terms_doc.items()
    }
    return BiasModel(name, description, rationale, terms, origin, sha256)


def _bias_dir():
    return resources.files("bayes_rescue") / "priors" / "bias"


def bundled_bias_names() -> list[str]:
    """Names of the bias models shipped with the package, mildest first."""
    names = [p.name.removesuffix(".toml") for p in _bias_dir().iterdir() if p.name.endswith(".toml")]
    order = ["mild", "observational", "severe"]
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def load_bias(name_or_path: str | Path) -> BiasModel:
    """Load a bundled bias model by name, or a user's bias TOML file by path.

    Raises
    ------
    InputError
        Unknown name, unreadable or malformed file, unknown key or impossible value.
    """
    doc, origin, raw = read_named_toml(
        name_or_path, names=bundled_bias_names(), directory=_bias_dir(), what="bias model", field="--bias"
    )
    return parse_bias(doc, origin=origin, sha256=hashlib.sha256(raw).hexdigest())


def resolve_bias(arg: str | None) -> BiasModel | None:
    """``--bias`` argument to a bias model: ``None`` or ``'none'`` = unadjusted analysis (returns ``None``),
    ``''`` (the flag given without a name) = :data:`DEFAULT_BIAS`, otherwise a bundled name or a path."""
    if arg is None or arg == "none":
        return None
    return load_bias(arg or DEFAULT_BIAS)
