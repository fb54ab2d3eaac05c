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

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from bayes_rescue.data.counts import MAX_SUBGROUPS
from bayes_rescue.data.names import check_name, quote
from bayes_rescue.data.tomlfile import check_count, check_keys, loads_toml, number, read_toml, require_table, text
from bayes_rescue.errors import InputError

# the distributions and the derived priors live in their own modules; their names stay importable from here
from bayes_rescue.priors.derive import calibrate_normal, check_trials, derive_component, discount, robustify  # noqa: F401
from bayes_rescue.priors.effects import (  # noqa: F401
    EffectPrior,
    NormalComponent,
    ess_elir,
    ess_patients,
    log_or_unit_information,
    mixture_logpdf,
)

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
            comps_doc = [derive_component(table["derive"], src=src, where=f"{where}.derive")]
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
                    trials=check_trials(comp.get("trials", []), src=src, where=f"{cw}.trials"),
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
