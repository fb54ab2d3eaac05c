"""Estimands: the rows a fit reports (each subgroup of a multi-subgroup outcome and every outcome's
cohort-level ``overall``), the benefit direction, and the names of benefit probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_rescue.data.counts import OVERALL, benefit_sign  # noqa: F401 - benefit_sign is part of this API
from bayes_rescue.model.spec import ModelSpec


def estimands(spec: ModelSpec) -> pd.DataFrame:
    """Rows of the summary: each subgroup of a multi-subgroup outcome, and every outcome's ``overall``.

    Columns: ``estimand`` (``outcome/subgroup``), ``outcome``, ``subgroup``, ``level`` (``subgroup`` or
    ``cohort``), ``direction``, ``n_t``, ``n_c``, ``y_t``, ``y_c``, and ``cells`` (indices of the model
    cells it standardises over).
    """
    cells = spec.data.cells()
    rows = []
    for outcome in spec.data.outcomes:
        idx = np.flatnonzero(cells["outcome"].to_numpy() == outcome)
        sub = cells.iloc[idx]
        if len(idx) > 1:
            for i, (_, r) in zip(idx, sub.iterrows(), strict=True):
                rows.append(
                    {
                        **r.to_dict(),
                        "estimand": f"{outcome}/{r['subgroup']}",
                        "level": "subgroup",
                        "cells": [i],
                    }
                )
        rows.append(
            {
                "outcome": outcome,
                "subgroup": OVERALL,
                "y_t": int(sub["y_t"].sum()),
                "n_t": int(sub["n_t"].sum()),
                "y_c": int(sub["y_c"].sum()),
                "n_c": int(sub["n_c"].sum()),
                "direction": sub["direction"].iloc[0],
                "estimand": f"{outcome}/{OVERALL}",
                "level": "cohort",
                "cells": list(idx),
            }
        )
    cols = ["estimand", "outcome", "subgroup", "level", "direction", "y_t", "n_t", "y_c", "n_c", "cells"]
    return pd.DataFrame(rows)[cols]


def _fmt_threshold(m: float) -> str:
    return f"{m:g}"


def prob_column(kind: str, m: float) -> str:
    """Column name of P(benefit >= m): ``p_benefit_ge_0.05``, ``p_benefit_ge_0.1``."""
    return f"p_{kind}_ge_{_fmt_threshold(m)}"
