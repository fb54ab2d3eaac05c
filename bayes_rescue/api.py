"""The Python API: one call fits, one object holds the results, one method writes the run folder.

>>> import bayes_rescue as br
>>> r = br.fit(prior="skeptical")                 # the bundled cohort, hierarchical model
>>> r.summary                                      # the summary table (pandas)
>>> r.tree                                         # the ArviZ DataTree of the (first) fit
>>> r.save("models/my-run")                        # the run folder that ``bayes-rescue fit`` writes
>>> r.plot_forest()                                # a matplotlib figure

The command line (:mod:`bayes_rescue.cli.fit`) is a thin layer over :func:`fit` and :meth:`Result.save`.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import xarray as xr

from bayes_rescue import progress, workers
from bayes_rescue.analyses.evalues import evalues_table
from bayes_rescue.data.counts import CountsData, load_counts
from bayes_rescue.errors import InputError
from bayes_rescue.inference.sampling import FitResult, fit_many
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.outputs import rundir
from bayes_rescue.outputs import trees as tree_io
from bayes_rescue.outputs.exports import escalc_table
from bayes_rescue.outputs.tables import DEFAULT_MCIDS, DEFAULT_ROPE, describe, draws_table, summarize
from bayes_rescue.priors.bias import BiasModel, resolve_bias
from bayes_rescue.priors.spec import PriorSpec, discount, resolve_priors, robustify
from bayes_rescue.versions import package_versions


@dataclass
class Result:
    """The fits of one analysis (one per prior, and per bias model when bias-adjusted), their summary table
    and what produced them.

    Attributes
    ----------
    fits
        One :class:`~bayes_rescue.inference.sampling.FitResult` per prior (x bias), in order.
    data
        The counts.
    settings
        The sampler settings.
    mcids, rope
        Benefit thresholds and ROPE half-width on the risk difference.
    summary
        The summary table (:mod:`bayes_rescue.outputs.tables`): one row per fit x outcome x estimand.
    seconds
        Wall time of the fits.
    """

    fits: list[FitResult]
    data: CountsData
    settings: SamplerSettings
    mcids: tuple[float, ...]
    rope: float
    summary: pd.DataFrame
    seconds: float = 0.0
    bias_curve: pd.DataFrame | None = None
    bias_tipping: pd.DataFrame | None = None

    @property
    def tree(self) -> xr.DataTree:
        """The DataTree of the first fit (the only one unless several priors or a bias model were given)."""
        return self.fits[0].tree

    @property
    def trees(self) -> dict[str, xr.DataTree]:
        """Every fit's DataTree by fit name (prior, with ``+bias-<model>`` for bias-adjusted fits)."""
        return {f.name: f.tree for f in self.fits}

    @property
    def passed(self) -> bool:
        """True when every fit passed the diagnostics gate."""
        return all(f.passed for f in self.fits)

    @property
    def failed(self) -> list[FitResult]:
        """The fits that failed the diagnostics gate."""
        return [f for f in self.fits if not f.passed]

    def describe(self) -> str:
        """The console table and one sentence per cohort-level row."""
        parts = []
        for bias, table in self.summary.groupby("bias", sort=False):  # unadjusted first, then each bias model
            if bias != "none":
                parts.append(f"ADJUSTED for the bias model '{bias}' (a non-randomised comparison; see Bias):")
            parts.append(describe(table, mcids=self.mcids, labels=self.data.labels))
        return "\n\n".join(parts)

    def draws(self) -> pd.DataFrame:
        """Tidy per-draw effects of every fit (see :func:`~bayes_rescue.outputs.tables.draws_table`)."""
        return pd.concat([draws_table(f) for f in self.fits], ignore_index=True)

    def _figure(self, name: str):
        from bayes_rescue.outputs import figures

        return getattr(figures, name)

    def forest_data(self) -> pd.DataFrame:
        """The numbers of the forest plot (posterior RD beside the raw RD with Newcombe's interval)."""
        return self._figure("forest_data")(self.summary)

    def plot_forest(self, path: str | Path | None = None):
        """Forest plot of the risk differences; saved to ``path`` when given. Returns the path or ``(fig, axes)``."""
        return self._plot("plot_forest", self.forest_data(), path)

    def plot_benefit_curve(self, path: str | Path | None = None):
        """P(benefit >= t) over thresholds t; saved to ``path`` when given."""
        return self._plot("plot_benefit_curve", self._figure("benefit_curve_data")(self.fits), path)

    def plot_prior_posterior(self, path: str | Path | None = None):
        """Prior and posterior densities of the cohort-level RD; saved to ``path`` when given."""
        return self._plot("plot_prior_posterior", self._figure("prior_posterior_data")(self.fits), path)

    def _plot(self, name: str, data: pd.DataFrame, path: str | Path | None):
        """Draw with the data file's labels: saved to ``path`` (returns the path), or ``(fig, axes)`` drawn with
        the user's own matplotlib back end (a notebook shows it)."""
        plot = self._figure(name)
        if path is not None:
            return plot(data, Path(path), labels=self.data.labels)
        return plot(data, labels=self.data.labels)

    def manifest(self, *, command: str = "") -> dict:
        """What was run: data and prior hashes, settings, versions, diagnostics per fit (``"tool":
        "bayes_rescue"`` marks the folder as a run of this tool, which ``--overwrite`` may replace)."""
        return {
            "tool": "bayes_rescue",
            "command": command,
            "created_utc": datetime.now(UTC).isoformat(),
            "data": {"source": self.data.source, "sha256": self.data.sha256},
            "fits": [f.name for f in self.fits],
            "priors": [
                {"name": f.spec.prior.name, "origin": f.spec.prior.origin, "sha256": f.spec.prior.sha256}
                for f in self.fits
            ],
            "bias_models": sorted(
                {
                    f.spec.bias.name: {"origin": f.spec.bias.origin, "sha256": f.spec.bias.sha256}
                    for f in self.fits
                    if f.spec.bias is not None
                }.items()
            ),
            "model": self.fits[0].spec.kind,
            "settings": json.loads(self.fits[0].tree.attrs["bayes_rescue_settings"]),
            "mcids": list(self.mcids),
            "rope": self.rope,
            "versions": package_versions(),
            "diagnostics": {
                f.name: {
                    **f.diagnostics.to_dict(),
                    "attempts": f.attempts,
                    "sampled_with": json.loads(f.tree.attrs.get("bayes_rescue_sampled_with", "null")) or [f.name],
                }
                for f in self.fits
            },
            "all_diagnostics_passed": self.passed,
            "seconds": round(self.seconds, 2),
        }

    def write(
        self,
        folder: Path,
        *,
        figures: bool = True,
        figure_formats: Sequence[str] = ("png", "svg"),
        report: bool = True,
        command: str = "",
        rerun: dict | None = None,
    ) -> list[str]:
        """Write every output file into an existing (empty) ``folder``; returns the names written. Use
        :meth:`save` for a run folder that appears only when complete.

        ``rerun`` (the command line's): ``{"inputs": (data bytes, [prior bytes], bias bytes or None),
        "settings": {...}}``; the inputs are then kept byte for byte in ``inputs/`` and the settings as the
        manifest's ``rerun`` table, what ``fit --rerun`` reproduces the run from
        (:mod:`bayes_rescue.outputs.manifest`). Inside a ``with bayes_rescue.workers.Workers(...)`` block its
        helper processes draw the figures while this process writes the rest; the files are the same without.
        On any exception the helpers are killed before it propagates, so none writes into ``folder`` after."""
        try:
            return self._write(folder, figures, figure_formats, report, command, rerun)
        except BaseException:
            workers.current().kill()
            raise

    def _write(self, folder, figures, figure_formats, report, command, rerun) -> list[str]:
        folder = Path(folder)
        extra = {}
        if rerun is not None:
            from bayes_rescue.outputs import manifest as mf

            extra = {
                "manifest_version": mf.MANIFEST_VERSION,
                "inputs": mf.write_inputs(folder, *rerun["inputs"]),
                "rerun": rerun["settings"],
            }
        single = len(self.fits) == 1
        drawing = []
        if figures:  # sent first: with helpers, drawn while the rest is written
            from bayes_rescue.outputs.figures import submit_figures

            out = folder / "figures"
            drawing = submit_figures(self.fits, self.summary, out, figure_formats, self.data.labels)
        for f in self.fits:
            if command:
                f.tree.attrs["bayes_rescue_command"] = command
            tree_io.save_tree(f.tree, rundir.path_inside(folder, tree_io.tree_relpath(f.name, single=single)))
        rundir.neutralise_frame(self.summary).to_csv(folder / "summary.csv", index=False)
        rundir.write_csv(self.draws(), folder / "draws.csv")
        rundir.write_csv(escalc_table(self.data), folder / "likelihood.csv")
        rundir.write_csv(evalues_table(self.summary), folder / "evalues.csv")
        if self.bias_tipping is not None:
            rundir.write_csv(self.bias_tipping, folder / "bias_tipping.csv")
            rundir.write_csv(self.bias_curve, folder / "bias_curve.csv")
        for figure in sorted(drawing, key=lambda t: not t.local):  # this process's share first, then the helpers'
            figure.result()
        meta = {**self.manifest(command=command), **extra}
        rows = json.loads(self.summary.to_json(orient="records"))
        rundir.write_json(folder / "summary.json", {"meta": meta, "rows": rows})
        rundir.write_json(folder / "manifest.json", {**meta, "files": rundir.file_hashes(folder)})
        if report:
            from bayes_rescue.outputs.report import write_report

            write_report(folder)
        return sorted(str(p.relative_to(folder)) for p in folder.iterdir())

    def save(
        self,
        folder: str | Path,
        *,
        overwrite: bool = False,
        figures: bool = True,
        figure_formats: Sequence[str] = ("png", "svg"),
        report: bool = True,
        command: str = "",
        rerun: dict | None = None,
    ) -> Path:
        """Write the run folder (as ``bayes-rescue fit`` does): into a hidden partial folder, moved into place
        only when complete (:func:`bayes_rescue.outputs.rundir.atomic_run_dir`); an existing folder is
        replaced only with ``overwrite`` and only if it is a run of this tool. ``rerun`` and helper processes: see
        :meth:`write`."""
        target = Path(folder)
        with progress.task("writing results"), rundir.atomic_run_dir(target, overwrite=overwrite) as tmp:
            self.write(
                tmp,
                figures=figures,
                figure_formats=figure_formats,
                report=report,
                command=command,
                rerun=rerun,
            )
        return target


def make_specs(
    data: CountsData,
    prior: str | PriorSpec | Sequence[str | PriorSpec],
    *,
    model: str = "hierarchical",
    bias: str | BiasModel | None = None,
    robust: float = 0.0,
    discount_factor: float = 1.0,
) -> list[ModelSpec]:
    """The model specs of an analysis: each prior (modified by ``robust`` and ``discount_factor``), and with
    a bias model each prior twice, unadjusted and bias-adjusted."""
    items = [prior] if isinstance(prior, str | PriorSpec) else list(prior)
    priors: list[PriorSpec] = []
    for p in items:
        priors += resolve_priors(p) if isinstance(p, str) else [p]
    priors = [discount(robustify(p, robust), discount_factor) for p in priors]
    bias_model = resolve_bias(bias) if isinstance(bias, str) else bias
    specs = [ModelSpec(data, p, model) for p in priors]
    if bias_model is not None:
        specs += [ModelSpec(data, p, model, bias=bias_model) for p in priors]
    return specs


def fit(
    data: str | Path | CountsData | None = None,
    prior: str | PriorSpec | Sequence[str | PriorSpec] = "skeptical",
    *,
    model: str = "hierarchical",
    bias: str | BiasModel | None = None,
    robust: float = 0.0,
    discount: float = 1.0,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 20250531,
    target_accept: float = 0.95,
    prior_draws: int = 4000,
    mcid: Sequence[float] = DEFAULT_MCIDS,
    rope: float = DEFAULT_ROPE,
    tipping_levels: Sequence[float] = (0.95, 0.5),
) -> Result:
    """Fit the reanalysis model to two-arm, subgrouped binary-outcome counts.

    Parameters
    ----------
    data
        A counts CSV path, ``"bundled:<name>"``, or loaded :class:`~bayes_rescue.data.counts.CountsData`;
        ``None`` = the bundled Chen 2025 cohort.
    prior
        A bundled prior name, a path to a prior TOML, ``"all"``, a comma list, a
        :class:`~bayes_rescue.priors.spec.PriorSpec`, or a list of these.
    model
        ``"hierarchical"`` (subgroups partially pooled) or ``"independent"`` (a 2x2 analysis per subgroup).
    bias
        A bias model name or file (``"observational"``, ...) or :class:`~bayes_rescue.priors.bias.BiasModel`:
        every prior is then fitted twice, unadjusted and bias-adjusted. ``None``: no adjustment.
    robust, discount
        Robustify every prior with a vague component at this weight; multiply every prior sd by this factor.
    draws, tune, chains, seed, target_accept, prior_draws
        Sampler settings (:class:`~bayes_rescue.inference.settings.SamplerSettings`).
    mcid, rope
        Benefit thresholds and the ROPE half-width on the risk difference.
    tipping_levels
        With a bias model: the levels of P(benefit) whose tipping bias is computed (``()``: none). See
        :mod:`bayes_rescue.analyses.bias`; 33 NUTS fits of the compiled model per prior (and one retry of any
        that fails the gate).

    Several priors' DataTrees are built side by side by the helper processes of an enclosing
        ``with bayes_rescue.workers.Workers(...)`` block; without one, all in this process. The results are the
        same.

    Returns
    -------
    Result
        Whatever the diagnostics say: check :attr:`Result.passed` (a fit that failed the gate also warns).
    """
    counts = data if isinstance(data, CountsData) else load_counts(data or "bundled:chen2025")
    specs = make_specs(counts, prior, model=model, bias=bias, robust=robust, discount_factor=discount)
    settings = SamplerSettings(
        draws=draws, tune=tune, chains=chains, seed=seed, target_accept=target_accept, prior_draws=prior_draws
    )
    mcids = tuple(sorted(set(mcid)))
    if not mcids or not all(0 < m < 1 for m in mcids) or not 0 < rope < 1:
        raise InputError("MCIDs and the ROPE half-width must be in (0, 1)", field="--mcid")
    t0 = time.perf_counter()
    fits = fit_many(specs, settings)
    each = progress.track(fits, "summarising fits") if len(fits) > 1 else fits
    summary = pd.concat([summarize(f, mcids=mcids, rope=rope) for f in each], ignore_index=True)
    result = Result(fits, counts, settings, mcids, rope, summary, time.perf_counter() - t0)
    if tipping_levels and any(s.bias is not None for s in specs):
        result.bias_curve, result.bias_tipping = _bias_tipping(specs, tipping_levels, settings)
    return result


def _bias_tipping(
    specs: list[ModelSpec], levels: Sequence[float], settings: SamplerSettings | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tipping bias (:mod:`bayes_rescue.analyses.bias`) of every bias-adjusted prior of ``specs``.

    ``settings``: the fit's sampler settings; every grid fit of the sweep uses their seed, draws and chains
    (warm-up and target acceptance stay the sweep's, :data:`~bayes_rescue.analyses.bias.BIAS_SWEEP_SETTINGS`).
    ``None``: the sweep's own settings."""
    import dataclasses

    from bayes_rescue.analyses.bias import BIAS_SWEEP_SETTINGS, bias_curve, tipping_bias

    sweep = BIAS_SWEEP_SETTINGS
    if settings is not None:
        sweep = dataclasses.replace(sweep, seed=settings.seed, draws=settings.draws, chains=settings.chains)
    curves, tips = [], []
    for s in (s for s in specs if s.bias is not None):
        with progress.task(f"tipping bias ({s.prior.name})"):
            curve = bias_curve(s.data, s.prior, s.bias, kind=s.kind, settings=sweep)
        curve = curve.assign(prior=s.prior.name, bias=s.bias.name)
        curves.append(curve)
        tips.append(tipping_bias(curve, s.bias, levels=levels).assign(prior=s.prior.name))
    return pd.concat(curves, ignore_index=True), pd.concat(tips, ignore_index=True)


def command_line(argv: Sequence[str]) -> str:
    """The shell command that reproduces a CLI call (``bayes-rescue fit ...``)."""
    return shlex.join(["bayes-rescue", "fit", *argv])
