"""Exports for meta-analysts and for later analyses: the data in metafor's ``escalc`` layout
(``likelihood.csv``, :mod:`bayes_rescue.outputs.escalc`), and a posterior turned into a prior file (TOML for
``fit --prior``, JSON in RBesT's mixture layout), plus tidy draws.

The text builders are pure functions (mixture + provenance -> text); :func:`write_atomic` writes a file
through a temporary sibling and never replaces an existing file unless asked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_rescue.errors import InputError
from bayes_rescue.outputs.escalc import (  # noqa: F401 - importable from here too (api.py, tests)
    ESCALC_ADD,
    ESCALC_COLUMNS,
    ESCALC_MEASURES,
    LIKELIHOOD_SUBSET_NOTE,
    escalc_table,
    rma_subset_code,
    rma_subset_lines,
)

# --------------------------------------------------------------------------------------------------------------
# A posterior as a prior


@dataclass(frozen=True)
class ExportProvenance:
    """Where an exported posterior came from (cited in every component's ``source``).

    Attributes
    ----------
    run
        The run folder.
    outcome, subgroup
        The estimand whose log OR was exported.
    prior, prior_origin, prior_sha256
        The prior the run used for this posterior.
    data_source, data_sha256
        The counts the run fitted.
    model
        ``hierarchical`` or ``independent``.
    command
        The command line that made the run.
    manifest, manifest_sha256, posterior_sha256
        The run's manifest.json path and hash, and the hash of its posterior.nc.
    n_draws, max_components
        Number of posterior draws fitted, and the largest number of components tried.
    ks, max_quantile_error
        Accuracy of the mixture: Kolmogorov-Smirnov distance to the draws, and the largest absolute error
        of its 2.5/50/97.5% quantiles (log OR).
    created_utc
        When the export was made.
    """

    run: str
    outcome: str
    subgroup: str
    prior: str
    prior_origin: str
    prior_sha256: str
    data_source: str
    data_sha256: str
    model: str
    command: str
    manifest: str
    manifest_sha256: str
    posterior_sha256: str
    n_draws: int
    max_components: int
    ks: float
    max_quantile_error: float
    created_utc: str


#: How the number of components is chosen (stated in every export).
CRITERION = "BIC (Schwarz 1978): the fit with the smallest -2 log L + (3K - 1) log n over K = 1..{k}"
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_str(text: str) -> str:
    """A TOML basic string holding ``text`` exactly (quotes, backslashes and control characters escaped)."""
    out = json.dumps(str(text), ensure_ascii=False)  # escapes " \\ and U+0000-U+001F, valid in TOML
    return out.replace("\x7f", "\\u007f")  # TOML also forbids a raw DEL


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_str(key)


def _float(x: float) -> str:
    """Shortest round-trip text of a float (valid TOML and JSON)."""
    return repr(float(x))


def exported_prior_name(prov: ExportProvenance) -> str:
    """The ``name`` of the exported prior: ``posterior_<prior>_<outcome>_<subgroup>`` (safe characters)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"posterior_{prov.prior}_{prov.outcome}_{prov.subgroup}")


def _accuracy_text(k: int, prov: ExportProvenance) -> str:
    return (
        f"a {k}-component normal mixture fitted by EM to {prov.n_draws} posterior draws, the number of components"
        f" chosen by {CRITERION.format(k=prov.max_components)}; accuracy: Kolmogorov-Smirnov distance"
        f" {prov.ks:.4f} to the draws, largest error of the 2.5/50/97.5% quantiles {prov.max_quantile_error:.4f}"
        " (log OR)"
    )


def _source_text(prov: ExportProvenance) -> str:
    return (
        f"bayes_rescue run {prov.run} (manifest {prov.manifest}, sha256 {prov.manifest_sha256}; posterior.nc"
        f" sha256 {prov.posterior_sha256}): posterior of the log OR of {prov.outcome}/{prov.subgroup} under prior"
        f" '{prov.prior}' ({prov.prior_origin}, sha256 {prov.prior_sha256 or 'n/a'}), model {prov.model}, data"
        f" {prov.data_source} (sha256 {prov.data_sha256}), command `{prov.command}`; exported {prov.created_utc}"
    )


def _mixture_arrays(mixture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = np.asarray(mixture.weights, float)
    return w / w.sum(), np.asarray(mixture.means, float), np.asarray(mixture.sds, float)


def prior_toml(mixture, prov: ExportProvenance, *, default_components=()) -> str:
    """Text of a prior file (:mod:`bayes_rescue.priors.spec` format) whose ``[effect.<outcome>]`` is the mixture.

    The mixture is written at full precision (shortest round-trip floats), so loading the file gives the
    fitted mixture exactly. ``default_components`` (``NormalComponent``-like objects: name, weight, mean,
    sd, source) become ``[effect.default]``, the prior of every other outcome; hyperpriors are left at the
    package defaults.

    Parameters
    ----------
    mixture
        Object with ``weights``, ``means``, ``sds`` (log OR), e.g. :class:`bayes_rescue.priors.mixture.Mixture`.
    prov
        Provenance and accuracy of the approximation.
    default_components
        Components of the prior for outcomes other than ``prov.outcome`` (empty: none written).

    Returns
    -------
    str
        The TOML text.
    """
    w, m, s = _mixture_arrays(mixture)
    k = len(w)
    name = exported_prior_name(prov)
    rationale = (
        f"The posterior distribution of the log odds ratio of '{prov.outcome}' (estimand"
        f" {prov.outcome}/{prov.subgroup}) from the bayes_rescue run {prov.run}, as {_accuracy_text(k, prov)}."
        f" This posterior already includes the original prior '{prov.prior}' and the run's data"
        f" ({prov.data_source}): do not use it as the prior of a new analysis of the same patients, nor chain it"
        " with a prior built from the same trials, or that evidence is counted twice."
        f" It is written as the prior of outcome '{prov.outcome}' (in the hierarchical model: its mean log OR over"
        " subgroups); hyperpriors are the package defaults"
        + ("; every other outcome gets [effect.default]." if default_components else ".")
    )
    lines = [
        f"# Written by `bayes-rescue export` from {prov.run} ({prov.created_utc}).",
        f"name = {toml_str(name)}",
        f"description = {toml_str(f'Posterior of {prov.outcome}/{prov.subgroup} log OR from run {prov.run}')}",
        f"rationale = {toml_str(rationale)}",
        "",
        f"[effect.{_toml_key(prov.outcome)}]",
        f"rationale = {toml_str('Exported posterior: ' + _accuracy_text(k, prov) + '.')}",
    ]
    source = _source_text(prov)
    for j in range(k):
        lines += [
            f"[[effect.{_toml_key(prov.outcome)}.components]]",
            f'name = "posterior{j + 1}"',
            f"weight = {_float(w[j])}",
            f"mean = {_float(m[j])}",
            f"sd = {_float(s[j])}",
            f"source = {toml_str(f'{source}; EM component {j + 1} of {k}')}",
        ]
    if default_components:
        lines += [
            "",
            "[effect.default]",
            f"rationale = {toml_str('Outcomes other than ' + prov.outcome + ': the bundled neutral prior.')}",
        ]
        for c in default_components:
            lines += [
                "[[effect.default.components]]",
                f"name = {toml_str(c.name)}",
                f"weight = {_float(c.weight)}",
                f"mean = {_float(c.mean)}",
                f"sd = {_float(c.sd)}",
                f"source = {toml_str(c.source)}",
            ]
    return "\n".join(lines) + "\n"


#: RBesT's reference scale written with every exported log-OR mixture (``sigma``, the sd of one observation
#: in its normal-normal model): the unit-information sd of a logit at a 50% risk, 1 / sqrt(p (1 - p)) = 2.
RBEST_SIGMA = 2.0
RBEST_SIGMA_RATIONALE = (
    "sigma = 2, the unit-information sd of a logit at a 50% risk (Fisher information p(1 - p) = 1/4 per patient),"
    " the reference scale RBesT's own tests pair with normal mixtures on the logit scale of binomial data"
    " (RBesT 1.8-2, tests/testthat/test-utils.R: mixnorm(..., sigma = 2), ess(..., family = binomial,"
    " sigma = 2)); it lets ess() and robustify() run as they are. With it ess() counts units of information"
    " 1/4: a log OR from two arms of n patients at a 50% risk has variance 8/n, so n per arm is about twice"
    " that ESS (more when the risks are far from 50%). Set sigma(mix) yourself for another unit."
)
#: Why an exported mixture never has exactly three components in the JSON file.
RBEST_K3_NOTE = (
    "RBesT's read_mix_json (RBesT 1.8-2, R/mixjson.R) sets the attributes from jsonlite::fromJSON, whose"
    " default simplification (jsonlite 2.0.1, R/simplify.R) turns the two dimnames vectors into a character"
    " matrix when both have length 3, and R refuses a matrix as dimnames; a three-component mixture is"
    " therefore written as four, its lightest component split into two halves of the same mean and sd"
    " (the same distribution)."
)


def rbest_components(mixture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mixture's (weights, means, sds) as written to RBesT's JSON: as they are, except that exactly three
    components become four, the lightest one split into two equal halves (the same distribution; see
    :data:`RBEST_K3_NOTE`)."""
    w, m, s = _mixture_arrays(mixture)
    if len(w) != 3:
        return w, m, s
    j = int(np.argmin(w))
    w = np.append(w, w[j] / 2)
    w[j] /= 2
    return w, np.append(m, m[j]), np.append(s, s[j])


def prior_json(mixture, prov: ExportProvenance) -> str:
    """JSON text of the mixture in RBesT's layout, with the provenance.

    Layout: ``meta`` and ``comp`` are what ``RBesT::write_mix_json`` writes for a ``mixnorm`` (RBesT 1.8-2,
    R/mixjson.R: ``jsonlite::toJSON(list(meta = attributes(mix), comp = unclass(mix)))``; the matrix has
    rows ``w, m, s`` and columns ``comp1..compK``, written row by row), with the reference scale ``sigma``
    (:data:`RBEST_SIGMA`) among the attributes, so ``RBesT::read_mix_json(file)`` reads it back as a normal
    mixture on which ``ess()`` and ``robustify()`` run. A three-component mixture is written as four
    (:func:`rbest_components`, :data:`RBEST_K3_NOTE`): RBesT's reader cannot read K = 3. ``mixnorm`` repeats
    the matrix with its row and column names, ``r_code`` is the equivalent ``RBesT::mixnorm(...)`` call, and
    ``bayes_rescue`` holds the provenance and accuracy.

    Not read in R here (no R on the build machine): the tests replay ``read_mix_json`` and jsonlite's
    simplification from their sources on every file this writes.

    Parameters
    ----------
    mixture
        Object with ``weights``, ``means``, ``sds`` (log OR).
    prov
        Provenance and accuracy of the approximation.

    Returns
    -------
    str
        The JSON text (floats at full precision).
    """
    w, m, s = rbest_components(mixture)
    k = len(w)
    cols = [f"comp{j + 1}" for j in range(k)]
    matrix = [w.tolist(), m.tolist(), s.tolist()]
    r_args = ", ".join(f"{c} = c({_float(w[j])}, {_float(m[j])}, {_float(s[j])})" for j, c in enumerate(cols))
    doc = {
        "meta": {
            "dim": [3, k],
            "dimnames": [["w", "m", "s"], cols],
            "class": ["normMix", "mix"],
            "likelihood": ["normal"],
            "link": ["identity"],
            "sigma": [RBEST_SIGMA],
        },
        "comp": matrix,
        "mixnorm": {"rownames": ["w", "m", "s"], "colnames": cols, "matrix": matrix},
        "r_code": f'RBesT::mixnorm({r_args}, sigma = {_float(RBEST_SIGMA)}, param = "ms")',
        "bayes_rescue": {
            "name": exported_prior_name(prov),
            "scale": f"log odds ratio of the event '{prov.outcome}' (treatment vs control)",
            "criterion": CRITERION.format(k=prov.max_components),
            "reference_scale": RBEST_SIGMA_RATIONALE,
            "components_fitted": len(mixture.weights),
            **({"components_note": RBEST_K3_NOTE} if len(mixture.weights) == 3 else {}),
            "note": (
                "The posterior includes the run's prior and data: using it as a prior for the same patients, or"
                " chaining it with a prior from the same trials, counts that evidence twice."
            ),
            "source": _source_text(prov),
            **asdict(prov),
        },
    }
    return json.dumps(doc, indent=2) + "\n"


def tidy_draws(draws: dict[str, np.ndarray], *, prior: str, outcome: str, subgroup: str) -> pd.DataFrame:
    """One estimand's posterior draws as a tidy table.

    Parameters
    ----------
    draws
        Arrays (chain, draw) of ``log_or, rd, rr, odds_ratio, p_control, p_treatment``
        (:func:`bayes_rescue.outputs.trees.effect_draws`).
    prior, outcome, subgroup
        Identification columns.

    Returns
    -------
    pandas.DataFrame
        Columns ``prior, outcome, subgroup, chain, draw, log_or, rd, rr, odds_ratio, p_control, p_treatment``.
    """
    shape = np.shape(draws["log_or"])
    chain, draw = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    n = chain.size
    frame = pd.DataFrame(
        {"prior": [prior] * n, "outcome": [outcome] * n, "subgroup": [subgroup] * n, "chain": chain.ravel()}
    )
    frame["draw"] = draw.ravel()
    for v in ("log_or", "rd", "rr", "odds_ratio", "p_control", "p_treatment"):
        frame[v] = np.asarray(draws[v], float).ravel()
    return frame


def write_atomic(path: Path, write: Callable[[Path], object], *, overwrite: bool = False, field: str = "") -> Path:
    """Write a file atomically (:func:`bayes_rescue.outputs.rundir.atomic_write`, the one helper for this):
    ``write(tmp)`` fills a temporary file in the same folder, which is fsynced and then becomes ``path`` in
    one step.

    Without ``overwrite``, an existing ``path`` is never replaced, not even one created meanwhile by
    another process (the temporary file is hard-linked to ``path``, which fails if it exists); with it, the
    temporary file replaces ``path`` (``os.replace``). On any error the temporary file is removed.

    Raises
    ------
    InputError
        If ``path`` exists and ``overwrite`` is false, or its folder does not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError("its folder does not exist", source=path, field=field or None)
    if path.exists() and not overwrite:
        raise InputError("already exists; pass --overwrite to replace it", source=path, field=field or None)
    from bayes_rescue.outputs.rundir import atomic_write

    return atomic_write(path, write, overwrite=overwrite, field=field or "--out")
