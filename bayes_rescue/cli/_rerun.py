"""``bayes-rescue fit --rerun``: repeat a recorded fit from its run folder alone and compare its outputs."""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, datetime

from bayes_rescue.cli._args import EXIT_NOT_REPRODUCED
from bayes_rescue.errors import InputError


def _given_options(args) -> list[str]:
    """Options of ``fit`` given with a value other than their default, except ``--rerun``, ``--out`` and
    ``--quiet`` (which every command takes)."""
    from bayes_rescue.cli import build_parser

    defaults = vars(build_parser().parse_args(["fit"]))
    return [
        "--" + k.replace("_", "-")
        for k, v in vars(args).items()
        if k not in ("rerun", "out", "quiet", "run", "command") and defaults.get(k) != v
    ]


def cmd_rerun(args) -> int:
    """Rerun a recorded fit from its folder alone and compare summary.csv and draws.csv hashes.

    The data and priors are the byte-for-byte copies in the run's ``inputs/`` (their hashes checked
    against the manifest), the settings the manifest's typed ``rerun`` table, checked again by this
    parser; nothing the manifest says is used as a path. The rerun goes to ``--out`` or to
    ``<run>-rerun-<UTC time>`` beside the run. Any other option is refused (exit 2): the point of a rerun
    is to run the same thing again. Installed versions that differ from the recorded ones are reported
    and the comparison is still made."""
    from bayes_rescue.cli import build_parser
    from bayes_rescue.cli.fit import fit_checked
    from bayes_rescue.data.counts import counts_from_bytes
    from bayes_rescue.data.tomlfile import loads_toml
    from bayes_rescue.outputs import manifest as mf
    from bayes_rescue.outputs import rundir
    from bayes_rescue.priors.bias import parse_bias
    from bayes_rescue.priors.spec import parse_prior
    from bayes_rescue.versions import package_versions

    extra = _given_options(args)
    if extra:
        raise InputError(
            f"--rerun takes no other option than --out and --quiet (got {', '.join(extra)}); a rerun repeats the"
            " recorded settings",
            field="--rerun",
        )
    manifest_path = args.rerun
    doc = mf.read_manifest(manifest_path)
    settings = mf.rerun_settings(doc, manifest_path)
    recorded = doc.get("files")
    if not isinstance(recorded, dict) or not all(
        isinstance(recorded.get(f), str) for f in ("summary.csv", "draws.csv")
    ):
        raise InputError("has no hashes of summary.csv and draws.csv", source=manifest_path, field="files")
    run_dir = manifest_path.parent
    # the bytes hashed are the bytes parsed: read once, never through a symlink (verify_inputs)
    data_raw, prior_raws, bias_raw = mf.verify_inputs(doc, run_dir, manifest_path)
    rerun_args = build_parser().parse_args(["fit", *mf.settings_argv(settings)])
    root = run_dir / mf.INPUTS
    data = counts_from_bytes(data_raw, source=str(root / mf.DATA_FILE))
    priors = []
    for k, raw in enumerate(prior_raws):
        origin = str(root / mf.prior_file(k))
        priors.append(
            parse_prior(
                loads_toml(raw, origin=origin, what="prior"), origin=origin, sha256=hashlib.sha256(raw).hexdigest()
            )
        )
    bias = None
    if bias_raw is not None:
        origin = str(root / mf.BIAS_FILE)
        bias = parse_bias(
            loads_toml(bias_raw, origin=origin, what="bias model"),
            origin=origin,
            sha256=hashlib.sha256(bias_raw).hexdigest(),
        )
    inputs = (data_raw, prior_raws, bias_raw)
    versions = doc.get("versions")
    now = package_versions()
    if isinstance(versions, dict):
        changed = [f"{k} {now.get(k)} (recorded {v})" for k, v in sorted(versions.items()) if now.get(k) != v]
        if changed:
            print("note: installed versions differ from the recorded run: " + ", ".join(changed), flush=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out if args.out is not None else run_dir.parent / f"{run_dir.name}-rerun-{stamp}"
    rerun_args.out, rerun_args.overwrite = out, False
    print(f"rerunning {manifest_path} into {out}", flush=True)
    argv = ["--rerun", str(manifest_path), "--out", str(out)]
    rc = fit_checked(rerun_args, argv, data, priors, bias, inputs, out)
    if rc != 0:
        return rc
    differ = [f for f in ("summary.csv", "draws.csv") if rundir.sha256_file(out / f) != recorded.get(f)]
    if differ:
        print(f"NOT REPRODUCED: {', '.join(differ)} differ from the recorded run", file=sys.stderr)
        return EXIT_NOT_REPRODUCED
    print("reproduced: summary.csv and draws.csv are bit-identical to the recorded run")
    return 0
