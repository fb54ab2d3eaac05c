"""The Data and Priors sections: counts with provenance and the frequentist check, and each prior with its
sources."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bayes_rescue.errors import InputError
from bayes_rescue.outputs.report.basics import Table, _finite, _per_prior, _truthy, fmt_pp, fmt_prob, fmt_ratio


def data_section(run_dir: Path, manifest: dict, attrs: dict[str, dict]) -> dict | None:
    """Counts with provenance and the frequentist check, from ``inputs/*.csv`` (the one whose sha256 the
    manifest records, else the only one), else the counts stored in a posterior's attributes, else (a
    bundled dataset whose sha256 the manifest records) the package's copy."""
    import hashlib

    from bayes_rescue.data.check import check_table
    from bayes_rescue.data.counts import load_bundled, parse_counts

    recorded = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
    sha, source = recorded.get("sha256", ""), str(recorded.get("source", ""))
    text, origin, notes = None, "", []
    candidates = sorted((run_dir / "inputs").glob("*.csv")) if (run_dir / "inputs").is_dir() else []
    by_sha = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in candidates}
    chosen = by_sha.get(sha) or (candidates[0] if len(candidates) == 1 else None)
    if chosen is not None:
        text = chosen.read_bytes().decode("utf-8-sig", "replace")
        origin = str(chosen.relative_to(run_dir))
        if sha and hashlib.sha256(chosen.read_bytes()).hexdigest() != sha:
            notes.append(f"{origin} does not have the sha256 the manifest records for the data ({sha}).")
    else:
        for rel, a in attrs.items():
            if isinstance(a.get("bayes_rescue_data_csv"), str):
                text, origin = a["bayes_rescue_data_csv"], f"{rel} (attribute bayes_rescue_data_csv)"
                source = source or str(a.get("bayes_rescue_data_source", ""))
                sha = sha or str(a.get("bayes_rescue_data_sha256", ""))
                break
    if text is None and source.startswith("bundled:") and sha:
        try:
            bundled = load_bundled(source.removeprefix("bundled:"))
        except InputError:
            bundled = None
        if bundled is not None and bundled.sha256 == sha:  # the package's copy of exactly the data fitted
            text, origin = bundled.to_csv_text(), f"{source} (the package's copy; same sha256 as the manifest's)"
    if text is None:
        return None
    try:
        data = parse_counts(text, source=origin, sha256=sha)
    except InputError as exc:
        return {
            "origin": origin,
            "source": source,
            "sha256": sha,
            "citation": "",
            "description": "",
            "notes": [f"The counts could not be read: {exc.one_line()}"],
            "counts": None,
            "check": None,
            "derived": [],
            "labels": None,
        }
    citation = description = ""
    if source.startswith("bundled:"):
        try:
            bundled = load_bundled(source.removeprefix("bundled:"))
        except InputError:
            bundled = None
        if bundled is not None and bundled.sha256 == sha:
            data = bundled
            citation = str(bundled.meta.get("citation", ""))
            description = str(bundled.meta.get("description", ""))
            notes.append(
                f"Reported P values are the package's record of the source's printed figures ({source},"
                " the same sha256 as the fitted data)."
            )
    t = data.table
    labels = data.labels
    counts_rows = []
    for _, r in t.iterrows():
        counts_rows.append(
            [
                labels.outcome(r["outcome"]),
                labels.subgroup(r["outcome"], r["subgroup"]),
                labels.arm(r["arm"]),
                str(r["events"]),
                str(r["total"]),
                f"{100 * r['events'] / r['total']:.1f}%",
                {"higher": "more is better", "lower": "fewer is better"}.get(data.directions.get(r["outcome"]), ""),
                str(r.get("provenance", "") or ""),
                str(r.get("reported_p", "") or ""),
                str(r.get("note", "") or ""),
            ]
        )
    counts = Table(
        ["outcome", "subgroup", "arm", "events", "total", "%", "direction", "provenance", "reported P", "note"],
        counts_rows,
        [False, False, False, True, True, True, False, False, True, False],
    )
    chk = check_table(data)
    names = {"p_fisher": "Fisher exact", "p_chi2": "Pearson chi-square", "p_chi2_yates": "Yates chi-square"}
    check_rows = []
    for _, r in chk.iterrows():
        agree = [names[k] for k in names if _truthy(r.get(f"{k}_agrees"))]
        verdict = "" if not r["reported_p"] else (", ".join(agree) if agree else "none of the crude tests")
        check_rows.append(
            [
                labels.outcome(r["outcome"]),
                labels.subgroup(r["outcome"], r["subgroup"]),
                f"{r['y_t']}/{r['n_t']}",
                f"{r['y_c']}/{r['n_c']}",
                fmt_pp(r["rd"]),
                fmt_prob(r["p_fisher"]),
                fmt_prob(r["p_chi2"]),
                fmt_prob(r["p_chi2_yates"]),
                r["reported_p"] or "–",
                verdict,
            ]
        )
    check = Table(
        [
            "outcome",
            "subgroup",
            "treatment",
            "control",
            "crude RD, points",
            "Fisher P",
            "Pearson P",
            "Yates P",
            "reported P",
            "reported P agrees with",
        ],
        check_rows,
        [False, False, True, True, True, True, True, True, True, False],
    )
    return {
        "origin": origin,
        "source": source,
        "sha256": sha,
        "citation": citation,
        "description": description,
        "notes": notes,
        "counts": counts,
        "check": check,
        "derived": list(
            dict.fromkeys(
                (r["outcome"], r["subgroup"])
                for _, r in t.iterrows()
                if "percent" in str(r.get("provenance", "") or "").lower()
            )
        ),
        "labels": labels,
    }


def prior_specs(run_dir: Path, manifest: dict, attrs: dict[str, dict]) -> list[tuple[dict, str]]:
    """``(prior as PriorSpec.to_dict(), where it was read)`` for each prior of the run, in the manifest's
    order: the TOML in ``inputs/`` with the prior's name (read by ``load_prior``), else the spec stored in
    a posterior's attributes, else the TOML in ``inputs/`` with the prior's recorded sha256."""
    from bayes_rescue.priors.spec import load_prior

    recorded = [p for p in manifest.get("priors", []) if isinstance(p, dict)]
    from_inputs = {}
    if (run_dir / "inputs").is_dir():
        for p in sorted((run_dir / "inputs").glob("*.toml")):
            try:
                spec = load_prior(str(p))
            except InputError:
                continue
            from_inputs[spec.name] = from_inputs[spec.sha256] = (spec.to_dict(), str(p.relative_to(run_dir)))
    from_tree = {}
    for rel, a in attrs.items():
        for name, text in _per_prior(a, "bayes_rescue_prior_spec").items():
            try:
                d = json.loads(text)
            except (TypeError, json.JSONDecodeError):
                continue
            from_tree.setdefault(d.get("name", name), (d, f"{rel} (attribute bayes_rescue_prior_spec)"))
    names = [str(p.get("name")) for p in recorded] or list(dict.fromkeys(k for k in from_tree))
    shas = {str(p.get("name")): str(p.get("sha256", "")) for p in recorded}
    out = []
    for name in names:
        # by name first: a robust or discounted prior keeps its file's sha256 under a new name, and only the
        # spec stored with the fit shows what was fitted
        hit = from_inputs.get(name) or from_tree.get(name) or from_inputs.get(shas.get(name, "-"))
        if hit is not None:
            d, where = hit
            # a copy in inputs/ was read from the (possibly still temporary) run folder: show where the run got it
            recorded_origin = next((str(p.get("origin", "")) for p in recorded if str(p.get("name")) == name), "")
            out.append(({**d, "origin": recorded_origin or d.get("origin", "")}, where))
    if not names:
        out = list({id(v): v for v in from_inputs.values()}.values())
    return out


def prior_view(d: dict, where: str, order: list[str] | None = None, labels=None) -> dict:
    """One prior for the template: its texts, hyperpriors and a component table per outcome (outcomes
    in ``order`` first, e.g. the data's order)."""
    outcomes = []
    effects = d.get("effect") or {}
    rank = {o: i for i, o in enumerate(order or [])}
    for outcome, e in sorted(effects.items(), key=lambda kv: rank.get(kv[0], len(rank))):
        rows = []
        for c in e.get("components", []):
            mean, sd = float(c["mean"]), float(c["sd"])
            rows.append(
                [
                    str(c.get("name", "")),
                    f"{float(c.get('weight', 1)):.4g}",
                    f"{mean:.4g}",
                    f"{sd:.4g}",
                    fmt_ratio(math.exp(mean)),
                    f"{fmt_ratio(math.exp(mean - 1.959964 * sd))} to {fmt_ratio(math.exp(mean + 1.959964 * sd))}",
                    ", ".join(c.get("trials", []) or []),
                    str(c.get("source", "")),
                ]
            )
        table = Table(
            ["component", "weight", "mean (log OR)", "sd", "OR at mean", "OR 95% range", "trials", "source"],
            rows,
            [False, True, True, True, True, True, False, False],
        )
        shifts = [
            (
                labels.subgroup(outcome, sg) if labels is not None else sg,
                f"{float(s.get('offset', 0)):+.4g}",
                str(s.get("source", "")),
            )
            for sg, s in (e.get("subgroups") or {}).items()
        ]
        name = labels.outcome(outcome) if labels is not None and outcome != "default" else outcome
        outcomes.append({"name": name, "rationale": e.get("rationale", ""), "table": table, "shifts": shifts})
    hyper = d.get("hyper") or {}
    return {
        "name": d.get("name", ""),
        "description": d.get("description", ""),
        "rationale": d.get("rationale", ""),
        "origin": d.get("origin", ""),
        "sha256": d.get("sha256", ""),
        "where": where,
        "hyper": [(k, f"{float(v):g}") for k, v in hyper.items() if _finite(v)],
        "hyper_source": d.get("hyper_source", ""),
        "outcomes": outcomes,
    }
