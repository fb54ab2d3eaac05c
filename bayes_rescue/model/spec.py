"""Model specification: what to fit (counts + prior + structure), apart from building and sampling
(the mathematics is in :mod:`bayes_rescue.model.build`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from bayes_rescue._memo import memoised
from bayes_rescue.data.counts import CountsData
from bayes_rescue.errors import InputError
from bayes_rescue.priors.bias import BiasModel
from bayes_rescue.priors.coverage import check_coverage
from bayes_rescue.priors.spec import PRIOR_BOUNDS, PriorSpec, check_bound

ModelKind = Literal["hierarchical", "independent"]


#: Effect-prior mixtures are padded with zero-weight components to at least this many, so that every
#: bundled prior (1 to 3 components) and its robust version (one more) share one compiled structure:
#: ``--prior all`` and the robust sweep compile once per model kind.
MIN_COMPONENTS = 4


MODEL_KINDS: tuple[str, ...] = ("hierarchical", "independent")


@dataclass(frozen=True)
class ModelSpec:
    """What to fit: the counts, the prior and the structure. Building and sampling are separate."""

    data: CountsData
    prior: PriorSpec
    kind: ModelKind = "hierarchical"
    #: A bias model (:mod:`bayes_rescue.priors.bias`): the fit adjusts the effect for it; None = unadjusted.
    bias: BiasModel | None = None

    @property
    def name(self) -> str:
        """The fit's name in tables and folders: the prior's, with ``+bias-<model>`` when bias-adjusted."""
        return self.prior.name if self.bias is None else f"{self.prior.name}+bias-{self.bias.name}"

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise InputError(f"unknown model '{self.kind}'; choose one of {', '.join(MODEL_KINDS)}", field="--model")
        check_coverage(self.data, [self.prior], self.bias)  # the CLI's early check, for API users too
        memoised(self, "_arrays", self._build_arrays)  # checks every input's domain (_check_domain)

    def arrays(self) -> dict[str, np.ndarray]:
        """Numeric inputs of the model: counts, indices and prior parameters (padded mixtures).

        Computed once per (immutable) spec; every call returns fresh copies of the arrays."""
        return {k: v.copy() for k, v in memoised(self, "_arrays", self._build_arrays).items()}

    def _build_arrays(self) -> dict[str, np.ndarray]:
        cells = self.data.cells()
        outcomes = self.data.outcomes
        o_idx = cells["outcome"].map({o: i for i, o in enumerate(outcomes)}).to_numpy()
        n_sub = cells.groupby("outcome", sort=False).size().reindex(outcomes).to_numpy()
        effects = [self.prior.effect_for(o) for o in outcomes]
        k_max = max(MIN_COMPONENTS, *(len(e.components) for e in effects))
        w = np.zeros((len(outcomes), k_max))
        m = np.zeros((len(outcomes), k_max))
        s = np.ones((len(outcomes), k_max))
        for i, e in enumerate(effects):
            k = len(e.components)
            w[i, :k], m[i, :k], s[i, :k] = e.weights, e.means, e.sds
        h = self.prior.hyper
        arrays = {
            "y_t": cells["y_t"].to_numpy(np.int64),
            "n_t": cells["n_t"].to_numpy(np.int64),
            "y_c": cells["y_c"].to_numpy(np.int64),
            "n_c": cells["n_c"].to_numpy(np.int64),
            "outcome_idx": o_idx.astype(np.int64),
            "pooled": (n_sub > 1).astype(float),
            **_pool_indices(o_idx, n_sub > 1),
            "offset": np.array(
                [self.prior.shift_for(o, sg) for o, sg in zip(cells["outcome"], cells["subgroup"], strict=True)]
            ),
            "prior_w": w,
            "prior_mu": m,
            "prior_sd": s,
            "hyper": np.array(
                [h["baseline_mean"], h["baseline_sd"], h["baseline_tau_sd"], h["effect_tau_sd"]], dtype=float
            ),
        }
        if self.bias is not None:
            arrays["bias_mu"] = np.array([self.bias.log_or_mean(o, self.data.directions[o]) for o in outcomes])
            arrays["bias_sd"] = np.array([self.bias.log_or_sd(o) for o in outcomes])
        _check_domain(arrays, self)
        return arrays

    def coords(self) -> dict[str, list[str]]:
        cells = self.data.cells()
        k_max = max(MIN_COMPONENTS, *(len(self.prior.effect_for(o).components) for o in self.data.outcomes))
        out = {
            "outcome": self.data.outcomes,
            "cell": [f"{o}/{s}" for o, s in zip(cells["outcome"], cells["subgroup"], strict=True)],
            "component": [f"k{i}" for i in range(k_max)],
        }
        if self.kind == "hierarchical":
            pooled = [o for o in self.data.outcomes if len(self.data.subgroups(o)) > 1]
            if pooled:
                out["pooled_outcome"] = pooled
                out["pooled_cell"] = [c for c in out["cell"] if c.split("/", 1)[0] in pooled]
        return out


def _pool_indices(o_idx: np.ndarray, pooled: np.ndarray) -> dict[str, np.ndarray]:
    """Indices of the hierarchical model's pooling parameters, which exist only for outcomes with more than
    one subgroup: ``pool_cell_idx`` (per cell: its position among the pooled cells, or the number of pooled
    cells when its outcome is not pooled) and ``pool_cell_outcome`` (per pooled cell: the position of its
    outcome among the pooled outcomes)."""
    pooled_outcomes = np.flatnonzero(pooled)
    in_pool = pooled[o_idx]
    n_pc = int(in_pool.sum())
    cell_idx = np.full(len(o_idx), n_pc, dtype=np.int64)
    cell_idx[in_pool] = np.arange(n_pc)
    position = {int(o): i for i, o in enumerate(pooled_outcomes)}
    cell_outcome = np.array([position[int(o)] for o in o_idx[in_pool]], dtype=np.int64)
    return {"pool_cell_idx": cell_idx, "pool_cell_outcome": cell_outcome}


def _check_domain(a: dict[str, np.ndarray], spec: ModelSpec) -> None:
    """Raise :class:`InputError` unless every model input is inside its distribution's domain.

    The model is built with ``check_bounds=False`` (its log density does not test its own parameters, a
    quarter of the cost of each gradient), so this is where out-of-domain values are stopped, whichever
    way the spec was made. Prior numbers must lie in the ranges of
    :data:`bayes_rescue.priors.spec.PRIOR_BOUNDS`, the table the file loader checks too."""
    src = spec.prior.origin or f"prior '{spec.prior.name}'"
    for i, o in enumerate(spec.data.outcomes):
        w = a["prior_w"][i]
        live = w > 0  # zero-weight padding components are not part of the prior
        for kind, values in (("mean", a["prior_mu"][i][live]), ("sd", a["prior_sd"][i][live])):
            lo, hi = PRIOR_BOUNDS[kind]
            for v in values:
                if not (np.isfinite(v) and lo <= v <= hi):
                    raise InputError(
                        f"every component needs a finite mean in [{PRIOR_BOUNDS['mean'][0]:g},"
                        f" {PRIOR_BOUNDS['mean'][1]:g}] and a finite sd > 0 in [{PRIOR_BOUNDS['sd'][0]:g},"
                        f" {PRIOR_BOUNDS['sd'][1]:g}] (log OR); got {kind} {v!r}",
                        source=src,
                        field=f"effect.{o}",
                    )
        if np.any(w < 0) or abs(w.sum() - 1) > 1e-6:
            raise InputError(f"component weights sum to {w.sum():g}, not 1", source=src, field=f"effect.{o}")
    names = ("baseline_mean", "baseline_sd", "baseline_tau_sd", "effect_tau_sd")
    for name, v in zip(names, a["hyper"], strict=True):
        check_bound(name, float(v), source=src, field=f"hyper.{name}")
    for v in a["offset"]:
        check_bound("offset", float(v), source=src, field="effect.subgroups.offset")
    if "bias_mu" in a and not (
        np.all(np.isfinite(a["bias_mu"])) and np.all(a["bias_sd"] > 0) and np.all(np.isfinite(a["bias_sd"]))
    ):
        raise InputError("bias means and sds must be finite, sds > 0", source=spec.bias.origin or None, field="bias")
    for y, n in (("y_t", "n_t"), ("y_c", "n_c")):
        if np.any(a[y] < 0) or np.any(a[y] > a[n]):
            raise InputError(f"{y} must be within 0..{n}", source=spec.data.source, field=y)
