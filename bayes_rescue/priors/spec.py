"""Named priors as data: TOML files read with :mod:`tomllib`, every number cited.

A prior file sets, per outcome, the prior of the treatment effect on the **log odds ratio of the event**
(the outcome's own event: for mortality a negative log OR is a benefit) as a mixture of normal components,
and optionally the model's hyperpriors. Format::

    name = "skeptical"
    description = "one line"
    rationale = "why this prior, in words"

    [hyper]                      # optional; defaults in DEFAULT_HYPER
    baseline_mean = 0.0          # logit control rate: Normal(baseline_mean, baseline_sd)
    baseline_sd = 1.5
    baseline_tau_sd = 1.0        # HalfNormal sd of the between-subgroup spread of the baseline
    effect_tau_sd = 0.5          # HalfNormal sd of the between-subgroup spread of the log OR
    source = "where these numbers come from"

    [effect.mrs_0_2]             # an outcome name, or "default" for any outcome not listed
    rationale = "..."
    [[effect.mrs_0_2.components]]
    name = "skeptical"
    weight = 1.0                 # weights of one outcome sum to 1
    mean = 0.0                   # log OR
    sd = 0.5296                  # > 0
    source = "trial, citation (DOI/PMID) and the figure the number came from"

Unknown keys are errors, as are missing sources, sd <= 0 and weights that do not sum to 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import optimize, special, stats

from bayes_rescue.data.counts import MAX_SUBGROUPS
from bayes_rescue.data.names import check_name, quote
from bayes_rescue.data.tomlfile import check_count, check_keys, loads_toml, number, read_toml, require_table, text
from bayes_rescue.errors import InputError

#: Default hyperpriors and where they come from; a prior file may override any of them.
DEFAULT_HYPER: dict[str, float] = {
    "baseline_mean": 0.0,
    "baseline_sd": 1.5,
    "baseline_tau_sd": 1.0,
    "effect_tau_sd": 0.5,
}
DEFAULT_HYPER_SOURCE = (
    "baseline Normal(0, 1.5) on the logit control rate puts 95% prior mass on rates of 5%-95%"
    " (weakly informative, not from a trial); HalfNormal(1.0) for the between-subgroup spread of the"
    " logit baseline; HalfNormal(0.5) for the between-subgroup spread of the log OR, the weakly"
    " informative heterogeneity prior for log odds ratios discussed by Roever et al., Res Synth Methods"
    " 2021;12(4):448-474, doi 10.1002/jrsm.1475, PMID 33486828"
)
_TOP_KEYS = {"name", "description", "rationale", "hyper", "effect"}
_HYPER_KEYS = set(DEFAULT_HYPER) | {"source"}
_EFFECT_KEYS = {"rationale", "components", "derive", "subgroups"}
_DERIVE_KEYS = {"rule", "trials", "outcome", "tail", "reference_or", "reference_source"}
_SHIFT_KEYS = {"offset", "source"}
_COMPONENT_KEYS = {"name", "weight", "mean", "sd", "source", "trials"}
DEFAULT_OUTCOME = "default"
#: Most normal components of one effect prior, and most outcomes (``[effect.*]`` tables) of one prior: the
#: largest prior accepted loads in well under a second (a 10,000-component prior took 29 s).
MAX_COMPONENTS = 20
MAX_EFFECTS = 50

#: Sane ranges (inclusive) of every number of a prior, on the logit / log-OR scale: one table used by the
#: file loader (:func:`parse_prior`) and by the model's domain check for priors made in code
#: (``bayes_rescue.model.spec``). Outside them the sampler meets overflow (a log OR of 20 is an OR of
#: 5e8; an sd of 1e-3 pins a log OR to within 0.2%), so a value there is a mistake, not a belief.
PRIOR_BOUNDS: dict[str, tuple[float, float]] = {
    "mean": (-20.0, 20.0),
    "sd": (1e-3, 100.0),
    "baseline_mean": (-20.0, 20.0),
    "baseline_sd": (1e-3, 100.0),
    "baseline_tau_sd": (1e-3, 100.0),
    "effect_tau_sd": (1e-3, 100.0),
    "offset": (-20.0, 20.0),
}


def check_bound(kind: str, value: float, *, source: str | None, field: str) -> float:
    """``value`` if it is finite and inside ``PRIOR_BOUNDS[kind]``; otherwise an :class:`InputError`
    naming ``source`` and ``field`` and the allowed range."""
    lo, hi = PRIOR_BOUNDS[kind]
    if not (math.isfinite(value) and lo <= value <= hi):
        raise InputError(f"must be in [{lo:g}, {hi:g}] (logit scale), got {value!r}", source=source, field=field)
    return value


def mixture_logpdf(x: np.ndarray, w: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """x (..., n); w, mu, sd (n, K), or (K,) for one mixture -> log density (..., n) or (...),
    log sum_k w_k N(x | mu_k, sd_k).

    Written out in NumPy (the normal log density, then a max-shifted log-sum-exp over the components);
    zero-weight padding components contribute exp(-inf) = 0. About five times faster than
    ``scipy.stats.norm.logpdf`` with ``scipy.special.logsumexp`` on the sweep's 20,000-draw arrays, the
    same values to rounding (checked against them by a test)."""
    with np.errstate(divide="ignore"):
        logw = np.log(w)
    z = (x[..., None] - mu) / sd
    comp = (logw - np.log(sd) - 0.5 * np.log(2 * np.pi)) - 0.5 * z * z
    top = comp.max(axis=-1)
    return top + np.log(np.exp(comp - top[..., None]).sum(axis=-1))


@dataclass(frozen=True)
class NormalComponent:
    """One normal component of an effect prior, on the log odds ratio."""

    name: str
    weight: float
    mean: float
    sd: float
    source: str
    trials: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"{self.weight:g} x Normal(mean={self.mean:.4g}, sd={self.sd:.4g}) [{self.name}]"


@dataclass(frozen=True)
class EffectPrior:
    """Prior of one outcome's log odds ratio: a mixture of normal components."""

    components: tuple[NormalComponent, ...]
    rationale: str = ""

    @property
    def weights(self) -> np.ndarray:
        return np.array([c.weight for c in self.components])

    @property
    def means(self) -> np.ndarray:
        return np.array([c.mean for c in self.components])

    @property
    def sds(self) -> np.ndarray:
        return np.array([c.sd for c in self.components])

    def logpdf(self, x: np.ndarray | float) -> np.ndarray:
        """Log density of the mixture at ``x`` (log OR)."""
        return mixture_logpdf(np.asarray(x, dtype=float), self.weights, self.means, self.sds)

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        """Mixture CDF at ``x``."""
        x = np.asarray(x, dtype=float)[..., None]
        return (self.weights * stats.norm.cdf(x, self.means, self.sds)).sum(axis=-1)

    def ppf(self, q: float) -> float:
        """Mixture quantile (root of the CDF)."""
        lo = float((self.means - 12 * self.sds).min())
        hi = float((self.means + 12 * self.sds).max())
        return float(optimize.brentq(lambda x: float(self.cdf(x)) - q, lo, hi, xtol=1e-12))

    @property
    def mean(self) -> float:
        return float((self.weights * self.means).sum())

    @property
    def sd(self) -> float:
        second = (self.weights * (self.sds**2 + self.means**2)).sum()
        return float(math.sqrt(second - self.mean**2))

    def neg_d2_logpdf(self, x: np.ndarray | float) -> np.ndarray:
        """-d^2/dx^2 log density of the mixture (analytic); negative between well-separated components."""
        x = np.asarray(x, dtype=float)[..., None]
        logf = np.log(self.weights) + stats.norm.logpdf(x, self.means, self.sds)
        r = np.exp(logf - special.logsumexp(logf, axis=-1, keepdims=True))  # responsibilities
        u = -(x - self.means) / self.sds**2  # d/dx log f_k
        d1 = (r * u).sum(-1)
        d2 = (r * (u**2 - 1 / self.sds**2)).sum(-1) - d1**2
        return -d2

    def quadrature(self, n: int = 4001) -> tuple[np.ndarray, np.ndarray]:
        """Grid and normalised weights covering the mixture (+-10 sd of every component)."""
        lo = float((self.means - 10 * self.sds).min())
        hi = float((self.means + 10 * self.sds).max())
        x = np.linspace(lo, hi, n)
        w = np.exp(self.logpdf(x))
        return x, w / w.sum()

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` values of the log OR."""
        k = rng.choice(len(self.components), size=size, p=self.weights)
        return rng.normal(self.means[k], self.sds[k])

    def __repr__(self) -> str:
        return " + ".join(repr(c) for c in self.components)


def ess_elir(prior: EffectPrior, unit_information) -> float:
    """Expected local-information-ratio ESS (Neuenschwander, Weber, Schmidli & O'Hagan, Biometrics
    2020;76:1238-1247, doi 10.1111/biom.13252): E_prior[ i_prior(x) / i_unit(x) ], where i_prior = -d^2 log
    prior and i_unit is the Fisher information of one observation; computed by quadrature over the prior.
    """
    x, w = prior.quadrature()
    return float((w * prior.neg_d2_logpdf(x) / unit_information(x)).sum())


def log_or_unit_information(p_control: float):
    """Fisher information about the log OR carried by one patient of a 1:1 two-arm trial whose control
    risk is ``p_control``: N patients give Var(log OR) = (2/N)(1/(p_t q_t) + 1/(p_c q_c))."""
    pc = float(p_control)

    def info(x):
        pt = special.expit(special.logit(pc) + np.asarray(x))
        return 1.0 / (2.0 * (1 / (pt * (1 - pt)) + 1 / (pc * (1 - pc))))

    return info


def ess_patients(prior: EffectPrior, p_control: float) -> float:
    """Prior ESS in patients (1:1 trial, control risk ``p_control``) by ELIR."""
    return ess_elir(prior, log_or_unit_information(p_control))


@dataclass(frozen=True)
class SubgroupShift:
    """A subgroup-specific centre: the subgroup's log OR is centred at the outcome's effect + ``offset``."""

    offset: float
    source: str


@dataclass(frozen=True)
class PriorSpec:
    """A named prior: effect priors per outcome plus hyperpriors, with provenance.

    The repr shows every distribution.
    """

    name: str
    description: str
    rationale: str
    effects: dict[str, EffectPrior]
    hyper: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_HYPER))
    hyper_source: str = DEFAULT_HYPER_SOURCE
    origin: str = ""
    sha256: str = ""
    shifts: dict[str, dict[str, SubgroupShift]] = field(default_factory=dict)

    def shift_for(self, outcome: str, subgroup: str) -> float:
        """Offset of the subgroup's prior centre on the log OR (0 unless the prior sets one)."""
        table = self.shifts.get(outcome, self.shifts.get(DEFAULT_OUTCOME, {}))
        return table[subgroup].offset if subgroup in table else 0.0

    def effect_for(self, outcome: str) -> EffectPrior:
        """The effect prior for ``outcome`` (or the file's ``default``).

        Raises
        ------
        InputError
            If the prior sets neither this outcome nor a default.
        """
        found = for_outcome(self.effects, outcome)
        if found is not None:
            return found
        raise InputError(
            f"prior '{self.name}' sets no effect prior for outcome '{outcome}' and no"
            f" [effect.{DEFAULT_OUTCOME}]; it covers: {', '.join(self.effects)}",
            source=self.origin or None,
            field=f"effect.{outcome}",
        )

    def to_dict(self) -> dict:
        """Plain-data form (what is stored inside every saved posterior)."""
        return {
            "name": self.name,
            "description": self.description,
            "rationale": self.rationale,
            "origin": self.origin,
            "sha256": self.sha256,
            "hyper": dict(self.hyper),
            "hyper_source": self.hyper_source,
            "effect": {
                o: {
                    "rationale": e.rationale,
                    "components": [asdict(c) for c in e.components],
                    **({"subgroups": {k: asdict(v) for k, v in self.shifts[o].items()}} if o in self.shifts else {}),
                }
                for o, e in self.effects.items()
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def __repr__(self) -> str:
        lines = [f"PriorSpec('{self.name}': {self.description})"]
        for o, e in self.effects.items():
            lines.append(f"  log_or[{o}] ~ {e!r}")
            for sg, sh in self.shifts.get(o, {}).items():
                lines.append(f"    subgroup {sg}: centre shifted by {sh.offset:+.4g}")
        h = self.hyper
        lines.append(f"  alpha ~ Normal({h['baseline_mean']:g}, {h['baseline_sd']:g})  (logit control rate)")
        lines.append(f"  sigma_alpha ~ HalfNormal({h['baseline_tau_sd']:g})")
        lines.append(f"  tau ~ HalfNormal({h['effect_tau_sd']:g})")
        return "\n".join(lines)


def for_outcome(table: dict, outcome: str):
    """``table[outcome]``, else ``table["default"]`` (:data:`DEFAULT_OUTCOME`), else None: how a prior or a bias
    model picks an outcome's entry."""
    return table.get(outcome, table.get(DEFAULT_OUTCOME))


# the shared validators (public in bayes_rescue.data.tomlfile; these names kept for existing callers)
_number, _text, _require_table, _check_keys = number, text, require_table, check_keys


def parse_prior(doc: dict, *, origin: str, sha256: str = "") -> PriorSpec:
    """Validate a parsed prior TOML document (see the module docstring for the format)."""
    src = origin
    _check_keys(doc, _TOP_KEYS, source=src, where="")
    name = check_name(_text(doc.get("name"), source=src, field="name", required=True), source=src, field="name")
    description = _text(doc.get("description"), source=src, field="description", required=True)
    rationale = _text(doc.get("rationale"), source=src, field="rationale")
    hyper = dict(DEFAULT_HYPER)
    hyper_source = DEFAULT_HYPER_SOURCE
    if "hyper" in doc:
        _check_keys(doc["hyper"], _HYPER_KEYS, source=src, where="hyper")
        for key, value in doc["hyper"].items():
            if key == "source":
                continue
            hyper[key] = _number(value, source=src, field=f"hyper.{key}")
            if key != "baseline_mean" and hyper[key] <= 0:
                raise InputError(f"must be > 0, got {value}", source=src, field=f"hyper.{key}")
            check_bound(key, hyper[key], source=src, field=f"hyper.{key}")
        if set(doc["hyper"]) - {"source"}:
            hyper_source = _text(doc["hyper"].get("source"), source=src, field="hyper.source", required=True)
    effects_doc = doc.get("effect")
    if not effects_doc:
        raise InputError("a prior needs at least one [effect.<outcome>] table", source=src, field="effect")
    _require_table(effects_doc, source=src, where="effect")
    check_count(len(effects_doc), MAX_EFFECTS, what="[effect.<outcome>] tables", source=src, field="effect")
    effects: dict[str, EffectPrior] = {}
    shifts: dict[str, dict[str, SubgroupShift]] = {}
    for outcome, table in effects_doc.items():
        check_name(outcome, source=src, field="effect.<outcome>")
        where = f"effect.{outcome}"
        _check_keys(table, _EFFECT_KEYS, source=src, where=where)
        comps_doc = table.get("components")
        if "derive" in table:
            if comps_doc is not None:
                raise InputError("give either 'components' or 'derive', not both", source=src, field=where)
            comps_doc = [_derive(table["derive"], src=src, where=f"{where}.derive")]
        if not isinstance(comps_doc, list) or not comps_doc:
            raise InputError("needs at least one [[...components]] entry", source=src, field=f"{where}.components")
        check_count(len(comps_doc), MAX_COMPONENTS, what="components", source=src, field=f"{where}.components")
        comps = []
        for k, comp in enumerate(comps_doc):
            cw = f"{where}.components[{k}]"
            _check_keys(comp, _COMPONENT_KEYS, source=src, where=cw)
            for req in ("mean", "sd", "source"):
                if req not in comp:
                    raise InputError("is required", source=src, field=f"{cw}.{req}")
            weight = _number(comp.get("weight", 1.0), source=src, field=f"{cw}.weight")
            mean = _number(comp["mean"], source=src, field=f"{cw}.mean")
            sd = _number(comp["sd"], source=src, field=f"{cw}.sd")
            if sd <= 0:
                raise InputError(f"must be > 0, got {comp['sd']}", source=src, field=f"{cw}.sd")
            check_bound("mean", mean, source=src, field=f"{cw}.mean")
            check_bound("sd", sd, source=src, field=f"{cw}.sd")
            if not (0 < weight <= 1):
                raise InputError(f"must be in (0, 1], got {comp.get('weight')}", source=src, field=f"{cw}.weight")
            comps.append(
                NormalComponent(
                    name=_text(comp.get("name", f"component{k}"), source=src, field=f"{cw}.name"),
                    weight=weight,
                    mean=mean,
                    sd=sd,
                    source=_text(comp["source"], source=src, field=f"{cw}.source", required=True),
                    trials=_trials(comp.get("trials", []), src=src, where=f"{cw}.trials"),
                )
            )
        if "subgroups" in table:
            _require_table(table["subgroups"], source=src, where=f"{where}.subgroups")
            check_count(
                len(table["subgroups"]), MAX_SUBGROUPS, what="subgroup offsets", source=src, field=f"{where}.subgroups"
            )
            for sg, sh in table["subgroups"].items():
                check_name(sg, source=src, field=f"{where}.subgroups.<subgroup>")
                sw = f"{where}.subgroups.{sg}"
                _check_keys(sh, _SHIFT_KEYS, source=src, where=sw)
                if "offset" not in sh:
                    raise InputError("is required", source=src, field=f"{sw}.offset")
                shifts.setdefault(outcome, {})[sg] = SubgroupShift(
                    check_bound(
                        "offset",
                        _number(sh["offset"], source=src, field=f"{sw}.offset"),
                        source=src,
                        field=f"{sw}.offset",
                    ),
                    _text(sh.get("source"), source=src, field=f"{sw}.source", required=True),
                )
        total = sum(c.weight for c in comps)
        if abs(total - 1) > 1e-6:
            raise InputError(f"component weights sum to {total:g}, not 1", source=src, field=f"{where}.components")
        effects[outcome] = EffectPrior(
            tuple(comps), _text(table.get("rationale"), source=src, field=f"{where}.rationale")
        )
    return PriorSpec(name, description, rationale, effects, hyper, hyper_source, origin, sha256, shifts)


def _trials(value, *, src: str, where: str) -> tuple[str, ...]:
    """Trial names a component was derived from; each must be in the package trial table."""
    from bayes_rescue.priors.literature import trial_table

    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InputError("must be a list of trial names", source=src, field=where)
    known = set(trial_table()["source"])
    for t in value:
        if t not in known:
            raise InputError(f"'{t}' is not in the package trial table", source=src, field=where)
    return tuple(value)


def _derive(doc, *, src: str, where: str) -> dict:
    """A calibrated normal component from a rule and a reference effect (see :func:`calibrate_normal`).

    The reference is either the DerSimonian-Laird pooled log OR of ``trials`` in the package trial table
    (so the prior changes when the table changes) or a stated ``reference_or`` with its source.
    """
    from bayes_rescue.priors.literature import pooled_log_or, trial_table

    _check_keys(doc, _DERIVE_KEYS, source=src, where=where)
    rule = _text(doc.get("rule"), source=src, field=f"{where}.rule", required=True)
    if rule not in ("skeptical", "enthusiastic", "pessimistic"):
        raise InputError(f"unknown rule '{rule}'; use skeptical, enthusiastic or pessimistic", source=src, field=where)
    tail = _number(doc.get("tail", 0.05), source=src, field=f"{where}.tail")
    if not 0 < tail < 0.5:
        raise InputError(f"must be in (0, 0.5), got {tail}", source=src, field=f"{where}.tail")
    if ("trials" in doc) == ("reference_or" in doc):
        raise InputError("give exactly one of 'trials' or 'reference_or'", source=src, field=where)
    if "trials" in doc:
        trials = doc["trials"]
        if not trials:
            raise InputError("must name at least one trial", source=src, field=f"{where}.trials")
        _trials(trials, src=src, where=f"{where}.trials")
        outcome = _text(doc.get("outcome"), source=src, field=f"{where}.outcome", required=True)
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
        ref_or = _number(doc["reference_or"], source=src, field=f"{where}.reference_or")
        if ref_or <= 0 or ref_or == 1:
            raise InputError("must be > 0 and not 1", source=src, field=f"{where}.reference_or")
        ref = math.log(ref_or)
        why = _text(doc.get("reference_source"), source=src, field=f"{where}.reference_source", required=True)
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


def _prior_dir():
    return resources.files("bayes_rescue") / "priors"


def bundled_prior_names() -> list[str]:
    """Names of the priors shipped with the package, in a fixed order."""
    names = [p.name.removesuffix(".toml") for p in _prior_dir().iterdir() if p.name.endswith(".toml")]
    order = ["neutral", "skeptical", "enthusiastic", "pessimistic", "map_early", "map_late", "map_pooled"]
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def bundled_prior_outcomes() -> dict[str, list[str]]:
    """``name -> outcomes its [effect.*] tables name`` for every bundled prior (``default`` = any outcome),
    read from the files' keys alone (fast enough for ``--help``)."""
    out = {}
    for name in bundled_prior_names():
        raw = (_prior_dir() / f"{name}.toml").read_bytes()
        out[name] = list(loads_toml(raw, origin=f"bundled:{name}", what="prior").get("effect", {}))
    return out


def bundled_priors_text() -> str:
    """The bundled priors and the outcomes each covers, one line each (for ``fit --help`` and ``priors``)."""
    lines = ["bundled priors and the outcomes each covers (others need a prior file with [effect.default]):"]
    for name, outcomes in bundled_prior_outcomes().items():
        covers = "any outcome ([effect.default])" if outcomes == [DEFAULT_OUTCOME] else ", ".join(outcomes)
        if DEFAULT_OUTCOME in outcomes and outcomes != [DEFAULT_OUTCOME]:
            covers = ", ".join(o for o in outcomes if o != DEFAULT_OUTCOME) + ", and any other outcome"
        lines.append(f"  {name:<13} {covers}")
    return "\n".join(lines)


def load_prior(name_or_path: str | Path) -> PriorSpec:
    """Load a bundled prior by name, or a user's prior TOML file by path.

    Raises
    ------
    InputError
        Unknown name, unreadable or malformed file, unknown key or impossible value.
    """
    doc, origin, raw = read_named_toml(
        name_or_path, names=bundled_prior_names(), directory=_prior_dir(), what="prior", field="--prior"
    )
    return parse_prior(doc, origin=origin, sha256=hashlib.sha256(raw).hexdigest())


def read_named_toml(name_or_path, *, names, directory, what: str, field: str) -> tuple[dict, str, bytes]:
    """A bundled TOML file by name (one of ``names``, in ``directory``) or a user's file by path (anything
    ending in .toml or holding a path separator): its parsed document, origin (``bundled:<name>`` or the path)
    and raw bytes. A user's file must be a regular file of at most 10 MB.

    Raises
    ------
    InputError
        Unknown name, unreadable file, not UTF-8, not TOML, or nested too deeply to read.
    """
    spec = str(name_or_path)
    if not (spec.endswith(".toml") or "/" in spec or "\\" in spec):
        if spec not in names:
            raise InputError(
                f"unknown {what} {quote(spec)}; bundled: {', '.join(names)} (or give a path to a .toml file)",
                field=field,
            )
        raw = (directory / f"{spec}.toml").read_bytes()
        origin = f"bundled:{spec}" if what == "prior" else f"bundled:{what.split()[0]}/{spec}"
        return loads_toml(raw, origin=origin, what=what), origin, raw
    doc, raw = read_toml(spec, field=field, what=what)
    return doc, spec, raw


def resolve_priors(arg: str) -> list[PriorSpec]:
    """``--prior`` argument to prior specs: a name, a path, ``all``, or a comma-separated list."""
    if arg == "all":
        return [load_prior(n) for n in bundled_prior_names()]
    specs = [load_prior(a.strip()) for a in arg.split(",") if a.strip()]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError(f"the same prior name appears twice: {', '.join(names)}", field="--prior")
    if not specs:
        raise InputError("no prior given", field="--prior")
    return specs


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
