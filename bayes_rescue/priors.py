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
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import optimize, special, stats

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
_EFFECT_KEYS = {"rationale", "components"}
_COMPONENT_KEYS = {"name", "weight", "mean", "sd", "source"}
DEFAULT_OUTCOME = "default"


@dataclass(frozen=True)
class NormalComponent:
    """One normal component of an effect prior, on the log odds ratio."""

    name: str
    weight: float
    mean: float
    sd: float
    source: str

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
        x = np.asarray(x, dtype=float)[..., None]
        comp = stats.norm.logpdf(x, self.means, self.sds) + np.log(self.weights)
        return special.logsumexp(comp, axis=-1)

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

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` values of the log OR."""
        k = rng.choice(len(self.components), size=size, p=self.weights)
        return rng.normal(self.means[k], self.sds[k])

    def __repr__(self) -> str:
        return " + ".join(repr(c) for c in self.components)


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

    def effect_for(self, outcome: str) -> EffectPrior:
        """The effect prior for ``outcome`` (or the file's ``default``).

        Raises
        ------
        InputError
            If the prior sets neither this outcome nor a default.
        """
        if outcome in self.effects:
            return self.effects[outcome]
        if DEFAULT_OUTCOME in self.effects:
            return self.effects[DEFAULT_OUTCOME]
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
                o: {"rationale": e.rationale, "components": [asdict(c) for c in e.components]}
                for o, e in self.effects.items()
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def __repr__(self) -> str:
        lines = [f"PriorSpec('{self.name}': {self.description})"]
        for o, e in self.effects.items():
            lines.append(f"  log_or[{o}] ~ {e!r}")
        h = self.hyper
        lines.append(f"  alpha ~ Normal({h['baseline_mean']:g}, {h['baseline_sd']:g})  (logit control rate)")
        lines.append(f"  sigma_alpha ~ HalfNormal({h['baseline_tau_sd']:g})")
        lines.append(f"  tau ~ HalfNormal({h['effect_tau_sd']:g})")
        return "\n".join(lines)


def _number(value, *, source: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{value!r} is not a number", source=source, field=field)
    v = float(value)
    if not math.isfinite(v):
        raise InputError(f"{value!r} is not finite", source=source, field=field)
    return v


def _text(value, *, source: str, field: str, required: bool = False) -> str:
    if value is None:
        if required:
            raise InputError("is required", source=source, field=field)
        return ""
    if not isinstance(value, str):
        raise InputError(f"{value!r} is not text", source=source, field=field)
    if required and not value.strip():
        raise InputError("is required and may not be blank", source=source, field=field)
    return value


def _check_keys(table, allowed: set[str], *, source: str, where: str) -> None:
    if not isinstance(table, dict):
        raise InputError("must be a table", source=source, field=where or "<top>")
    for key in table:
        if key not in allowed:
            raise InputError(
                f"unknown key; allowed here: {', '.join(sorted(allowed))}",
                source=source,
                field=f"{where}.{key}" if where else key,
            )


def parse_prior(doc: dict, *, origin: str, sha256: str = "") -> PriorSpec:
    """Validate a parsed prior TOML document (see the module docstring for the format)."""
    src = origin
    _check_keys(doc, _TOP_KEYS, source=src, where="")
    name = _text(doc.get("name"), source=src, field="name", required=True)
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
        if set(doc["hyper"]) - {"source"}:
            hyper_source = _text(doc["hyper"].get("source"), source=src, field="hyper.source", required=True)
    effects_doc = doc.get("effect")
    if not effects_doc:
        raise InputError("a prior needs at least one [effect.<outcome>] table", source=src, field="effect")
    _check_keys(effects_doc, set(effects_doc), source=src, where="effect")
    effects: dict[str, EffectPrior] = {}
    for outcome, table in effects_doc.items():
        where = f"effect.{outcome}"
        _check_keys(table, _EFFECT_KEYS, source=src, where=where)
        comps_doc = table.get("components")
        if not isinstance(comps_doc, list) or not comps_doc:
            raise InputError("needs at least one [[...components]] entry", source=src, field=f"{where}.components")
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
            if abs(mean) > 20 or sd > 100:
                raise InputError("is implausible for a log odds ratio (|mean| > 20 or sd > 100)", source=src, field=cw)
            if not (0 < weight <= 1):
                raise InputError(f"must be in (0, 1], got {comp.get('weight')}", source=src, field=f"{cw}.weight")
            comps.append(
                NormalComponent(
                    name=_text(comp.get("name", f"component{k}"), source=src, field=f"{cw}.name"),
                    weight=weight,
                    mean=mean,
                    sd=sd,
                    source=_text(comp["source"], source=src, field=f"{cw}.source", required=True),
                )
            )
        total = sum(c.weight for c in comps)
        if abs(total - 1) > 1e-6:
            raise InputError(f"component weights sum to {total:g}, not 1", source=src, field=f"{where}.components")
        effects[outcome] = EffectPrior(
            tuple(comps), _text(table.get("rationale"), source=src, field=f"{where}.rationale")
        )
    return PriorSpec(name, description, rationale, effects, hyper, hyper_source, origin, sha256)


def _prior_dir():
    return resources.files("bayes_rescue") / "priors"


def bundled_prior_names() -> list[str]:
    """Names of the priors shipped with the package, in a fixed order."""
    names = [p.name.removesuffix(".toml") for p in _prior_dir().iterdir() if p.name.endswith(".toml")]
    order = ["neutral", "skeptical", "enthusiastic", "pessimistic"]
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def load_prior(name_or_path: str | Path) -> PriorSpec:
    """Load a bundled prior by name, or a user's prior TOML file by path.

    Raises
    ------
    InputError
        Unknown name, unreadable or malformed file, unknown key or impossible value.
    """
    spec = str(name_or_path)
    is_path = spec.endswith(".toml") or "/" in spec or "\\" in spec
    if not is_path:
        if spec not in bundled_prior_names():
            raise InputError(
                f"unknown prior '{spec}'; bundled priors: {', '.join(bundled_prior_names())}"
                " (or give a path to a .toml file)",
                field="--prior",
            )
        raw = (_prior_dir() / f"{spec}.toml").read_bytes()
        origin = f"bundled:{spec}"
    else:
        path = Path(spec)
        if not path.exists():
            raise InputError("no such prior file", source=path, field="--prior")
        if path.is_dir():
            raise InputError("is a directory, not a prior file", source=path, field="--prior")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot be read ({exc.strerror})", source=path) from None
        origin = str(path)
    try:
        doc = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", source=origin) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"is not valid TOML ({exc})", source=origin) from None
    return parse_prior(doc, origin=origin, sha256=hashlib.sha256(raw).hexdigest())


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
