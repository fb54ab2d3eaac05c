"""The likelihood's points: the ``log_likelihood``, ``posterior_predictive`` / ``prior_predictive`` and
``observed_data`` groups of a fit's DataTree.

**What a point is.** The likelihood is binomial per cell (outcome x subgroup) and arm
(:mod:`bayes_rescue.model.build`). The groups hold it at one of two grains, chosen by the cohort's size
(every outcome counts the same cohort):

- cohort of at most :data:`PATIENT_POINTS_MAX` patients (the bundled cohort has 43): **one point per
  patient** (dim ``patient``: the treated patients first, then the controls, each arm in subgroup order,
  events first within a cell and arm; the patients of one cell and arm are exchangeable). The log
  likelihood of a point is the Bernoulli ``event * log p + (1 - event) * log(1 - p)``, p the patient's
  arm risk; ``az.loo(tree, var_name=<outcome>)`` is leave-one-patient-out. ``observed_data`` holds the
  0/1 outcomes, the predictive groups their replicates (int8).
- larger cohorts: **one point per cell and arm** (dim ``<outcome>_cell_arm``, one per outcome as outcomes
  have different subgroups: the treated arms first, then the controls, each in subgroup order; coordinates
  ``<dim>_subgroup``, ``<dim>_arm`` and ``<dim>_total``, the arm's patients). The log likelihood of a point
  is the binomial ``log C(n, y) + y log p + (n - y) log(1 - p)``: the probability of the arm's event count;
  ``az.loo`` is leave-one-subgroup-arm-out (a cross-validation of whole subgroups' arms, not of patients;
  with hundreds or thousands of patients in an arm, removing one is a large change and Pareto k can be
  high). ``observed_data`` holds the event counts, the predictive groups replicated counts (binomial draws,
  in the smallest integer type that holds the arm's total).

The grain is stated in each group's attrs (``point``: ``patient`` or ``cell_arm``, and
``point_description``). Both grains sum to the same total log likelihood up to the constant sum of the
log binomial coefficients, so the power-scaling analysis (which uses the sum) gives the same result on
either. Above the limit the groups cost cells x draws, not patients x draws: a 11,558-patient trial of two
cells stores 4 points per draw instead of 11,558.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from bayes_rescue.model.equations import draws_logits
from bayes_rescue.model.spec import ModelSpec

#: The largest cohort whose likelihood points are its patients; above it, the points are cells' arms. At the
#: default 4 x 1000 draws a per-patient group then costs at most 6.4 MB per outcome (200 x 4000 float64).
PATIENT_POINTS_MAX = 200

_DESCRIPTIONS = {
    "patient": "one point per patient: the Bernoulli log likelihood of the patient's 0/1 outcome"
    " (treated patients first, then controls, each arm in subgroup order); az.loo is leave-one-patient-out",
    "cell_arm": "one point per subgroup and arm: the binomial log likelihood log C(n, y) + y log p"
    " + (n - y) log(1 - p) of the arm's event count y of n patients; az.loo is leave-one-subgroup-arm-out",
}


def point_kind(spec: ModelSpec) -> str:
    """``"patient"`` when the cohort has at most :data:`PATIENT_POINTS_MAX` patients, else ``"cell_arm"``."""
    cells = spec.data.cells()
    first = cells[cells["outcome"] == spec.data.outcomes[0]]
    size = int(first["n_t"].sum() + first["n_c"].sum())
    return "patient" if size <= PATIENT_POINTS_MAX else "cell_arm"


def cell_arms(spec: ModelSpec, outcome: str) -> pd.DataFrame:
    """The arms of one outcome's cells, treated arms first, then controls, each in subgroup order: columns
    ``cell`` (index of the model cell), ``subgroup``, ``arm``, ``treated`` (bool), ``events``, ``total``."""
    cells = spec.data.cells()
    idx = np.flatnonzero(cells["outcome"].to_numpy() == outcome)
    sub = cells.iloc[idx]
    parts = [
        pd.DataFrame(
            {
                "cell": idx,
                "subgroup": sub["subgroup"].to_numpy(str),
                "arm": arm,
                "treated": arm == "treatment",
                "events": sub[y].to_numpy(np.int64),
                "total": sub[n].to_numpy(np.int64),
            }
        )
        for arm, y, n in (("treatment", "y_t", "n_t"), ("control", "y_c", "n_c"))
    ]
    return pd.concat(parts, ignore_index=True)


def _patient_rows(arms: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per patient: the row of ``arms`` (its cell and arm) and its 0/1 event (events first in each arm)."""
    total, events = arms["total"].to_numpy(), arms["events"].to_numpy()
    row = np.repeat(np.arange(len(arms)), total)
    within = np.arange(len(row)) - np.repeat(np.cumsum(total) - total, total)
    return row, (within < events[row]).astype(np.int8)


def patients(spec: ModelSpec) -> pd.DataFrame:
    """The per-patient layout of one outcome's data, for every outcome: columns ``outcome``, ``patient``
    (0..N-1: treated patients first, then controls, each arm in subgroup order), ``arm``, ``subgroup``,
    ``cell`` (index of the model cell) and ``event`` (0/1). Events come first within each cell and arm (the
    order within a cell does not matter: the patients of one cell and arm are exchangeable)."""
    frames = []
    for outcome in spec.data.outcomes:
        arms = cell_arms(spec, outcome)
        row, event = _patient_rows(arms)
        frames.append(
            pd.DataFrame(
                {
                    "outcome": outcome,
                    "patient": np.arange(len(row)),
                    "arm": arms["arm"].to_numpy()[row],
                    "subgroup": arms["subgroup"].to_numpy()[row],
                    "cell": arms["cell"].to_numpy()[row],
                    "event": event.astype(np.int64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _arm_logits(group: xr.Dataset, spec: ModelSpec, arms: pd.DataFrame) -> np.ndarray:
    """The observed-arm logit of each row of ``arms`` per draw: array (chain, draw, row)."""
    names = ["baseline", "delta", *(["bias"] if spec.bias is not None else [])]
    logits = draws_logits({k: group[k].transpose("chain", "draw", ...).to_numpy() for k in names}, spec)
    cell = arms["cell"].to_numpy()
    return np.where(arms["treated"].to_numpy(), logits["treatment_observed"][..., cell], logits["control"][..., cell])


def _count_dtype(n_max: int) -> np.dtype:
    """The smallest signed integer type that holds counts up to ``n_max`` (int8 for arms of <= 127)."""
    return np.result_type(np.min_scalar_type(-n_max - 1), np.int8)


def _dim(outcome: str, kind: str) -> str:
    return "patient" if kind == "patient" else f"{outcome}_cell_arm"


def _coords(spec: ModelSpec, kind: str) -> dict:
    """The point coordinates of every outcome (one shared ``patient`` dim, or one dim per outcome)."""
    if kind == "patient":
        arms = cell_arms(spec, spec.data.outcomes[0])
        row, _ = _patient_rows(arms)
        return {"patient": np.arange(len(row)), "arm": ("patient", arms["arm"].to_numpy(str)[row])}
    out = {}
    for o in spec.data.outcomes:
        arms, dim = cell_arms(spec, o), _dim(o, kind)
        out[dim] = [f"{s}/{a}" for s, a in zip(arms["subgroup"], arms["arm"], strict=True)]
        out[f"{dim}_subgroup"] = (dim, arms["subgroup"].to_numpy(str))
        out[f"{dim}_arm"] = (dim, arms["arm"].to_numpy(str))
        out[f"{dim}_total"] = (dim, arms["total"].to_numpy())
    return out


def _dataset(data: dict, group: xr.Dataset | None, spec: ModelSpec, kind: str) -> xr.Dataset:
    coords = _coords(spec, kind)
    if group is not None:
        coords = {"chain": group["chain"].to_numpy(), "draw": group["draw"].to_numpy(), **coords}
    attrs = {"point": kind, "point_description": _DESCRIPTIONS[kind]}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def log_likelihood(group: xr.Dataset, spec: ModelSpec, *, kind: str | None = None) -> xr.Dataset:
    """Pointwise log likelihood per draw, one variable per outcome, at the grain :func:`point_kind` chooses
    (or ``kind``): per patient the Bernoulli ``event * log p + (1 - event) * log(1 - p)`` (summed over an
    arm and cell's patients it is the binomial log likelihood without the log binomial coefficient, a
    constant); per cell and arm the full binomial log pmf (what ``pm.compute_log_likelihood`` gives)."""
    kind = kind or point_kind(spec)
    data = {}
    for o in spec.data.outcomes:
        arms = cell_arms(spec, o)
        x = _arm_logits(group, spec, arms)
        log_p, log_q = special.log_expit(x), special.log_expit(-x)
        if kind == "patient":
            row, event = _patient_rows(arms)
            ll = np.concatenate([log_q, log_p], axis=-1)[..., row + len(arms) * event]
        else:
            y, n = arms["events"].to_numpy(float), arms["total"].to_numpy(float)
            log_binom = special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)
            ll = log_binom + y * log_p + (n - y) * log_q
        data[o] = (("chain", "draw", _dim(o, kind)), ll)
    return _dataset(data, group, spec, kind)


def predictive(group: xr.Dataset, spec: ModelSpec, rng: np.random.Generator, *, kind: str | None = None) -> xr.Dataset:
    """Replicated data per draw, one variable per outcome: 0/1 outcomes per patient (Bernoulli with the
    patient's arm risk, int8), or event counts per cell and arm (binomial with the arm's patients and risk)."""
    kind = kind or point_kind(spec)
    data = {}
    for o in spec.data.outcomes:
        arms = cell_arms(spec, o)
        p = special.expit(_arm_logits(group, spec, arms))
        if kind == "patient":
            row, _ = _patient_rows(arms)
            p = p[..., row]
            y = (rng.random(p.shape) < p).astype(np.int8)
        else:
            n = arms["total"].to_numpy()
            y = rng.binomial(n, p).astype(_count_dtype(int(n.max())))
        data[o] = (("chain", "draw", _dim(o, kind)), y)
    return _dataset(data, group, spec, kind)


def observed(spec: ModelSpec, *, kind: str | None = None) -> xr.Dataset:
    """The ``observed_data`` group: per patient the 0/1 outcomes (int8), or per cell and arm the event
    counts, one variable per outcome."""
    kind = kind or point_kind(spec)
    data = {}
    for o in spec.data.outcomes:
        arms = cell_arms(spec, o)
        y = _patient_rows(arms)[1] if kind == "patient" else arms["events"].to_numpy()
        data[o] = (_dim(o, kind), y)
    return _dataset(data, None, spec, kind)
