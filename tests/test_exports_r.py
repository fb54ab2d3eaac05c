"""Exports as R reads them (issue 21 item 5): RBesT's ``read_mix_json`` on every JSON we write, its reference scale,
the ``rma()`` subset of ``likelihood.csv``, and the accuracy the README states for a default run's exports.

References: ``tests/rbest_reader.py`` (RBesT 1.8-2 ``read_mix_json`` and jsonlite 2.0.1's simplification,
replayed from their R sources); scipy's normal cdf for the mixtures' distributions; for the accuracy, a real
default-settings fit of the bundled cohort (the numbers are measured, then compared with the README's text).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from rbest_reader import RError, read_mix_json
from scipy import stats

from bayes_rescue.data.counts import load_counts
from bayes_rescue.outputs import exports
from bayes_rescue.outputs.exports import (
    LIKELIHOOD_SUBSET_NOTE,
    RBEST_SIGMA,
    ExportProvenance,
    escalc_table,
    prior_json,
    rma_subset_lines,
)
from bayes_rescue.priors.mixture import Mixture, approximate

ROOT = Path(__file__).resolve().parents[1]


def _prov(k: int) -> ExportProvenance:
    return ExportProvenance(
        run="r", outcome="mrs_0_2", subgroup="overall", prior="p", prior_origin="o", prior_sha256="s",
        data_source="d", data_sha256="h", model="hierarchical", command="c", manifest="m", manifest_sha256="x",
        posterior_sha256="y", n_draws=4000, max_components=k, ks=0.01, max_quantile_error=0.02, created_utc="t",
    )  # fmt: skip


def _mixture(k: int) -> Mixture:
    w = np.arange(1, k + 1, dtype=float)[::-1]
    return Mixture(w / w.sum(), np.linspace(-1.0, 1.5, k), np.linspace(0.3, 0.9, k), 0.0)


def _cdf(w, m, s, x):
    return (np.asarray(w)[:, None] * stats.norm.cdf(x[None, :], np.asarray(m)[:, None], np.asarray(s)[:, None])).sum(0)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_rbest_reads_every_json_we_write(k):
    """For every number of components, RBesT's reader (replayed) gets a 3 x K' mixture matrix with dimnames
    w/m/s and comp1..compK', class normMix, the reference scale sigma = 2, and the same distribution as the
    fitted mixture (cdf on a grid, scipy); K = 3 is written as K' = 4, every other K as itself."""
    mix = _mixture(k)
    doc_text = prior_json(mix, _prov(k))
    read = read_mix_json(doc_text)
    k_written = 4 if k == 3 else k
    assert read.shape == (3, k_written)
    rows, cols = read.attrs["dimnames"]
    assert list(rows) == ["w", "m", "s"] and list(cols) == [f"comp{j + 1}" for j in range(k_written)]
    assert list(read.attrs["class"]) == ["normMix", "mix"] and list(read.attrs["sigma"]) == [RBEST_SIGMA]
    x = np.linspace(-4, 5, 301)
    np.testing.assert_allclose(_cdf(*read.rows, x), _cdf(mix.weights, mix.means, mix.sds, x), atol=1e-14)
    doc = json.loads(doc_text)
    assert f"sigma = {RBEST_SIGMA!r}" in doc["r_code"] and "RBesT" in doc["bayes_rescue"]["reference_scale"]
    assert doc["r_code"].count("comp") == k_written
    assert ("components_note" in doc["bayes_rescue"]) == (k == 3)


def test_the_three_component_layout_fails_in_rbest(monkeypatch):
    """The replayed reader is not a rubber stamp: the plain K = 3 layout (RBesT's own write_mix_json output for a
    three-component mixnorm has the same dimnames) fails as the issue reports it fails in R."""
    monkeypatch.setattr(exports, "rbest_components", exports._mixture_arrays)
    with pytest.raises(RError, match="'dimnames' must be a list"):
        read_mix_json(prior_json(_mixture(3), _prov(3)))


def _select(table, line: str):
    """Apply the R subset() condition of ``line`` (``col == "value" & ...``) to ``table``."""
    cond = re.search(r'subset\(read\.csv\("likelihood\.csv"\), (.*)\)\)$', line).group(1)
    mask = np.ones(len(table), bool)
    for col, value in re.findall(r'(\w+) == "([^"]*)"', cond):
        mask &= (table[col] == value).to_numpy()
    assert cond.count("&") == 2
    return table[mask]


def test_rma_subset_lines_pool_one_outcome_measure_and_level():
    """The whole file is k = 15 rows for the bundled cohort (2 outcomes, 5 tables, 3 measures: the meaningless
    pool); every line we give selects rows of one outcome, one measure and one level, k as its comment says."""
    data = load_counts("bundled:chen2025")
    table = escalc_table(data)
    assert len(table) == 15 and "k = 15" in LIKELIHOOD_SUBSET_NOTE
    lines = rma_subset_lines(data)
    code = [ln for ln in lines if not ln.startswith("#")]
    comments = [ln for ln in lines if ln.startswith("#")]
    assert len(code) == 3  # mrs_0_2 cohort and subgroups; mortality (one subgroup) cohort only
    for comment, line in zip(comments, code, strict=True):
        rows = _select(table, line)
        k = int(re.search(r"k = (\d+)", comment).group(1))
        assert len(rows) == k and rows["outcome"].nunique() == rows["measure"].nunique() == 1
        assert rows["level"].nunique() == 1 and (rows["measure"] == "OR").all()
        assert line.startswith("metafor::rma(yi, vi, data = subset(")


@pytest.fixture(scope="module")
def default_fits():
    """The bundled cohort under the default settings of ``fit --prior skeptical`` (and with ``--robust 0.5``)."""
    import bayes_rescue as br

    return {"default": br.fit(prior="skeptical"), "robust": br.fit(prior="skeptical", robust=0.5)}


ESTIMANDS = ("mrs_0_2/overall", "mrs_0_2/mild_anterior", "mrs_0_2/other", "mortality/overall")


@pytest.mark.slow  # 7 s: default-settings fits of every prior, to check the README's accuracy figures
def test_readme_accuracy_figures_are_what_a_default_run_gives(default_fits):
    """The README's accuracy figures for exported mixtures (section 'Exports for meta-analysts') are bounds on
    what a default run's export gives, measured here: the KS distance and largest quantile error of the BIC
    mixture (default --max-components 3) for every cohort-level and subgroup estimand, without and with
    --robust 0.5. The bounds are read from the README text, so the README cannot drift from the measurement."""
    text = (ROOT / "README.md").read_text("utf-8")
    found = re.search(
        r"default `fit --prior skeptical` run: KS at most ([0-9.]+) and quantile errors at most ([0-9.]+);"
        r" with `--robust 0\.5`, at most ([0-9.]+) and ([0-9.]+)",
        text,
    )
    assert found, "the README's accuracy sentence"
    bounds = {"default": (float(found[1]), float(found[2])), "robust": (float(found[3]), float(found[4]))}
    for name, result in default_fits.items():
        assert result.passed
        ks_max = q_max = 0.0
        for est in ESTIMANDS:
            x = result.fits[0].effects["log_or"].sel(estimand=est).to_numpy().ravel()
            assert x.size == 4000
            _, acc = approximate(x, max_k=3)
            ks_max, q_max = max(ks_max, acc["ks"]), max(q_max, acc["max_quantile_error"])
        assert ks_max <= bounds[name][0] and q_max <= bounds[name][1], (name, ks_max, q_max)
        # bounds that are tight, not loose: within 0.002 (KS) and 0.01 (quantile) of the measured maxima
        assert bounds[name][0] - ks_max < 0.002 and bounds[name][1] - q_max < 0.01, (name, ks_max, q_max)
    # the README's noise floor: the mean KS distance of 4000 iid draws from their own distribution (Kolmogorov)
    assert stats.kstwobign.mean() / np.sqrt(4000) == pytest.approx(0.014, abs=5e-4)
    assert "on average 0.014 in KS distance" in text
